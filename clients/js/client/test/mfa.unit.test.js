// Unit tests (no sessiond binary): second factors on the fake sessiond. A login that answers
// mfa_required and completeMfa(), TOTP enrollment (enrollTotp, confirmTotp, disableTotp),
// reauthenticate() with each method but the passkey (passkeys.unit.test.js), the step-up error
// and its challenge, and the authentication claims read from the access token.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { MfaRequiredError, SessiondError, StepUpRequiredError, createClient, memoryStorage } from "@sessiond/client";
import { authenticationClaims, readJson, stepUpChallenge } from "../dist/esm/http.js";
import { sessionState } from "../dist/esm/refresh.js";
import { FakeChannel, fakeSessiond, json, recordEvents } from "./fakes.js";

let restoreChannel;
beforeEach(() => {
  restoreChannel = FakeChannel.install();
});
afterEach(() => restoreChannel());

async function bearerClient(server, extra = {}) {
  const storage = memoryStorage();
  const client = createClient({
    url: "http://sessiond", mode: "bearer", storage, fetch: server.fetchFor(), channel: "unit", restore: false, ...extra,
  });
  await client.ready;
  return { client, storage, events: recordEvents(client) };
}

async function cookieTab(server, label) {
  const client = createClient({ url: "http://sessiond", fetch: server.fetchFor(label), restore: false });
  await client.ready;
  return { client, events: recordEvents(client) };
}

const last = (server, path) => server.calls.filter((c) => c.path === path).at(-1);
const rejection = (promise) => promise.then(() => assert.fail("resolved"), (e) => e);
const stale = (server, sessionId) => {
  server.sessions.get(sessionId).authTime -= 1000;
};

/** Signs `client` in as a@example.com, enrolls TOTP and signs out; resolves with the recovery codes. */
async function enrolled(client) {
  await client.signIn("a@example.com", "right");
  await client.enrollTotp();
  const codes = await client.confirmTotp("654321");
  await client.signOut();
  return codes;
}

test("signIn() with a second factor on the account: MfaRequiredError with mfaToken and methods; nothing stored", async () => {
  const server = fakeSessiond();
  const { client, storage, events } = await bearerClient(server);
  try {
    await enrolled(client);
    const before = events.length;
    FakeChannel.posted = [];
    const err = await rejection(client.signIn("a@example.com", "right"));
    assert.ok(err instanceof MfaRequiredError);
    assert.ok(err instanceof SessiondError, "apps that switch on SessiondError's code keep working");
    assert.equal(err.name, "MfaRequiredError");
    assert.equal(err.status, 401);
    assert.equal(err.code, "mfa_required");
    assert.equal(err.description, "a second factor is required");
    assert.match(err.mfaToken, /^mfa-/);
    assert.deepEqual(err.methods, ["totp", "recovery_code"]);
    assert.equal(client.signedIn, false);
    assert.equal(await storage.get(), null);
    assert.equal(events.length, before);
    assert.deepEqual(FakeChannel.posted, []);
    // A wrong password is still invalid_credentials, not an MFA question.
    const wrong = await rejection(client.signIn("a@example.com", "wrong"));
    assert.ok(!(wrong instanceof MfaRequiredError));
    assert.equal(wrong.code, "invalid_credentials");
  } finally {
    client.dispose();
  }
});

test("completeMfa({ mfaToken, code }): POST /v1/login/mfa { mfa_token, code }; signs in as signIn() does", async () => {
  const server = fakeSessiond({ jwt: true });
  const { client, storage, events } = await bearerClient(server);
  try {
    await enrolled(client);
    const { mfaToken } = await rejection(client.signIn("a@example.com", "right"));
    FakeChannel.posted = [];
    const user = await client.completeMfa({ mfaToken, code: "654321" });
    const call = last(server, "/v1/login/mfa");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { mfa_token: mfaToken, code: "654321" });
    assert.equal(call.headers.get("authorization"), null);
    assert.equal(call.headers.get("content-type"), "application/json");
    assert.equal(call.credentials, "omit");
    assert.equal(user.email, "a@example.com");
    assert.equal(client.signedIn, true);
    const session = client.getSession();
    assert.equal(await storage.get(), server.sessions.get(session.sessionId).refresh);
    assert.equal(events.at(-1).type, "signed_in");
    assert.deepEqual(FakeChannel.posted.map((m) => m.data), [{ type: "signed_in", sessionId: session.sessionId, guest: false }]);
    // What the access token says of the authentication.
    assert.equal(session.acr, "2");
    assert.deepEqual(session.amr, ["pwd", "otp"]);
    assert.equal(session.authTime, server.sessions.get(session.sessionId).authTime);
    // The token is single use.
    await client.signOut();
    assert.equal((await rejection(client.completeMfa({ mfaToken, code: "654321" }))).code, "invalid_grant");
  } finally {
    client.dispose();
  }
});

