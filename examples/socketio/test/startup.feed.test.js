// server.js does not run half-working: with a service key that lacks the `events` scope it
// cannot close the sockets of ended sessions, so it says why and exits with 1 instead of serving.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { cli, startStack, stopStack } from "./harness.js";

let stack;
before(async () => { stack = await startStack(); }, { timeout: 60_000 });
after(async () => { await stopStack(stack); });

test("a key without the events scope: server.js exits with 1, naming the scope", { timeout: 20_000 }, async () => {
  const key = (await cli(stack, "service-keys", "create", "no-events", "--scope", "introspect")).trim();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SESSIOND") && k !== "PORT"));
  const child = spawn(process.execPath, ["server.js"], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: { ...env, PORT: "0", SESSIOND_URL: stack.sessiondUrl, SESSIOND_SERVICE_KEY: key },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c) => { output += c; });
  child.stderr.on("data", (c) => { output += c; });
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [code] = await once(child, "exit");
  clearTimeout(timer);
  assert.equal(code, 1, output);
  assert.match(output, /cannot follow sessiond's event feed: .*403.*`events` scope/, output);
  assert.doesNotMatch(output, /socket\.io example on/);
});
