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
  "@sessiond/client": ["MfaRequiredError", "SessiondClient", "SessiondError", "StepUpRequiredError", "createClient",
    "localStorageAdapter", "memoryStorage", "passkeyAutofillSupported", "passkeysSupported"],
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
    import {
      MfaRequiredError, StepUpRequiredError, createClient, passkeysSupported, type ChangeEvent, type Passkey,
    } from "@sessiond/client";
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
    requireSession({ url: "x", serviceKey: "k", maxAge: 300, acr: "2" });
    async function secondFactor(email: string, password: string, code: string) {
      try {
        return await c.signIn(email, password);
      } catch (err) {
        if (err instanceof MfaRequiredError && err.methods.includes("totp")) return c.completeMfa({ mfaToken: err.mfaToken, code });
        if (err instanceof StepUpRequiredError) await c.reauthenticate(err.acrValues?.includes("2") ? { passkey: true } : { code });
        throw err;
      }
    }
    const passkeys: Promise<Passkey[]> = c.listPasskeys();
    void [secondFactor, passkeys, c.signInWithPasskey({ conditional: passkeysSupported() }), c.registerPasskey({ name: "x" })];
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

// @sessiond/node's subpath exports: each one a module of its own, from ESM and CommonJS, the same
// objects as the root's (one module instance per format), with its declarations beside its code.
const SUBPATHS = {
  express: { file: "express", names: ["bearerToken", "requireSession"] },
  "socket.io": { file: "socketio", names: ["SESSION_ENDED_EVENT", "socketAuth"] },
  events: { file: "events", names: ["SessionEvents", "SseParser"] },
};

test("each exports target of @sessiond/node is in the tarball, types beside the code of their format", async () => {
  const pkg = JSON.parse(await readFile(join(scratch, "node_modules/@sessiond/node/package.json"), "utf8"));
  const files = new Set(tarballs.node.files.map((f) => f.path));
  assert.deepEqual(Object.keys(pkg.exports), [".", ...Object.keys(SUBPATHS).map((s) => `./${s}`), "./package.json"]);
  for (const [subpath, conditions] of Object.entries(pkg.exports)) {
    if (subpath === "./package.json") continue;
    const file = subpath === "." ? "index" : SUBPATHS[subpath.slice(2)].file;
    assert.deepEqual(conditions, {
      import: { types: `./dist/esm/${file}.d.ts`, default: `./dist/esm/${file}.js` },
      require: { types: `./dist/cjs/${file}.d.ts`, default: `./dist/cjs/${file}.js` },
    }, subpath);
    for (const { types, default: code } of Object.values(conditions)) {
      assert.ok(files.has(types.slice(2)), `${subpath}: ${types} missing from the tarball`);
      assert.ok(files.has(code.slice(2)), `${subpath}: ${code} missing from the tarball`);
    }
  }
  // TypeScript's moduleResolution node10 reads no exports: typesVersions maps the subpaths.
  for (const [subpath, { file }] of Object.entries(SUBPATHS)) {
    assert.deepEqual(pkg.typesVersions["*"][subpath], [`./dist/cjs/${file}.d.ts`]);
  }
});

test("ESM and CommonJS: each subpath resolves to its build and shares the root's objects", async () => {
  await writeFile(join(scratch, "subpaths.mjs"), `
    import * as root from "@sessiond/node";
    const out = {};
    for (const subpath of ${JSON.stringify(Object.keys(SUBPATHS))}) {
      const m = await import("@sessiond/node/" + subpath);
      out[subpath] = {
        names: Object.keys(m).sort(),
        resolved: import.meta.resolve("@sessiond/node/" + subpath),
        same: Object.keys(m).every((k) => m[k] === root[k]),
      };
    }
    console.log(JSON.stringify(out));
  `);
  await writeFile(join(scratch, "subpaths.cjs"), `
    const root = require("@sessiond/node");
    const out = {};
    for (const subpath of ${JSON.stringify(Object.keys(SUBPATHS))}) {
      const m = require("@sessiond/node/" + subpath);
      out[subpath] = {
        names: Object.keys(m).sort(),
        resolved: require.resolve("@sessiond/node/" + subpath),
        same: Object.keys(m).every((k) => m[k] === root[k]),
      };
    }
    console.log(JSON.stringify(out));
  `);
  for (const [script, format] of [["subpaths.mjs", "esm"], ["subpaths.cjs", "cjs"]]) {
    const { stdout } = await run(process.execPath, [script], { cwd: scratch });
    const out = JSON.parse(stdout);
    for (const [subpath, { file, names }] of Object.entries(SUBPATHS)) {
      assert.deepEqual(out[subpath].names, names, `${format} ${subpath}`);
      assert.match(out[subpath].resolved, new RegExp(`dist[\\\\/]${format}[\\\\/]${file}\\.js$`), `${format} ${subpath}`);
      assert.equal(out[subpath].same, true, `${format} ${subpath}: not the root's objects`);
    }
  }
});

