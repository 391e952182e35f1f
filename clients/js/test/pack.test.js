// `npm pack` of each package installs into a scratch project, and the public API imports from
// ESM and from CommonJS (with the type declarations shipped for both).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, test } from "node:test";

const run = promisify(execFile);
const JS_DIR = fileURLToPath(new URL("..", import.meta.url));
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
let scratch;
const tarballs = {};

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "sessiond-pack-"));
  for (const pkg of ["client", "node"]) {
    // Built by `npm test` before the tests run; --ignore-scripts skips building again.
    const { stdout } = await run(NPM, ["pack", "--json", "--ignore-scripts", "--pack-destination", scratch], {
      cwd: join(JS_DIR, pkg),
    });
    const [info] = JSON.parse(stdout);
    tarballs[pkg] = info;
  }
  await writeFile(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true }));
  await run(NPM, ["install", "--no-audit", "--no-fund", "--prefer-offline",
    join(scratch, tarballs.client.filename), join(scratch, tarballs.node.filename)], { cwd: scratch, timeout: 120_000 });
}, { timeout: 180_000 });

after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test("the tarballs hold the builds, declarations, README and LICENSE, and no sources or tests", () => {
  for (const [pkg, info] of Object.entries(tarballs)) {
    const files = info.files.map((f) => f.path);
    for (const f of ["package.json", "README.md", "LICENSE", "dist/esm/index.js", "dist/esm/index.d.ts",
      "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json"]) {
      assert.ok(files.includes(f), `${pkg}: ${f} missing from ${files}`);
    }
    assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/")), `${pkg}: ${files}`);
    assert.equal(info.name, `@sessiond/${pkg}`);
  }
});

test("the client has no runtime dependencies; the node package only jose", async () => {
  const client = JSON.parse(await readFile(join(scratch, "node_modules/@sessiond/client/package.json"), "utf8"));
  const node = JSON.parse(await readFile(join(scratch, "node_modules/@sessiond/node/package.json"), "utf8"));
  assert.equal(client.dependencies, undefined);
  assert.deepEqual(Object.keys(node.dependencies), ["jose"]);
  for (const p of [client, node]) {
    assert.equal(p.license, "MIT");
    assert.match(p.version, /^\d+\.\d+\.\d+$/);
  }
});

const EXPECTED = {
  "@sessiond/client": ["SessiondClient", "SessiondError", "createClient", "localStorageAdapter", "memoryStorage"],
  "@sessiond/node": ["SESSION_ENDED_EVENT", "SessionEvents", "Sessiond", "SessiondUnavailableError", "SseParser",
    "bearerToken", "requireSession", "socketAuth"],
};

test("ESM: import works and exposes the API", async () => {
  await writeFile(join(scratch, "check.mjs"), `
    import * as client from "@sessiond/client";
    import * as node from "@sessiond/node";
    const c = client.createClient({ url: "http://127.0.0.1:9", restore: false, channel: false });
    c.dispose();
    console.log(JSON.stringify({
      client: Object.keys(client).sort(), node: Object.keys(node).sort(),
      bearer: node.bearerToken("Bearer abc"), instance: c instanceof client.SessiondClient,
    }));
  `);
  const { stdout } = await run(process.execPath, ["check.mjs"], { cwd: scratch });
  const out = JSON.parse(stdout);
  assert.deepEqual(out.client, EXPECTED["@sessiond/client"]);
  assert.deepEqual(out.node, EXPECTED["@sessiond/node"]);
  assert.equal(out.bearer, "abc");
  assert.equal(out.instance, true);
});

test("CommonJS: require works and exposes the same API", async () => {
  await writeFile(join(scratch, "check.cjs"), `
    const client = require("@sessiond/client");
    const node = require("@sessiond/node");
    const resolved = { client: require.resolve("@sessiond/client"), node: require.resolve("@sessiond/node") };
    const s = new node.Sessiond({ url: "http://127.0.0.1:9", mode: "jwks", events: false });
    console.log(JSON.stringify({
      client: Object.keys(client).sort(), node: Object.keys(node).sort(), resolved,
      mode: s.mode, requireSession: typeof node.requireSession({ sessiond: s }),
    }));
  `);
  const { stdout } = await run(process.execPath, ["check.cjs"], { cwd: scratch });
  const out = JSON.parse(stdout);
  assert.deepEqual(out.client, EXPECTED["@sessiond/client"]);
  assert.deepEqual(out.node, EXPECTED["@sessiond/node"]);
  assert.match(out.resolved.client, /dist[\\/]cjs[\\/]index\.js$/);
  assert.match(out.resolved.node, /dist[\\/]cjs[\\/]index\.js$/);
  assert.equal(out.mode, "jwks");
  assert.equal(out.requireSession, "function");
});

test("TypeScript sees the declarations from ESM and CommonJS consumers", async () => {
  const tsc = join(JS_DIR, "node_modules/typescript/bin/tsc");
  await writeFile(join(scratch, "esm.mts"), `
    import { createClient, type ChangeEvent } from "@sessiond/client";
    import { requireSession, type SessionAuth } from "@sessiond/node";
    const c = createClient({ url: "x", mode: "bearer" });
    const e: ChangeEvent["type"] = "signed_in";
    const first: ChangeEvent["type"][] = ["initial_session", "restore_failed"];
    const auth: (cb: (data: object) => void) => void = c.socketAuth();
    const unbind: () => void = c.bindSocket({ disconnect: () => undefined });
    const token: string | undefined = c.getSession()?.accessToken;
    void [c.signIn("a", "b"), c.signOut("global"), c.logIn("a", "b"), first, auth, unbind, token];
    const a: SessionAuth = { sub: "", sid: "", is_guest: false, email: null };
    requireSession({ url: "x", serviceKey: "k", anonymous: true });
    export { c, e, a };
  `);
  await writeFile(join(scratch, "cjs.cts"), `
    import { createClient } from "@sessiond/client";
    import { socketAuth } from "@sessiond/node";
    const c = createClient({ url: "x" });
    // @ts-expect-error: mode is "cookie" | "bearer"
    createClient({ url: "x", mode: "other" });
    socketAuth({ url: "x", serviceKey: "k" });
    export = c;
  `);
  const { stdout } = await run(process.execPath, [tsc, "--noEmit", "--strict", "--module", "nodenext",
    "--moduleResolution", "nodenext", "--types", "node", "--typeRoots", join(JS_DIR, "node_modules/@types"),
    "--lib", "es2022,dom", "esm.mts", "cjs.cts"], { cwd: scratch }).catch((err) => {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  });
  assert.equal(stdout.trim(), "");
});