test("completeMfa({ mfaToken, recoveryCode }) sends recovery_code; a wrong code is invalid_grant and signs nobody in", async () => {
  const server = fakeSessiond({ mode: "cookie", jwt: true });
  const { client } = await cookieTab(server, "a");
  try {
    const codes = await enrolled(client);
    const { mfaToken } = await rejection(client.signIn("a@example.com", "right"));
    const wrong = await rejection(client.completeMfa({ mfaToken, recoveryCode: "not-a-code" }));
    assert.ok(wrong instanceof SessiondError);
    assert.equal(wrong.status, 400);
    assert.equal(wrong.code, "invalid_grant");
    assert.equal(client.signedIn, false);

    const { mfaToken: again } = await rejection(client.signIn("a@example.com", "right"));
    await client.completeMfa({ mfaToken: again, recoveryCode: codes[3] });
    const call = last(server, "/v1/login/mfa");
    assert.deepEqual(call.body, { mfa_token: again, recovery_code: codes[3] });
    assert.equal(call.credentials, "include");
    assert.equal(client.signedIn, true);
    assert.deepEqual(client.getSession().amr, ["pwd", "rc"]);
  } finally {
    client.dispose();
  }
});

test("verifyEmailSignIn() on an account with a second factor: MfaRequiredError, then completeMfa()", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await enrolled(client);
    await client.signInWithEmail("a@example.com");
    const err = await rejection(client.verifyEmailSignIn({ email: "a@example.com", code: "123456" }));
    assert.ok(err instanceof MfaRequiredError);
    assert.equal(client.signedIn, false);
    await client.completeMfa({ mfaToken: err.mfaToken, code: "654321" });
    assert.equal(client.user.email, "a@example.com");
  } finally {
    client.dispose();
  }
});

test("enrollTotp(): POST /v1/mfa/totp with the access token and no body; resolves with { secret, otpauth_uri }", async () => {
  const server = fakeSessiond();
  const { client, events } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const enrollment = await client.enrollTotp();
    const call = last(server, "/v1/mfa/totp");
    assert.equal(call.method, "POST");
    assert.equal(call.body, null);
    assert.equal(call.headers.get("authorization"), `Bearer ${client.getSession().accessToken}`);
    const { secret } = server.totp.get(client.user.id);
    assert.deepEqual(enrollment, {
      secret, otpauth_uri: `otpauth://totp/sessiond:a@example.com?secret=${secret}&issuer=sessiond`,
    });
    // Nothing changes for the session until it is confirmed.
    assert.equal(server.totp.get(client.user.id).confirmed, false);
    assert.deepEqual(events.map((e) => e.type), ["signed_in"]);
  } finally {
    client.dispose();
  }
});

test("enrollTotp() without a fresh authentication: StepUpRequiredError with the challenge's max_age, no refresh", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    stale(server, client.sessionId);
    const err = await rejection(client.enrollTotp());
    assert.ok(err instanceof StepUpRequiredError);
    assert.ok(err instanceof SessiondError);
    assert.equal(err.name, "StepUpRequiredError");
    assert.equal(err.status, 401);
    assert.equal(err.code, "insufficient_user_authentication");
    assert.equal(err.maxAge, 300);
    assert.equal(err.acrValues, undefined);
    assert.equal(server.count("/v1/mfa/totp"), 1);
    assert.equal(server.count("/v1/token/refresh"), 0);
    assert.equal(server.totp.size, 0);
    await client.reauthenticate({ password: "right" });
    assert.ok((await client.enrollTotp()).secret);
  } finally {
    client.dispose();
  }
});

test("confirmTotp(code): POST /v1/mfa/totp/confirm { code }; resolves with the 10 recovery codes; a wrong code is invalid_grant", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    await client.enrollTotp();
    const wrong = await rejection(client.confirmTotp("000000"));
    assert.equal(wrong.code, "invalid_grant");
    assert.equal(server.totp.get(client.user.id).confirmed, false);

    const codes = await client.confirmTotp("654321");
    const call = last(server, "/v1/mfa/totp/confirm");
    assert.equal(call.method, "POST");
    assert.deepEqual(call.body, { code: "654321" });
    assert.equal(call.headers.get("authorization"), `Bearer ${client.getSession().accessToken}`);
    assert.equal(call.headers.get("content-type"), "application/json");
    assert.equal(codes.length, 10);
    assert.deepEqual(codes, server.totp.get(client.user.id).recovery);
    assert.equal(server.totp.get(client.user.id).confirmed, true);
  } finally {
    client.dispose();
  }
});

