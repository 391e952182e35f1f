// Unit tests (no sessiond binary): the mailed flows (password reset, email verification, sign-in
// by link or code, email change), account deletion, reauthentication and completeFromUrl(), on
// the fake sessiond: what each call sends, what it stores and what it tells the other tabs.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { SessiondError, createClient, memoryStorage } from "@sessiond/client";
import { FakeChannel, fakeSessiond, json, recordEvents, settle } from "./fakes.js";

let restoreChannel;
beforeEach(() => {
  restoreChannel = FakeChannel.install();
});
afterEach(() => {
  restoreChannel();
  delete globalThis.location;
  delete globalThis.history;
});

/** A bearer-mode client on `server`, on a channel of its own so that FakeChannel.posted shows what it says. */
async function bearerClient(server, extra = {}) {
  const storage = memoryStorage();
  const client = createClient({
    url: "http://sessiond", mode: "bearer", storage, fetch: server.fetchFor(), channel: "unit", restore: false, ...extra,
  });
  await client.ready;
  return { client, storage, events: recordEvents(client) };
}

/** A cookie-mode tab on `server` (tabs made this way share the fake's cookie jar and channel). */
async function cookieTab(server, label) {
  const client = createClient({ url: "http://sessiond", fetch: server.fetchFor(label), restore: false });
  await client.ready;
  return { client, events: recordEvents(client) };
}

/** The last request to `path`. */
const last = (server, path) => server.calls.filter((c) => c.path === path).at(-1);

/** The rejection of `promise` (fails the test if it resolves). */
const rejection = (promise) => promise.then(() => assert.fail("resolved"), (e) => e);

/** Makes the session's last authentication older than sessiond's 300 s. */
const stale = (server, sessionId) => {
  server.sessions.get(sessionId).authTime -= 1000;
};

/** A page at `href`: `location` and a `history` whose replaceState is recorded. */
function fakePage(href) {
  const replaced = [];
  globalThis.location = { href };
  globalThis.history = {
    state: { page: 1 },
    replaceState(state, title, url) {
      replaced.push({ state, title, url: String(url) });
      globalThis.location.href = new URL(url, globalThis.location.href).href;
    },
  };
  return replaced;
}

test("requestPasswordReset(): POST /v1/password/forgot { email }, no access token; resolves without signing in", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  const tab = await cookieTab(fakeSessiond({ mode: "cookie" }), "cookie");
  try {
    assert.equal(await client.requestPasswordReset("a@example.com"), undefined);
    const call = last(server, "/v1/password/forgot");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { email: "a@example.com" });
    assert.equal(call.headers.get("authorization"), null);
    assert.equal(call.headers.get("content-type"), "application/json");
    assert.equal(call.credentials, "omit");
    assert.equal(client.signedIn, false);
    assert.deepEqual(server.mails.map((m) => [m.type, m.to]), [["reset_password", "a@example.com"]]);
    // Cookie mode: a credentialed JSON request, as every request of that mode.
    await tab.client.requestPasswordReset("a@example.com");
    assert.equal(tab.client.signedIn, false);
  } finally {
    client.dispose();
    tab.client.dispose();
  }
});

test("resetPassword(): POST /v1/password/reset { token, new_password }, signs in; a spent token is invalid_grant", async () => {
  const server = fakeSessiond();
  const { client, storage, events } = await bearerClient(server);
  try {
    await client.requestPasswordReset("a@example.com");
    const { token } = server.mails[0];
    const user = await client.resetPassword(token, "new secret");
    const call = last(server, "/v1/password/reset");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { token, new_password: "new secret" });
    assert.equal(call.headers.get("authorization"), null);
    assert.equal(call.credentials, "omit");
    // Stored as any sign-in: state, refresh token, event, and the other tabs are told.
    assert.equal(user.email, "a@example.com");
    assert.equal(client.signedIn, true);
    assert.deepEqual(client.user, user);
    const { sessionId, accessToken } = client.getSession();
    assert.equal(await storage.get(), server.sessions.get(sessionId).refresh);
    assert.deepEqual(events.map((e) => [e.type, e.sessionId]), [["signed_in", sessionId]]);
    assert.deepEqual(FakeChannel.posted.map((m) => m.data), [{ type: "signed_in", sessionId, guest: false }]);

    const err = await rejection(client.resetPassword(token, "another"));
    assert.ok(err instanceof SessiondError);
    assert.equal(err.status, 400);
    assert.equal(err.code, "invalid_grant");
    // The session is left alone.
    assert.equal(client.getSession().accessToken, accessToken);
    assert.equal(events.length, 1);
  } finally {
    client.dispose();
  }
});

