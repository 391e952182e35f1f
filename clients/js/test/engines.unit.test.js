// One Node range for the whole workspace: the root and every package declare the same
// `engines.node` (and package-lock.json, which npm ci checks, records the same), so no package
// promises a Node version that its siblings or the tests do not run on.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

const read = async (path) => JSON.parse(await readFile(new URL(`../${path}`, import.meta.url), "utf8"));

test("the root, client, node and react packages carry one engines.node range", async () => {
  const root = await read("package.json");
  assert.equal(typeof root.engines?.node, "string");
  assert.notEqual(root.engines.node.trim(), "");
  assert.deepEqual(root.workspaces, ["client", "node", "react"]);
  for (const dir of root.workspaces) {
    const pkg = await read(`${dir}/package.json`);
    assert.deepEqual(pkg.engines, root.engines, `${dir}/package.json`);
  }
  const lock = await read("package-lock.json");
  for (const key of ["", ...root.workspaces]) {
    assert.deepEqual(lock.packages[key].engines, root.engines, `package-lock.json packages["${key}"]`);
  }
});
