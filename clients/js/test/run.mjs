// Runs the node:test files of both packages and of test/ in one `node --test` process tree.
//   node test/run.mjs          every *.test.js
//   node test/run.mjs --feed   only the *.feed.test.js files (those on sessiond's GET /v1/events)
//   node test/run.mjs --unit   only the *.unit.test.js files (fakes for fetch and BroadcastChannel:
//                              no sessiond binary, no database, no browser)
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const feed = process.argv.includes("--feed");
const unit = process.argv.includes("--unit");
const suffix = feed ? ".feed.test.js" : unit ? ".unit.test.js" : ".test.js";
const files = ["client/test", "node/test", "test"].flatMap((dir) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith(suffix))
    .map((f) => relative(ROOT, join(ROOT, dir, f))),
).sort();
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const { status, signal } = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", ...files],
  { cwd: ROOT, stdio: "inherit" },
);
process.exit(status ?? (signal ? 1 : 0));