test("sendVerification(): POST /v1/email/verify/send with the access token and no body", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    assert.equal(await client.sendVerification(), undefined);
    const call = last(server, "/v1/email/verify/send");
    assert.equal(call.method, "POST");
    assert.equal(call.body, null);
    assert.equal(call.headers.get("authorization"), `Bearer ${client.getSession().accessToken}`);
    assert.deepEqual(server.mails.map((m) => [m.type, m.to]), [["verify_email", "a@example.com"]]);
    // Refused (a guest has no email to verify): sessiond's code.
    const guest = await bearerClient(server);
    await guest.client.guest();
    assert.equal((await rejection(guest.client.sendVerification())).code, "forbidden");
    guest.client.dispose();
  } finally {
    client.dispose();
  }
});

test("verifyEmail(): POST /v1/email/verify { token }; returns the user and marks the signed-in user verified", async () => {
  const server = fakeSessiond();
  const { client, events } = await bearerClient(server);
  const other = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    assert.equal(client.user.email_verified, false);
    const before = client.getSession();
    await client.sendVerification();
    const { token } = server.mails[0];
    const user = await client.verifyEmail(token);
    const call = last(server, "/v1/email/verify");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { token });
    assert.equal(call.headers.get("authorization"), null);
    assert.equal(user.email_verified, true);
    assert.equal(user.id, before.user.id);
    assert.equal(client.user.email_verified, true);
    assert.equal(client.getSession().user.email_verified, true);
    // Same session and token; no refresh.
    assert.equal(client.getSession().accessToken, before.accessToken);
    assert.equal(server.count("/v1/token/refresh"), 0);
    assert.deepEqual(events.map((e) => e.type), ["signed_in"]);

    // Spent: invalid_grant, and the user stays as it was.
    const err = await rejection(client.verifyEmail(token));
    assert.ok(err instanceof SessiondError);
    assert.equal(err.code, "invalid_grant");
    assert.equal(client.user.email_verified, true);

    // A link opened where nobody is signed in: the user comes back, nothing is stored.
    await client.sendVerification();
    const verified = await other.client.verifyEmail(server.mails[1].token);
    assert.equal(verified.email_verified, true);
    assert.equal(other.client.signedIn, false);
  } finally {
    client.dispose();
    other.client.dispose();
  }
});

test("verifyEmail() for another user leaves the signed-in user alone", async () => {
  const server = fakeSessiond();
  const a = await bearerClient(server);
  const b = await bearerClient(server);
  try {
    await a.client.signIn("a@example.com", "right");
    await b.client.guest();
    await a.client.sendVerification();
    await b.client.verifyEmail(server.mails[0].token);
    assert.equal(b.client.user.email_verified, undefined);
    assert.equal(b.client.user.is_guest, true);
  } finally {
    a.client.dispose();
    b.client.dispose();
  }
});

test("signInWithEmail() mails a link and a code; verifyEmailSignIn({ token }) signs in", async () => {
  const server = fakeSessiond();
  const { client, storage, events } = await bearerClient(server);
  try {
    assert.equal(await client.signInWithEmail("b@example.com"), undefined);
    const sent = last(server, "/v1/login/email");
    assert.equal(sent.method, "POST");
    assert.deepEqual(sent.body, { email: "b@example.com" });
    assert.equal(sent.headers.get("authorization"), null);
    assert.equal(client.signedIn, false);
    const { token } = server.mails[0];

    const user = await client.verifyEmailSignIn({ token });
    const call = last(server, "/v1/login/email/verify");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { token });
    assert.equal(call.headers.get("authorization"), null);
    assert.equal(user.email, "b@example.com");
    assert.equal(client.user.email, "b@example.com");
    assert.equal(await storage.get(), server.sessions.get(client.sessionId).refresh);
    assert.deepEqual(events.map((e) => e.type), ["signed_in"]);
    assert.deepEqual(FakeChannel.posted.at(-1).data, { type: "signed_in", sessionId: client.sessionId, guest: false });

    const err = await rejection(client.verifyEmailSignIn({ token }));
    assert.equal(err.status, 400);
    assert.equal(err.code, "invalid_grant");
  } finally {
    client.dispose();
  }
});

