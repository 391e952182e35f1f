// node --test over test/*.test.js; with --feed only the *.feed.test.js files (those on sessiond's
// event feed, GET /v1/events).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const feed = process.argv.includes("--feed");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.js") && (!feed || f.endsWith(".feed.test.js")))
  .sort()
  .map((f) => `test/${f}`);
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const { status } = spawnSync(process.execPath, ["--test", ...files], {
  cwd: fileURLToPath(new URL("..", import.meta.url)),
  stdio: "inherit",
});
process.exit(status ?? 1);
