// The client's package.json: one engines range with the workspace, and the links npm shows.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

const read = async (path) => JSON.parse(await readFile(new URL(path, import.meta.url), "utf8"));

test("engines match the workspace root; repository, homepage and bugs point at the repository", async () => {
  const root = await read("../../package.json");
  const pkg = await read("../package.json");
  assert.deepEqual(pkg.engines, root.engines);
  assert.deepEqual(pkg.repository, {
    type: "git",
    url: "git+https://github.com/sessiond/sessiond.git",
    directory: "clients/js/client",
  });
  assert.equal(pkg.homepage, "https://github.com/sessiond/sessiond/tree/main/clients/js/client#readme");
  assert.equal(pkg.bugs, "https://github.com/sessiond/sessiond/issues");
});