test("verifyEmailSignIn({ email, code }): sends exactly the email and the code; a wrong code is invalid_grant", async () => {
  const server = fakeSessiond({ mode: "cookie" });
  const { client, events } = await cookieTab(server, "a");
  try {
    await client.signInWithEmail("c@example.com");
    assert.equal(last(server, "/v1/login/email").credentials, "include");
    const wrong = await rejection(client.verifyEmailSignIn({ email: "c@example.com", code: "000000" }));
    assert.ok(wrong instanceof SessiondError);
    assert.equal(wrong.code, "invalid_grant");
    assert.equal(client.signedIn, false);

    const user = await client.verifyEmailSignIn({ email: "c@example.com", code: "123456" });
    const call = last(server, "/v1/login/email/verify");
    assert.deepEqual(call.body, { email: "c@example.com", code: "123456" });
    assert.equal(call.credentials, "include");
    assert.equal(user.email, "c@example.com");
    assert.equal(client.signedIn, true);
    // Cookie mode: the refresh token is in the jar, not in the answer.
    assert.equal(server.cookie, server.sessions.get(client.sessionId).refresh);
    assert.deepEqual(events.map((e) => e.type), ["signed_in"]);
  } finally {
    client.dispose();
  }
});

test("changeEmail(): POST /v1/email/change { new_email } with the access token; confirmEmailChange() updates the user", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const id = client.user.id;
    assert.equal(await client.changeEmail("new@example.com"), undefined);
    const call = last(server, "/v1/email/change");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { new_email: "new@example.com" });
    assert.equal(call.headers.get("authorization"), `Bearer ${client.getSession().accessToken}`);
    assert.deepEqual(server.mails.map((m) => [m.type, m.to]), [["change_email", "new@example.com"]]);
    // Unchanged until confirmed.
    assert.equal(client.user.email, "a@example.com");

    const { token } = server.mails[0];
    const user = await client.confirmEmailChange(token);
    const confirm = last(server, "/v1/email/change/confirm");
    assert.equal(confirm.method, "POST");
    assert.deepEqual(confirm.body, { token });
    assert.equal(confirm.headers.get("authorization"), null);
    assert.equal(user.id, id);
    assert.equal(user.email, "new@example.com");
    assert.equal(client.user.email, "new@example.com");

    const err = await rejection(client.confirmEmailChange(token));
    assert.equal(err.code, "invalid_grant");
    assert.equal(err.status, 400);
  } finally {
    client.dispose();
  }
});

test("changeEmail() without a fresh authentication: insufficient_user_authentication, no refresh, no retry", async () => {
  const server = fakeSessiond();
  const { client, events } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    stale(server, client.sessionId);
    const token = client.getSession().accessToken;
    const err = await rejection(client.changeEmail("new@example.com"));
    assert.ok(err instanceof SessiondError);
    assert.equal(err.status, 401);
    assert.equal(err.code, "insufficient_user_authentication");
    assert.equal(server.count("/v1/email/change"), 1);
    assert.equal(server.count("/v1/token/refresh"), 0);
    assert.equal(client.getSession().accessToken, token);
    assert.deepEqual(events.map((e) => e.type), ["signed_in"]);
    assert.deepEqual(server.mails, []);
    // After reauthenticate() it goes through.
    await client.reauthenticate({ password: "right" });
    await client.changeEmail("new@example.com");
    assert.equal(server.mails[0].to, "new@example.com");
  } finally {
    client.dispose();
  }
});

