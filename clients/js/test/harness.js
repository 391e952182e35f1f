// Starts a real sessiond for the JS package tests: SQLite (a temp file) or PostgreSQL (a
// throwaway database on $SESSIOND_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres,
// created per stack and dropped afterwards), configured service keys, optional cookie mode, CORS
// origins, bridge provider, access-token lifetime and mail through an SMTP server on loopback
// (startSmtpServer(), a real one speaking the protocol over TCP). Also small helpers the tests share.
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
 *   mail: { port, linkUrl }          mail through the SMTP server on 127.0.0.1:port (plain SMTP,
 *                                    see startSmtpServer()), from "Acme <no-reply@acme.example>",
 *                                    the outbox checked every 50 ms; mailed links open linkUrl
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
  if (options.mail) {
    Object.assign(env, {
      SESSIOND__MAIL__URL: `smtp://${HOST}:${options.mail.port}`,
      SESSIOND__MAIL__FROM: MAIL_FROM,
      SESSIOND__MAIL__PRODUCT_NAME: "Acme",
      SESSIOND__MAIL__POLL_INTERVAL_MS: "50",
      SESSIOND__MAIL__TIMEOUT_SECS: "2",
      SESSIOND__MAIL__RETRY_BASE_SECS: "1",
      SESSIOND__ACCOUNTS__LINK_URL: options.mail.linkUrl,
    });
  }
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

/** The sender of the mails of a stack started with `mail`. */
export const MAIL_FROM = "Acme <no-reply@acme.example>";

/** A MIME body decoded by its Content-Transfer-Encoding (quoted-printable, base64, 7bit, 8bit). */
function decodeBody(body, encoding = "7bit") {
  switch (encoding.trim().toLowerCase()) {
    case "quoted-printable": {
      const bytes = [];
      const text = body.replace(/=\r?\n/g, "");
      for (let i = 0; i < text.length; i++) {
        if (text[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
          bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
          i += 2;
        } else {
          bytes.push(...Buffer.from(text[i], "utf8"));
        }
      }
      return Buffer.from(bytes).toString("utf8");
    }
    case "base64":
      return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    default:
      return body;
  }
}

/** The headers (names lower-cased, folded lines joined) and the body of a message or a part. */
function splitHeaders(raw) {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end < 0 ? raw : raw.slice(0, end);
  const body = end < 0 ? "" : raw.slice(end).replace(/^\r?\n\r?\n/, "");
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

/** The leaf parts of a MIME message: `[{ type, text }]`, each body decoded. */
function mimeParts(raw) {
  const { headers, body } = splitHeaders(raw);
  const type = headers["content-type"] ?? "text/plain";
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    const chunks = body.split(`--${boundary}`).slice(1);
    return chunks.filter((c) => !c.startsWith("--")).flatMap((c) => mimeParts(c.replace(/^\r?\n/, "")));
  }
  return [{ type: type.split(";")[0].trim().toLowerCase(), text: decodeBody(body, headers["content-transfer-encoding"]) }];
}

/**
 * A real SMTP server on 127.0.0.1 (any free port) for the mail that sessiond sends: it speaks
 * the protocol over TCP (220 greeting; EHLO/HELO, MAIL FROM, RCPT TO, RSET, NOOP: 250; DATA: 354,
 * then the message up to a line "." and 250; QUIT: 221) and keeps each message it received as
 * `{ from, to, headers, text, html, raw }` (`to`: the envelope's recipients; `text`/`html`: the
 * decoded parts). `transcript()` is the whole conversation, for failure messages.
 */
export async function startSmtpServer() {
  const messages = [];
  const sockets = new Set();
  let transcript = "";
  const log = (line) => {
    transcript += `${line}\n`;
    if (transcript.length > 100_000) transcript = transcript.slice(-50_000);
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const reply = (text) => {
      log(`S: ${text.replaceAll("\r\n", "\nS: ")}`);
      if (!socket.destroyed) socket.write(`${text}\r\n`);
    };
    let buffer = "";
    let from = null;
    let to = [];
    let data = null; // the lines of the message while in DATA
    const line = (text) => {
      if (data) {
        if (text === ".") {
          const raw = data.join("\r\n");
          const { headers } = splitHeaders(raw);
          const parts = mimeParts(raw);
          messages.push({
            from, to, headers, raw,
            text: parts.find((p) => p.type === "text/plain")?.text ?? "",
            html: parts.find((p) => p.type === "text/html")?.text ?? "",
          });
          log(`C: <message of ${raw.length} characters to ${to.join(", ")}>`);
          data = null;
          from = null;
          to = [];
          reply("250 queued");
        } else {
          data.push(text.startsWith(".") ? text.slice(1) : text);
        }
        return;
      }
      log(`C: ${text}`);
      const verb = text.slice(0, 4).toUpperCase();
      if (verb === "EHLO") reply("250-test-smtp\r\n250 8BITMIME");
      else if (verb === "HELO" || verb === "NOOP") reply("250 ok");
      else if (/^MAIL FROM:/i.test(text)) {
        from = /<([^>]*)>/.exec(text)?.[1] ?? null;
        to = [];
        reply("250 ok");
      } else if (/^RCPT TO:/i.test(text)) {
        to.push(/<([^>]*)>/.exec(text)?.[1] ?? text.slice(8).trim());
        reply("250 ok");
      } else if (verb === "RSET") {
        from = null;
        to = [];
        reply("250 ok");
      } else if (verb === "DATA") {
        data = [];
        reply("354 end with <CRLF>.<CRLF>");
      } else if (verb === "QUIT") {
        reply("221 bye");
        socket.end();
      } else reply("502 not implemented");
    };
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        line(text);
      }
    });
    reply("220 test-smtp ready");
  });
  server.listen(0, HOST);
  await new Promise((ok, fail) => {
    server.once("listening", ok);
    server.once("error", fail);
  });
  return {
    port: server.address().port,
    messages,
    transcript: () => `--- SMTP on ${HOST}:${server.address().port} ---\n${transcript}`,
    /** Messages whose envelope names `address`. */
    to: (address) => messages.filter((m) => m.to.includes(address)),
    /** Waits (up to `timeoutMs`) until `count` messages to `address` arrived; resolves with them. */
    waitFor: async (address, { count = 1, timeoutMs = 5000 } = {}) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = messages.filter((m) => m.to.includes(address));
        if (got.length >= count) return got;
        if (Date.now() > deadline) {
          throw new Error(`${count} mail(s) to ${address} expected within ${timeoutMs} ms; got ${got.length} ` +
            `(${messages.length} in all)`);
        }
        await sleep(25);
      }
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((ok) => server.close(() => ok()));
    },
  };
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