test("TypeScript resolves each subpath's declarations: nodenext from ESM and CommonJS, node10 by typesVersions", async () => {
  const tsc = join(JS_DIR, "node_modules/typescript/bin/tsc");
  const usage = `
    import { bearerToken, requireSession, type SessionAuth, type SessionRequest } from "@sessiond/node/express";
    import { socketAuth, SESSION_ENDED_EVENT, type SocketData } from "@sessiond/node/socket.io";
    import { SessionEvents, SseParser, type SessionEvent } from "@sessiond/node/events";
    import { Sessiond } from "@sessiond/node";
    const shared = new Sessiond({ url: "x", mode: "jwks" });
    requireSession({ sessiond: shared });
    const token: string | null | false = bearerToken("Bearer abc");
    const mw = requireSession({ url: "x", serviceKey: "k" });
    // @ts-expect-error: url is a string
    requireSession({ url: 1 });
    const auth: SessionAuth | undefined = undefined as SessionRequest["auth"] | undefined;
    const ended: "session_ended" = SESSION_ENDED_EVENT;
    const data: SocketData | null = null;
    const feed: SessionEvents | null = null;
    const event: SessionEvent["type"] = "session.ended";
    void [token, mw, auth, ended, data, feed, event, socketAuth, SseParser];
  `;
  await writeFile(join(scratch, "sub.mts"), `${usage}\nexport {};\n`);
  await writeFile(join(scratch, "sub.cts"), `${usage}\nexport {};\n`);
  await writeFile(join(scratch, "legacy.ts"), `${usage}\nexport {};\n`);
  const common = ["--noEmit", "--strict", "--listFiles", "--types", "node", "--typeRoots", join(JS_DIR, "node_modules/@types"),
    "--lib", "es2022,dom"];
  const compile = (args) => run(process.execPath, [tsc, ...common, ...args], { cwd: scratch }).catch((err) => {
    assert.fail(`tsc ${args.join(" ")} failed:\n${err.stdout}${err.stderr}`);
  });
  const declarations = (stdout, format) => Object.values(SUBPATHS).map(({ file }) =>
    stdout.split("\n").some((line) => line.replaceAll("\\", "/").endsWith(`/@sessiond/node/dist/${format}/${file}.d.ts`)));
  const all = [true, true, true];

  // nodenext, not node16: the CommonJS declarations import types from jose, an ES module, which
  // only nodenext lets CommonJS require (as Node 20.19+ and 22.12+ do).
  const nodenext = await compile(["--module", "nodenext", "--moduleResolution", "nodenext", "sub.mts", "sub.cts"]);
  assert.deepEqual(declarations(nodenext.stdout, "esm"), all, "ESM declarations of the subpaths not used");
  assert.deepEqual(declarations(nodenext.stdout, "cjs"), all, "CommonJS declarations of the subpaths not used");

  const node10 = await compile(["--module", "commonjs", "--moduleResolution", "node10", "--ignoreDeprecations", "5.0", "--target", "es2022",
    "--esModuleInterop", "legacy.ts"]);
  assert.deepEqual(declarations(node10.stdout, "cjs"), all, "typesVersions did not lead node10 to the declarations");
  assert.deepEqual(declarations(node10.stdout, "esm"), [false, false, false]);
});