test("an access token refused as invalid_token on the way: one refresh and one retry with the new token", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const first = client.getSession().accessToken;
    server.answer("/v1/email/change", () => json(401, { error: "invalid_token", error_description: "expired" }));
    await client.changeEmail("new@example.com");
    const sent = server.calls.filter((c) => c.path === "/v1/email/change").map((c) => c.headers.get("authorization"));
    assert.equal(server.count("/v1/token/refresh"), 1);
    assert.deepEqual(sent, [`Bearer ${first}`, `Bearer ${client.getSession().accessToken}`]);
    assert.notEqual(client.getSession().accessToken, first);
  } finally {
    client.dispose();
  }
});

test("deleteAccount(): DELETE /v1/me with the access token, then signed out here and in the other tabs", async () => {
  const server = fakeSessiond({ mode: "cookie" });
  const a = await cookieTab(server, "a");
  const b = await cookieTab(server, "b");
  try {
    await a.client.signIn("a@example.com", "right");
    await b.client.whenSignedIn();
    await settle();
    const { sessionId, accessToken } = a.client.getSession();
    FakeChannel.posted = [];
    assert.equal(await a.client.deleteAccount(), undefined);
    const call = last(server, "/v1/me");
    assert.equal(call.method, "DELETE");
    assert.equal(call.body, null);
    assert.equal(call.headers.get("authorization"), `Bearer ${accessToken}`);
    assert.equal(server.sessions.get(sessionId).revoked, true);
    // Signed out as signOut() does: state, event, and a message to the other tabs.
    assert.equal(a.client.signedIn, false);
    assert.equal(a.client.getSession(), null);
    assert.deepEqual(a.events.at(-1), { type: "signed_out", user: null, sessionId, remote: false, reason: "account_deleted" });
    assert.deepEqual(FakeChannel.posted.map((m) => m.data), [{ type: "signed_out", sessionId, reason: "account_deleted" }]);
    await settle();
    assert.equal(b.client.signedIn, false);
    assert.deepEqual(b.events.at(-1), { type: "signed_out", user: null, sessionId, remote: true, reason: "account_deleted" });
    assert.equal(await a.client.getAccessToken(), null);
  } finally {
    a.client.dispose();
    b.client.dispose();
  }
});

test("deleteAccount() in bearer mode clears the stored refresh token", async () => {
  const server = fakeSessiond();
  const { client, storage, events } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const { sessionId } = client.getSession();
    await client.deleteAccount();
    assert.equal(await storage.get(), null);
    assert.equal(client.signedIn, false);
    assert.equal(events.at(-1).reason, "account_deleted");
    assert.deepEqual(FakeChannel.posted.at(-1).data, { type: "signed_out", sessionId, reason: "account_deleted" });
  } finally {
    client.dispose();
  }
});

test("deleteAccount() without a fresh authentication: insufficient_user_authentication, still signed in", async () => {
  const server = fakeSessiond();
  const { client, storage, events } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const { sessionId } = client.getSession();
    const stored = await storage.get();
    stale(server, sessionId);
    FakeChannel.posted = [];
    const err = await rejection(client.deleteAccount());
    assert.ok(err instanceof SessiondError);
    assert.equal(err.status, 401);
    assert.equal(err.code, "insufficient_user_authentication");
    assert.equal(server.count("/v1/me"), 1);
    assert.equal(server.count("/v1/token/refresh"), 0);
    assert.equal(client.signedIn, true);
    assert.equal(await storage.get(), stored);
    assert.equal(server.sessions.get(sessionId).revoked, false);
    assert.deepEqual(events.map((e) => e.type), ["signed_in"]);
    assert.deepEqual(FakeChannel.posted, []);
  } finally {
    client.dispose();
  }
});