test("disableTotp(): DELETE /v1/mfa/totp with the access token; needs a fresh authentication", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    await client.enrollTotp();
    await client.confirmTotp("654321");
    stale(server, client.sessionId);
    assert.ok((await rejection(client.disableTotp())) instanceof StepUpRequiredError);
    assert.ok(server.totp.has(client.user.id));

    await client.reauthenticate({ code: "654321" });
    assert.equal(await client.disableTotp(), undefined);
    const call = last(server, "/v1/mfa/totp");
    assert.equal(call.method, "DELETE");
    assert.equal(call.body, null);
    assert.equal(call.headers.get("authorization"), `Bearer ${client.getSession().accessToken}`);
    assert.equal(server.totp.has(client.user.id), false);
    // Signing in takes the password alone again.
    await client.signOut();
    await client.signIn("a@example.com", "right");
    assert.equal(client.signedIn, true);
  } finally {
    client.dispose();
  }
});

test("reauthenticate({ code }) and ({ recoveryCode }) in bearer mode: the factor and the refresh token; a new authTime and acr", async () => {
  const server = fakeSessiond({ jwt: true });
  const { client, storage, events } = await bearerClient(server);
  try {
    const codes = await enrolled(client);
    const { mfaToken } = await rejection(client.signIn("a@example.com", "right"));
    await client.completeMfa({ mfaToken, code: "654321" });
    const { sessionId } = client.getSession();

    stale(server, sessionId);
    let presented = await storage.get();
    await client.reauthenticate({ code: "654321" });
    assert.deepEqual(last(server, "/v1/reauth").body, { code: "654321", refresh_token: presented });
    assert.equal(client.getSession().authTime, server.sessions.get(sessionId).authTime);
    assert.equal(client.getSession().acr, "2");

    stale(server, sessionId);
    presented = await storage.get();
    await client.reauthenticate({ recoveryCode: codes[0] });
    assert.deepEqual(last(server, "/v1/reauth").body, { recovery_code: codes[0], refresh_token: presented });
    assert.deepEqual(client.getSession().amr, ["pwd", "rc"]);
    assert.equal(client.sessionId, sessionId);
    assert.deepEqual(events.slice(-2).map((e) => e.type), ["refreshed", "refreshed"]);

    // A spent recovery code: sessiond's refusal, the session as it was.
    const before = client.getSession();
    const err = await rejection(client.reauthenticate({ recoveryCode: codes[0] }));
    assert.equal(err.code, "invalid_credentials");
    assert.deepEqual(client.getSession(), before);
  } finally {
    client.dispose();
  }
});

test("reauthenticate({ code }) in cookie mode: only the code in the body, the cookie goes along", async () => {
  const server = fakeSessiond({ mode: "cookie" });
  const { client } = await cookieTab(server, "a");
  try {
    await client.signIn("a@example.com", "right");
    await client.enrollTotp();
    await client.confirmTotp("654321");
    const cookie = server.cookie;
    await client.reauthenticate({ code: "654321" });
    const call = last(server, "/v1/reauth");
    assert.deepEqual(call.body, { code: "654321" });
    assert.equal(call.credentials, "include");
    assert.notEqual(server.cookie, cookie);
  } finally {
    client.dispose();
  }
});

test("reauthenticate() without a method it knows: a TypeError, nothing sent", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    await assert.rejects(client.reauthenticate({}), TypeError);
    await assert.rejects(client.reauthenticate({ passkey: false }), TypeError);
    assert.equal(server.count("/v1/reauth"), 0);
  } finally {
    client.dispose();
  }
});

test("stepUpChallenge() reads max_age and acr_values of an RFC 9470 challenge, nothing else", () => {
  assert.deepEqual(stepUpChallenge('Bearer error="insufficient_user_authentication", max_age=300'), { maxAge: 300 });
  assert.deepEqual(
    stepUpChallenge('Bearer realm="api", error="insufficient_user_authentication", error_description="x", max_age=60, acr_values="2 3"'),
    { maxAge: 60, acrValues: ["2", "3"] },
  );
  assert.deepEqual(stepUpChallenge('Bearer error="insufficient_user_authentication", acr_values=2'), { acrValues: ["2"] });
  assert.equal(stepUpChallenge('Bearer error="invalid_token", max_age=300'), null);
  assert.equal(stepUpChallenge(null), null);
});

