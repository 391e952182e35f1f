// The TypeScript view of the package: node/test/types/usage.ts (a Socket.IO server typed with
// SocketData, Express routes reading req.auth) must compile with `tsc --strict`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

test("an app typed with SocketData and req.auth compiles under --strict", { timeout: 60_000 }, () => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const project = fileURLToPath(new URL("./types/tsconfig.json", import.meta.url));
  const { status, stdout, stderr } = spawnSync(process.execPath, [tsc, "-p", project], { encoding: "utf8" });
  assert.equal(status, 0, `${stdout}${stderr}`);
});
