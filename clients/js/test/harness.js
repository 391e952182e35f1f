// Starts a real sessiond for the JS package tests: SQLite (a temp file) or PostgreSQL (a
// throwaway database on $SESSIOND_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres,
// created per stack and dropped afterwards), configured service keys, optional cookie mode, CORS
// origins, bridge provider and access-token lifetime. Also small helpers the tests share.
//
// The binary is $SESSIOND_BIN, by default ../../target/debug/sessiond relative to clients/js.

import { execFile, spawn } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const JS_DIR = fileURLToPath(new URL("..", import.meta.url));
export const SESSIOND_BIN = resolve(JS_DIR, process.env.SESSIOND_BIN ?? "../../target/debug/sessiond");
export const PG_URL = process.env.SESSIOND_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const HOST = "127.0.0.1";
export const COOKIE_NAME = "sessiond_refresh";
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
/** The databases every node:test suite that needs PostgreSQL runs on. */
export const DATABASES = ["sqlite", "postgres"];

const run = promisify(execFile);

export async function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

function cleanEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith("SESSIOND") || key === "DATABASE_URL" || key === "PORT") delete env[key];
  }
  return env;
}

/** A child process whose output is kept for failure messages. */
export function startProcess(label, command, args, options) {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  child.label = label;
  child.output = "";
  const keep = (chunk) => {
    child.output += chunk;
    if (child.output.length > 200_000) child.output = child.output.slice(-100_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.exited = new Promise((ok) => child.on("exit", (code, signal) => ok({ code, signal })));
  process.once("exit", () => child.exitCode === null && child.kill("SIGKILL"));
  return child;
}

export async function waitFor(child, url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let exited = null;
  child.exited.then((e) => { exited = e; });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${child.label} exited (${JSON.stringify(exited)}):\n${child.output}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${child.label} did not answer ${url} within ${timeoutMs} ms:\n${child.output}`);
}

export async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await child.exited;
  clearTimeout(timer);
}

async function psql(sql) {
  await run("psql", [PG_URL, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], { timeout: 30_000 });
}

const toml = (value) => JSON.stringify(value);

/**
 * Starts sessiond. Options:
 *   db: "sqlite" | "postgres"        (default sqlite)
 *   cookies: boolean                 cookie mode over http (name sessiond_refresh)
 *   origins: string[]                CORS allowlist
 *   accessTtlSecs: number            access-token lifetime
 *   scopes: string[]                 scopes of the service key `serviceKey` (default ["introspect"])
 *   bridge: { name, issuer, audience, secret }   an HS256 bridge provider
 *   env: { SESSIOND__…: "…" }        further settings
 * Returns { url, serviceKey, adminKey, db, child, env, cli(...args), stop(), logs() }.
 */
export async function startSessiond(options = {}) {
  if (!existsSync(SESSIOND_BIN)) {
    throw new Error(`no sessiond binary at ${SESSIOND_BIN}: run \`cargo build\` or set SESSIOND_BIN`);
  }
  const db = options.db ?? "sqlite";
  const tmp = await mkdtemp(join(tmpdir(), "sessiond-js-"));
  const port = await freePort();
  const url = `http://${HOST}:${port}`;
  const serviceKey = `sk_test_${randomBytes(16).toString("hex")}`;
  const adminKey = `sk_admin_${randomBytes(16).toString("hex")}`;
  const scopes = options.scopes ?? ["introspect"];

  let config = `[cors]\nallowed_origins = ${toml(options.origins ?? [])}\n\n`;
  config += `[[service_keys]]\nname = "js-tests"\nsecret = ${toml(serviceKey)}\nscopes = ${toml(scopes)}\n\n`;
  config += `[[service_keys]]\nname = "js-tests-admin"\nsecret = ${toml(adminKey)}\nscopes = ["admin"]\n\n`;
  if (options.bridge) {
    const b = options.bridge;
    config += `[[bridge.providers]]\nname = ${toml(b.name)}\nissuer = ${toml(b.issuer)}\n`;
    config += `audience = ${toml([b.audience])}\nalgorithms = ["HS256"]\nsecret = ${toml(b.secret)}\n\n`;
  }
  await mkdir(join(tmp, "config"));
  await writeFile(join(tmp, "config", "test.toml"), config);

  let databaseUrl;
  let pgName = null;
  if (db === "postgres") {
    pgName = `sessiond_js_${randomUUID().replaceAll("-", "")}`;
    await psql(`CREATE DATABASE ${pgName}`);
    const u = new URL(PG_URL);
    u.pathname = `/${pgName}`;
    databaseUrl = u.toString();
  } else {
    databaseUrl = `sqlite://${tmp}/sessiond.db`;
  }

  const env = {
    ...cleanEnv(),
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    SESSIOND_CONFIG_DIR: join(tmp, "config"),
    SESSIOND_ENV: "test",
    SESSIOND__LOG__LEVEL: "warn",
    SESSIOND__SERVER__HOST: HOST,
    SESSIOND__SERVER__PUBLIC_URL: url,
    SESSIOND__SERVER__WORKERS: "2",
    SESSIOND__RATE_LIMITS__CREDENTIALS_PER_MINUTE: "0",
    SESSIOND__PASSWORDS__ARGON2_MEMORY_KIB: "8192",
    SESSIOND__PASSWORDS__ARGON2_ITERATIONS: "1",
  };
  if (options.cookies) {
    Object.assign(env, {
      SESSIOND__COOKIES__ENABLED: "true",
      SESSIOND__COOKIES__SECURE: "false",
      SESSIOND__COOKIES__NAME: COOKIE_NAME,
    });
  }
  if (options.accessTtlSecs) env.SESSIOND__TOKENS__ACCESS_TTL_SECS = String(options.accessTtlSecs);
  Object.assign(env, options.env);

  const child = startProcess(`sessiond (${db})`, SESSIOND_BIN, ["serve"], { env });
  const stack = {
    url, serviceKey, adminKey, db, child, tmp, env,
    /** Runs `sessiond <args>` (the CLI) on this stack's database and configuration. */
    cli: (...args) => run(SESSIOND_BIN, args, { env, timeout: 30_000 }),
    logs: () => `--- ${child.label} ---\n${child.output}`,
    stop: async () => {
      await stopProcess(child);
      await rm(tmp, { recursive: true, force: true });
      if (pgName) await psql(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`);
    },
  };
  try {
    await waitFor(child, `${url}/readyz`);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

/** A JSON request to sessiond as a server would make it; `{ status, body, headers }`. */
export async function call(stack, method, path, { body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h["content-type"] = "application/json";
  if (token) h.authorization = `Bearer ${token}`;
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** The audit events of a user (admin key), newest first. */
export async function auditEvents(stack, userId) {
  const { status, body } = await call(stack, "GET", `/v1/admin/audit?user_id=${userId}&limit=1000`, {
    token: stack.adminKey,
  });
  if (status !== 200) throw new Error(`audit: ${status} ${JSON.stringify(body)}`);
  return body.events;
}

/** An HS256 JWT (for a bridge provider with a secret). */
export function hs256(claims, secret) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** A bridge provider config and a function minting its tokens for a subject. */
export function bridgeProvider(name = "testauth") {
  const provider = {
    name,
    issuer: `https://${name}.example.test/auth/v1`,
    audience: "authenticated",
    secret: randomBytes(32).toString("hex"),
  };
  const mint = (sub, extra = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return hs256({ iss: provider.issuer, aud: provider.audience, sub, iat: now, exp: now + 300, ...extra },
      provider.secret);
  };
  return { provider, mint };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value (or throws after `timeoutMs`). */
export async function eventually(check, { timeoutMs = 5000, intervalMs = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what} not met within ${timeoutMs} ms (last: ${last})`);
}