test("readJson: insufficient_user_authentication becomes StepUpRequiredError, with or without a readable challenge", async () => {
  const body = { error: "insufficient_user_authentication", error_description: "authenticate again" };
  const withHeader = new Response(JSON.stringify(body), {
    status: 401,
    headers: { "www-authenticate": 'Bearer error="insufficient_user_authentication", max_age=120, acr_values="2"' },
  });
  const err = await rejection(readJson(withHeader));
  assert.ok(err instanceof StepUpRequiredError);
  assert.equal(err.description, "authenticate again");
  assert.equal(err.maxAge, 120);
  assert.deepEqual(err.acrValues, ["2"]);
  // Cross-origin without Access-Control-Expose-Headers: the code alone.
  const bare = await rejection(readJson(json(401, body)));
  assert.ok(bare instanceof StepUpRequiredError);
  assert.equal(bare.maxAge, undefined);
  // mfa_required without its token is a plain SessiondError.
  const odd = await rejection(readJson(json(401, { error: "mfa_required", error_description: "?" })));
  assert.ok(!(odd instanceof MfaRequiredError));
  assert.equal(odd.code, "mfa_required");
});

test("fetch(): an app route's step-up challenge comes back as is, without a refresh; invalid_token still refreshes", async () => {
  const server = fakeSessiond();
  let stepUps = 0;
  const fetch = async (input, init) => {
    if (String(input).endsWith("/api/transfer")) {
      stepUps++;
      return new Response(JSON.stringify({ error: "insufficient_user_authentication", error_description: "too old" }), {
        status: 401,
        headers: {
          "content-type": "application/json",
          "www-authenticate": 'Bearer realm="api", error="insufficient_user_authentication", max_age=60',
        },
      });
    }
    if (String(input).endsWith("/api/opaque")) {
      // A challenge the page cannot read (not exposed by CORS): the body says it.
      return json(401, { error: "insufficient_user_authentication", error_description: "too old" });
    }
    return server.fetchFor()(input, init);
  };
  const { client } = await bearerClient(server, { fetch });
  try {
    await client.signIn("a@example.com", "right");
    const res = await client.fetch("http://api/api/transfer", { method: "POST" });
    assert.equal(res.status, 401);
    assert.equal(stepUps, 1);
    assert.equal((await res.json()).error, "insufficient_user_authentication");
    assert.equal((await client.fetch("http://api/api/opaque")).status, 401);
    assert.equal(server.count("/v1/token/refresh"), 0);
    // Other 401s: one refresh and one retry, as before.
    server.answer("/v1/sessions", () => json(401, { error: "invalid_token", error_description: "expired" }));
    assert.equal((await client.fetch("http://sessiond/v1/sessions")).status, 404);
    assert.equal(server.count("/v1/token/refresh"), 1);
  } finally {
    client.dispose();
  }
});

test("authenticationClaims / sessionState: auth_time, acr and amr of a JWT access token; nothing from other tokens", () => {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const token = `${part({ alg: "ES256" })}.${part({ sub: "u", auth_time: 1_700_000_000, acr: "2", amr: ["hwk", "user", 7] })}.sig`;
  assert.deepEqual(authenticationClaims(token), { auth_time: 1_700_000_000, acr: "2", amr: ["hwk", "user"] });
  assert.deepEqual(authenticationClaims("at-1"), {});
  assert.deepEqual(authenticationClaims("a.!!!.c"), {});
  assert.deepEqual(authenticationClaims(`a.${part([1])}.c`), {});
  const body = { access_token: token, expires_in: 900, session_id: "s", user: { id: "u" } };
  const state = sessionState(body, 0);
  assert.equal(state.authTime, 1_700_000_000);
  assert.equal(state.acr, "2");
  assert.deepEqual(state.amr, ["hwk", "user"]);
  // The answer's own auth_time wins; an opaque token adds nothing.
  assert.equal(sessionState({ ...body, auth_time: 5 }, 0).authTime, 5);
  assert.deepEqual(Object.keys(sessionState({ ...body, access_token: "at-1" }, 0)).sort(),
    ["accessToken", "expiresAt", "sessionId", "user"]);
});
