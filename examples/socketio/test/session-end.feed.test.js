// server.js follows sessiond's event feed: when a session ends, for whatever reason and whoever
// ended it (the user, another device, a password change, the command line), every socket of
// that session is told why (`session_ended` { reason, session_id }) and disconnected by the
// server within a second; sockets of other sessions stay.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { cli, connect, logs, post, startStack, stopStack } from "./harness.js";

const T = { timeout: 15_000 };
const PASSWORD = "correct horse battery staple";
let stack;

before(async () => { stack = await startStack(); }, { timeout: 60_000 });
after(async () => { await stopStack(stack); });

/** Resolves with { told, reason, ms } once the socket was disconnected (ms counted from `since`). */
function watch(socket) {
  const result = { told: null, reason: null, ms: null };
  const done = new Promise((resolve) => {
    socket.on("session_ended", (why) => { result.told = why; });
    socket.on("disconnect", (reason) => {
      result.reason = reason;
      result.ms = Date.now() - result.since;
      resolve(result);
    });
  });
  return { result, done, start: () => { result.since = Date.now(); } };
}

async function sockets(session, n = 3) {
  const opened = [];
  for (let i = 0; i < n; i++) {
    // Tickets (as the page does) and an access token (as a backend client would).
    const auth = i === n - 1
      ? { token: session.access_token }
      : { ticket: (await post(stack, "/v1/ws-tickets", { token: session.access_token })).ticket };
    const { socket, hello } = await connect(stack, auth);
    assert.equal(hello.sid, session.session_id);
    opened.push(socket);
  }
  return opened;
}

/** Ends the session with `end()` and checks every socket of it is told `reason` and closed in 1 s. */
async function endsWithin1s(session, reason, end) {
  const socketsOfSession = await sockets(session);
  const watches = socketsOfSession.map(watch);
  watches.forEach((w) => w.start());
  await end();
  const results = await Promise.race([
    Promise.all(watches.map((w) => w.done)),
    new Promise((_, fail) => setTimeout(() => fail(new Error(
      `not every socket closed within 3 s: ${JSON.stringify(watches.map((w) => w.result))}\n${logs(stack)}`)), 3000)),
  ]);
  for (const r of results) {
    assert.deepEqual(r.told, { reason, session_id: session.session_id });
    assert.equal(r.reason, "io server disconnect");
    assert.ok(r.ms < 1000, `closed after ${r.ms} ms`);
  }
}

const signup = () => post(stack, "/v1/signup", {
  body: { email: `end-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`, password: PASSWORD },
});
const login = (email, password = PASSWORD) => post(stack, "/v1/login", { body: { email, password } });

async function request(method, path, token, body) {
  const res = await fetch(`${stack.sessiondUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", origin: stack.exampleUrl },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.text()}`);
}

test("logout: every socket of the session (tickets and a token) is told and closed; others stay", T, async () => {
  const session = await post(stack, "/v1/guest");
  const bystander = await post(stack, "/v1/guest");
  const [other] = await sockets(bystander, 1);
  await endsWithin1s(session, "logout", () => post(stack, "/v1/logout", { token: session.access_token }));
  assert.equal(other.connected, true);
  other.disconnect();
});

test("ended from another device, by a password change, and from the command line", T, async () => {
  const first = await signup();
  const email = first.user.email;

  const second = await login(email);
  await endsWithin1s(second, "revoked", () => request("DELETE", `/v1/sessions/${second.session_id}`, first.access_token));

  const third = await login(email);
  await endsWithin1s(third, "password_changed", () => request("POST", "/v1/password", first.access_token, {
    current_password: PASSWORD, new_password: `${PASSWORD} 2`,
  }));

  // A separate process writing the database: the feed still sees it.
  await endsWithin1s(first, "admin", () => cli(stack, "users", "revoke-sessions", first.user.id));
});
