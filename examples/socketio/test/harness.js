// Starts sessiond (cookie mode, CORS for the example's origin, a temp SQLite file) and the
// example's server.js as it runs by default (following sessiond's event feed with a key of scope
// `introspect` and `events`) on free 127.0.0.1 ports, and stops both afterwards.
//
// The sessiond binary is $SESSIOND_BIN, by default ../../target/debug/sessiond relative to
// examples/socketio (scripts/test builds it with `cargo build`).

import { spawn, execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { io as connectSocket } from "socket.io-client";

const EXAMPLE_DIR = fileURLToPath(new URL("..", import.meta.url));
export const SESSIOND_BIN = resolve(
  EXAMPLE_DIR,
  process.env.SESSIOND_BIN ?? "../../target/debug/sessiond",
);
export const COOKIE_NAME = "sessiond_refresh";
const HOST = "127.0.0.1";

async function freePort() {
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

// The environment without anything SESSIOND-ish or DATABASE_URL/PORT from the caller's shell,
// so the settings below are the only ones that apply.
function cleanEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith("SESSIOND") || key === "DATABASE_URL" || key === "PORT") delete env[key];
  }
  return env;
}

// A child process whose output is kept (and shown if it dies or the tests fail).
function start(name, command, args, options) {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  child.output = "";
  const keep = (chunk) => {
    child.output += chunk;
    if (child.output.length > 200_000) child.output = child.output.slice(-100_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.exited = new Promise((ok) => child.on("exit", (code, signal) => ok({ code, signal })));
  child.label = name;
  return child;
}

async function waitFor(child, url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let exited = null;
  child.exited.then((e) => { exited = e; });
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`${child.label} exited (${JSON.stringify(exited)}) before answering:\n${child.output}`);
    }
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

async function waitForOutput(child, text, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!child.output.includes(text)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${child.label} did not print ${JSON.stringify(text)} within ${timeoutMs} ms:\n${child.output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await child.exited;
  clearTimeout(timer);
}

export async function startStack() {
  if (!existsSync(SESSIOND_BIN)) {
    throw new Error(`no sessiond binary at ${SESSIOND_BIN}: run \`cargo build\` or set SESSIOND_BIN`);
  }
  const tmp = await mkdtemp(join(tmpdir(), "sessiond-socketio-"));
  const [sessiondPort, examplePort] = [await freePort(), await freePort()];
  const sessiondUrl = `http://${HOST}:${sessiondPort}`;
  const exampleUrl = `http://${HOST}:${examplePort}`;

  // The CORS allowlist from a config file in SESSIOND_CONFIG_DIR (a comma-separated
  // SESSIOND__CORS__ALLOWED_ORIGINS would do as well).
  await mkdir(join(tmp, "config"));
  await writeFile(
    join(tmp, "config", "test.toml"),
    `[cors]\nallowed_origins = [${JSON.stringify(exampleUrl)}]\n`,
  );
  const sessiondEnv = {
    ...cleanEnv(),
    DATABASE_URL: `sqlite://${tmp}/s.db`,
    SESSIOND_CONFIG_DIR: join(tmp, "config"),
    SESSIOND_ENV: "test",
    SESSIOND__LOG__LEVEL: "warn",
  };

  const { stdout } = await promisify(execFile)(
    SESSIOND_BIN,
    ["service-keys", "create", "socketio", "--scope", "introspect", "--scope", "events"],
    { env: sessiondEnv, timeout: 30_000 },
  );
  const serviceKey = stdout.trim();
  if (!serviceKey) throw new Error("`sessiond service-keys create` printed no key");

  const stack = { tmp, sessiondUrl, exampleUrl, serviceKey, sessiondEnv, children: [] };
  // If the test process ends without after() (a crash, a cancelled run), take the children along.
  process.once("exit", () => stack.children.forEach((c) => c.exitCode === null && c.kill("SIGKILL")));
  try {
    const sessiond = start("sessiond", SESSIOND_BIN, ["serve"], {
      env: {
        ...sessiondEnv,
        PORT: String(sessiondPort),
        SESSIOND__SERVER__HOST: HOST,
        SESSIOND__SERVER__PUBLIC_URL: sessiondUrl,
        SESSIOND__COOKIES__ENABLED: "true",
        SESSIOND__COOKIES__SECURE: "false",
        SESSIOND__COOKIES__NAME: COOKIE_NAME,
      },
    });
    stack.children.push(sessiond);
    await waitFor(sessiond, `${sessiondUrl}/healthz`);

    const example = start("server.js", process.execPath, ["server.js"], {
      cwd: EXAMPLE_DIR,
      env: {
        ...cleanEnv(),
        PORT: String(examplePort),
        SESSIOND_URL: sessiondUrl,
        SESSIOND_SERVICE_KEY: serviceKey,
      },
    });
    stack.children.push(example);
    await waitFor(example, `${exampleUrl}/config.js`);
    // Sockets are closed at the end of their session only once the server follows the feed.
    await waitForOutput(example, "event feed: connected");
  } catch (err) {
    await stopStack(stack);
    throw err;
  }
  return stack;
}

export async function stopStack(stack) {
  if (!stack) return;
  await Promise.all(stack.children.map(stop));
  await rm(stack.tmp, { recursive: true, force: true });
}

/** The logs of both processes, for failure messages. */
export function logs(stack) {
  return (stack?.children ?? []).map((c) => `--- ${c.label} ---\n${c.output}`).join("\n");
}

/** Runs the sessiond command line on the stack's database; its stdout. */
export async function cli(stack, ...args) {
  const { stdout } = await promisify(execFile)(SESSIOND_BIN, args, { env: stack.sessiondEnv, timeout: 30_000 });
  return stdout;
}

/**
 * POST to sessiond as the page would, without cookies; the JSON answer or null. In cookie mode
 * sessiond answers requests that set the refresh cookie only for an allowed Origin.
 */
export async function post(stack, path, { body, token } = {}) {
  const headers = { "content-type": "application/json", origin: stack.exampleUrl };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${stack.sessiondUrl}${path}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body ?? {}),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * A Socket.IO connection to the example with the given handshake `auth`. Resolves with
 * `{ socket, hello }` once "hello" arrives; rejects with the connect_error (or a timeout).
 */
export function connect(stack, auth, timeoutMs = 5000) {
  return new Promise((ok, fail) => {
    const socket = connectSocket(stack.exampleUrl, {
      auth,
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
    });
    const timer = setTimeout(() => {
      socket.disconnect();
      fail(new Error(`no "hello" and no connect_error within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("hello", (hello) => {
      clearTimeout(timer);
      ok({ socket, hello });
    });
    socket.on("connect_error", (err) => {
      clearTimeout(timer);
      socket.disconnect();
      fail(err);
    });
  });
}