test("reauthenticate() in bearer mode: POST /v1/reauth { password, refresh_token }; the rotated tokens are kept as a refresh's", async () => {
  const server = fakeSessiond();
  const { client, storage, events } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const before = client.getSession();
    const presented = await storage.get();
    stale(server, before.sessionId);
    const staleAuth = server.sessions.get(before.sessionId).authTime;
    FakeChannel.posted = [];

    const user = await client.reauthenticate({ password: "right" });
    const call = last(server, "/v1/reauth");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { password: "right", refresh_token: presented });
    assert.equal(call.headers.get("authorization"), `Bearer ${before.accessToken}`);
    assert.equal(call.credentials, "omit");
    assert.deepEqual(user, before.user);
    // The same session, a new access token, the successor refresh token in storage.
    const after = client.getSession();
    assert.equal(after.sessionId, before.sessionId);
    assert.notEqual(after.accessToken, before.accessToken);
    assert.notEqual(await storage.get(), presented);
    assert.equal(await storage.get(), server.sessions.get(before.sessionId).refresh);
    assert.ok(after.authTime > staleAuth);
    assert.equal(after.authTime, server.sessions.get(before.sessionId).authTime);
    // A refresh as far as listeners know; nothing for the other tabs.
    assert.deepEqual(events.map((e) => [e.type, e.sessionId]), [["signed_in", before.sessionId], ["refreshed", before.sessionId]]);
    assert.deepEqual(FakeChannel.posted, []);
    assert.equal(server.count("/v1/token/refresh"), 0);
    // The old refresh token is spent; the stored one refreshes.
    assert.ok(await client.refresh());
  } finally {
    client.dispose();
  }
});

test("reauthenticate() in cookie mode: only the password in the body, the cookie goes along and is rotated", async () => {
  const server = fakeSessiond({ mode: "cookie" });
  const { client, events } = await cookieTab(server, "a");
  try {
    await client.signIn("a@example.com", "right");
    const before = client.getSession();
    const cookie = server.cookie;
    await client.reauthenticate({ password: "right" });
    const call = last(server, "/v1/reauth");
    assert.deepEqual(call.body, { password: "right" });
    assert.equal(call.credentials, "include");
    assert.equal(call.headers.get("authorization"), `Bearer ${before.accessToken}`);
    assert.notEqual(server.cookie, cookie);
    assert.equal(client.sessionId, before.sessionId);
    assert.notEqual(client.getSession().accessToken, before.accessToken);
    assert.deepEqual(events.map((e) => e.type), ["signed_in", "refreshed"]);
  } finally {
    client.dispose();
  }
});

test("reauthenticate() with a wrong password rejects with sessiond's code and keeps the session as it was", async () => {
  const server = fakeSessiond();
  const { client, storage, events } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const before = client.getSession();
    const stored = await storage.get();
    const err = await rejection(client.reauthenticate({ password: "wrong" }));
    assert.ok(err instanceof SessiondError);
    assert.equal(err.status, 401);
    assert.equal(err.code, "invalid_credentials");
    assert.deepEqual(client.getSession(), before);
    assert.equal(await storage.get(), stored);
    assert.deepEqual(events.map((e) => e.type), ["signed_in"]);
  } finally {
    client.dispose();
  }
});

test("completeFromUrl(): verify_email verifies, and type and token leave the address bar (the rest stays)", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    await client.sendVerification();
    const { token } = server.mails[0];
    const replaced = fakePage(`https://app.example/done?ref=mail&type=verify_email&token=${token}#top`);
    const result = await client.completeFromUrl();
    assert.deepEqual(result, { type: "verify_email", user: client.user });
    assert.equal(result.user.email_verified, true);
    assert.deepEqual(last(server, "/v1/email/verify").body, { token });
    assert.deepEqual(replaced, [{ state: { page: 1 }, title: "", url: "https://app.example/done?ref=mail#top" }]);
    assert.equal(globalThis.location.href, "https://app.example/done?ref=mail#top");
  } finally {
    client.dispose();
  }
});

test("completeFromUrl(): sign_in signs in and returns the user and the session", async () => {
  const server = fakeSessiond();
  const { client, storage } = await bearerClient(server);
  try {
    await client.signInWithEmail("b@example.com");
    const replaced = fakePage(`https://app.example/?type=sign_in&token=${server.mails[0].token}`);
    const result = await client.completeFromUrl();
    assert.equal(result.type, "sign_in");
    assert.equal(result.user.email, "b@example.com");
    assert.deepEqual(result.session, client.getSession());
    assert.deepEqual(last(server, "/v1/login/email/verify").body, { token: server.mails[0].token });
    assert.equal(await storage.get(), server.sessions.get(client.sessionId).refresh);
    assert.deepEqual(replaced.map((r) => r.url), ["https://app.example/"]);
  } finally {
    client.dispose();
  }
});

