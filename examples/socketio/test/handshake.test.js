// Socket.IO handshakes against a real sessiond: one-time tickets and introspected access tokens.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, logs, post, startStack, stopStack } from "./harness.js";

const T = { timeout: 10_000 };
let stack;

before(async () => { stack = await startStack(); }, { timeout: 60_000 });
after(async () => { await stopStack(stack); });

async function guest() {
  const session = await post(stack, "/v1/guest");
  assert.equal(session.user.is_guest, true);
  // Cookie mode: the refresh token is only in the Set-Cookie header, never in the JSON.
  assert.equal(session.refresh_token, undefined);
  return session;
}

async function ticketFor(session) {
  const { ticket, expires_in } = await post(stack, "/v1/ws-tickets", { token: session.access_token });
  assert.equal(typeof ticket, "string");
  assert.equal(expires_in, 30);
  return ticket;
}

async function refused(auth, message) {
  await assert.rejects(connect(stack, auth), (err) => {
    assert.equal(err.message, message, logs(stack));
    return true;
  });
}

describe("ticket handshake", () => {
  test("a fresh ticket connects and the server knows the user", T, async () => {
    const session = await guest();
    const { socket, hello } = await connect(stack, { ticket: await ticketFor(session) });
    try {
      const { auth_time, ...identity } = hello;
      assert.deepEqual(identity, {
        sub: session.user.id,
        sid: session.session_id,
        is_guest: true,
        email: null,
        // How the session authenticated, for sockets that require a recent or two-factor one.
        amr: ["guest"],
        acr: "1",
      });
      const issued = JSON.parse(Buffer.from(session.access_token.split(".")[1], "base64url").toString());
      assert.equal(auth_time, issued.auth_time);
    } finally {
      socket.disconnect();
    }
  });

  test("a ticket works only once", T, async () => {
    const session = await guest();
    const ticket = await ticketFor(session);
    const { socket } = await connect(stack, { ticket });
    socket.disconnect();
    await refused({ ticket }, "invalid or expired ticket");
  });

  test("a ticket of a session that logged out is refused", T, async () => {
    const session = await guest();
    const ticket = await ticketFor(session);
    assert.equal(await post(stack, "/v1/logout", { token: session.access_token }), null);
    await refused({ ticket }, "invalid or expired ticket");
  });

  test("made-up tickets and empty handshakes are refused", T, async () => {
    await refused({ ticket: "not-a-ticket" }, "invalid or expired ticket");
    await refused({ ticket: "A".repeat(43) }, "invalid or expired ticket");
    await refused({}, "a ticket or an access token is required");
  });
});

describe("access token handshake (introspection)", () => {
  test("an access token connects", T, async () => {
    const session = await guest();
    const { socket, hello } = await connect(stack, { token: session.access_token });
    try {
      assert.equal(hello.sub, session.user.id);
      assert.equal(hello.sid, session.session_id);
      assert.equal(hello.is_guest, true);
    } finally {
      socket.disconnect();
    }
  });

  test("the access token of a session that logged out is refused", T, async () => {
    const session = await guest();
    const { socket } = await connect(stack, { token: session.access_token });
    socket.disconnect();
    await post(stack, "/v1/logout", { token: session.access_token });
    await refused({ token: session.access_token }, "invalid or expired token");
  });

  test("a token that is not a sessiond token is refused", T, async () => {
    await refused({ token: "eyJhbGciOiJub25lIn0.e30." }, "invalid or expired token");
  });
});