test("completeFromUrl(): change_email confirms the new address", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    await client.changeEmail("new@example.com");
    const replaced = fakePage(`https://app.example/account?type=change_email&token=${server.mails[0].token}`);
    const result = await client.completeFromUrl();
    assert.deepEqual(Object.keys(result).sort(), ["type", "user"]);
    assert.equal(result.type, "change_email");
    assert.equal(result.user.email, "new@example.com");
    assert.equal(client.user.email, "new@example.com");
    assert.deepEqual(replaced.map((r) => r.url), ["https://app.example/account"]);
  } finally {
    client.dispose();
  }
});

test("completeFromUrl(): reset_password without newPassword returns the token and sends nothing; with it, signs in", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.requestPasswordReset("a@example.com");
    const { token } = server.mails[0];
    const replaced = fakePage(`https://app.example/reset?type=reset_password&token=${token}`);
    const requests = server.calls.length;
    assert.deepEqual(await client.completeFromUrl(), { type: "reset_password", token });
    assert.equal(server.calls.length, requests);
    assert.equal(client.signedIn, false);
    // The token left the address bar: the page keeps the returned one.
    assert.deepEqual(replaced.map((r) => r.url), ["https://app.example/reset"]);
    assert.equal(await client.completeFromUrl(), null);

    fakePage(`https://app.example/reset?type=reset_password&token=${token}`);
    const result = await client.completeFromUrl(undefined, { newPassword: "new secret" });
    assert.equal(result.type, "reset_password");
    assert.equal(result.user.email, "a@example.com");
    assert.deepEqual(result.session, client.getSession());
    assert.deepEqual(last(server, "/v1/password/reset").body, { token, new_password: "new secret" });
    assert.equal(globalThis.location.href, "https://app.example/reset");
  } finally {
    client.dispose();
  }
});

test("completeFromUrl(): null without a link in the URL (nothing sent, the URL untouched)", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    for (const href of [
      "https://app.example/",
      "https://app.example/?type=verify_email",
      "https://app.example/?token=abc",
      "https://app.example/?type=something_else&token=abc",
    ]) {
      const replaced = fakePage(href);
      assert.equal(await client.completeFromUrl(), null, href);
      assert.deepEqual(replaced, [], href);
      assert.equal(globalThis.location.href, href);
    }
    // No page at all (Node), no URL given.
    delete globalThis.location;
    delete globalThis.history;
    assert.equal(await client.completeFromUrl(), null);
    assert.equal(server.calls.length, 0);
  } finally {
    client.dispose();
  }
});

test("completeFromUrl(url): the given URL is completed; the address bar is left alone when it is not the page's", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signInWithEmail("b@example.com");
    const replaced = fakePage("https://app.example/elsewhere");
    const result = await client.completeFromUrl(new URL(`https://app.example/in?type=sign_in&token=${server.mails[0].token}`));
    assert.equal(result.type, "sign_in");
    assert.equal(client.signedIn, true);
    assert.deepEqual(replaced, []);
    // Without history (Node): completed all the same.
    delete globalThis.location;
    delete globalThis.history;
    await client.requestPasswordReset("b@example.com");
    assert.deepEqual(await client.completeFromUrl(`https://app.example/reset?type=reset_password&token=${server.mails[1].token}`),
      { type: "reset_password", token: server.mails[1].token });
  } finally {
    client.dispose();
  }
});

test("completeFromUrl(): a spent link rejects with invalid_grant, and the token is out of the address bar anyway", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    const replaced = fakePage("https://app.example/?type=verify_email&token=mt-spent");
    const err = await rejection(client.completeFromUrl());
    assert.ok(err instanceof SessiondError);
    assert.equal(err.code, "invalid_grant");
    assert.deepEqual(replaced.map((r) => r.url), ["https://app.example/"]);
  } finally {
    client.dispose();
  }
});
