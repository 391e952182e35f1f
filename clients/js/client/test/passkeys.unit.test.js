// Unit tests (no sessiond binary, no browser): passkeys. src/webauthn.ts's conversions between
// WebAuthn's JSON forms and the browser's binary ones, through the browser's Level 3
// converters and through the fallback; and registerPasskey(), signInWithPasskey() (dialog and
// autofill), listPasskeys(), deletePasskey() and reauthenticate({ passkey: true }) on the fake
// sessiond with a fake navigator.credentials, in both kinds of browser.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import {
  SessiondError, StepUpRequiredError, createClient, memoryStorage, passkeyAutofillSupported, passkeysSupported,
} from "@sessiond/client";
import { fromBase64url, toBase64url } from "../dist/esm/base64url.js";
import {
  Ceremonies, authenticationToJSON, creationOptionsFromJSON, registrationToJSON, requestOptionsFromJSON, unwrapOptions,
} from "../dist/esm/webauthn.js";
import { FakeChannel, fakeAuthenticator, fakeSessiond, recordEvents, settle } from "./fakes.js";

const bytes = (buffer) => [...new Uint8Array(buffer)];
const text = (buffer) => new TextDecoder().decode(buffer);
const last = (server, path) => server.calls.filter((c) => c.path === path).at(-1);
const rejection = (promise) => promise.then(() => assert.fail("resolved"), (e) => e);

let restoreChannel;
let restoreWebAuthn = () => {};
beforeEach(() => {
  restoreChannel = FakeChannel.install();
});
afterEach(() => {
  restoreChannel();
  restoreWebAuthn();
  restoreWebAuthn = () => {};
});

/** A fake authenticator installed as the page's WebAuthn (Level 3 converters or not). */
function browser(level3) {
  const authenticator = fakeAuthenticator();
  restoreWebAuthn = authenticator.install({ level3 });
  return authenticator;
}

async function bearerClient(server, extra = {}) {
  const storage = memoryStorage();
  const client = createClient({
    url: "http://sessiond", mode: "bearer", storage, fetch: server.fetchFor(), channel: "unit", restore: false, ...extra,
  });
  await client.ready;
  return { client, storage, events: recordEvents(client) };
}

test("base64url: round trips, no padding, URL-safe alphabet; plain base64 and padding read too; garbage refused", () => {
  for (const length of [0, 1, 2, 3, 4, 31, 32, 33]) {
    const data = Uint8Array.from({ length }, (_, i) => (i * 67 + 251) % 256);
    const encoded = toBase64url(data);
    assert.equal(encoded, Buffer.from(data).toString("base64url"));
    assert.doesNotMatch(encoded, /[+/=]/);
    assert.deepEqual(bytes(fromBase64url(encoded)), [...data]);
    assert.ok(fromBase64url(encoded) instanceof ArrayBuffer);
    assert.deepEqual(bytes(fromBase64url(Buffer.from(data).toString("base64"))), [...data]);
  }
  // A view on part of a buffer: only its bytes.
  const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
  assert.equal(toBase64url(view), "AQID");
  assert.equal(toBase64url(new DataView(view.buffer, 1, 3)), "AQID");
  assert.throws(() => fromBase64url("not base64!"), TypeError);
  assert.throws(() => fromBase64url("A"), TypeError);
});

describe("WebAuthn JSON <-> binary", () => {
  const creationJSON = {
    rp: { name: "sessiond", id: "app.example" },
    user: { id: "dS0x", name: "a@example.com", displayName: "a@example.com" },
    challenge: "Y2hhbGxlbmdl",
    pubKeyCredParams: [{ type: "public-key", alg: -7 }],
    timeout: 300000,
    excludeCredentials: [{ type: "public-key", id: "AQID", transports: ["internal"] }],
    authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
    attestation: "none",
  };
  const requestJSON = {
    challenge: "Y2hhbGxlbmdl", rpId: "app.example", userVerification: "preferred",
    allowCredentials: [{ type: "public-key", id: "AQID" }],
  };

  test("unwrapOptions: webauthn-rs's { publicKey } or the options themselves; null members dropped", () => {
    assert.deepEqual(unwrapOptions({ publicKey: requestJSON, mediation: "conditional" }), requestJSON);
    assert.deepEqual(unwrapOptions(requestJSON), requestJSON);
    assert.deepEqual(unwrapOptions({ publicKey: { ...creationJSON, hints: null, extensions: { credProps: true, uvm: null } } }),
      { ...creationJSON, extensions: { credProps: true } });
    assert.throws(() => unwrapOptions(null), TypeError);
    assert.throws(() => unwrapOptions({ publicKey: { rpId: "x" } }), /challenge/);
  });

  test("fallback (no Level 3 in the browser): challenge, user.id and credential ids become ArrayBuffers; the rest is kept", () => {
    browser(false);
    const creation = creationOptionsFromJSON(creationJSON);
    assert.ok(creation.challenge instanceof ArrayBuffer);
    assert.equal(text(creation.challenge), "challenge");
    assert.deepEqual(bytes(creation.user.id), [...Buffer.from("u-1")]);
    assert.equal(creation.user.name, "a@example.com");
    assert.deepEqual(bytes(creation.excludeCredentials[0].id), [1, 2, 3]);
    assert.deepEqual(creation.excludeCredentials[0].transports, ["internal"]);
    assert.deepEqual(creation.pubKeyCredParams, creationJSON.pubKeyCredParams);
    assert.deepEqual(creation.authenticatorSelection, creationJSON.authenticatorSelection);
    assert.equal(creation.timeout, 300000);
    assert.equal(creationJSON.challenge, "Y2hhbGxlbmdl", "the JSON is left alone");

    const request = requestOptionsFromJSON(requestJSON);
    assert.equal(text(request.challenge), "challenge");
    assert.deepEqual(bytes(request.allowCredentials[0].id), [1, 2, 3]);
    assert.equal(request.rpId, "app.example");
    assert.equal(request.userVerification, "preferred");
    // Absent lists stay absent (an empty allowCredentials would mean something else).
    assert.equal("allowCredentials" in requestOptionsFromJSON({ challenge: "AA" }), false);
    assert.equal("excludeCredentials" in creationOptionsFromJSON({ ...creationJSON, excludeCredentials: undefined }), false);
  });

  test("Level 3 browsers: PublicKeyCredential.parse*FromJSON do the conversion", () => {
    const authenticator = browser(true);
    const creation = creationOptionsFromJSON(creationJSON);
    const request = requestOptionsFromJSON(requestJSON);
    assert.deepEqual(authenticator.converted, { creation: 1, request: 1, toJSON: 0 });
    assert.equal(text(creation.challenge), "challenge");
    assert.equal(text(request.challenge), "challenge");
  });

  /** A created credential as a browser returns it (binary), with or without toJSON. */
  function attestationCredential(toJSON) {
    const buffer = (s) => new Uint8Array(Buffer.from(s)).buffer;
    return {
      id: "AQID", rawId: new Uint8Array([1, 2, 3]).buffer, type: "public-key", authenticatorAttachment: "cross-platform",
      response: {
        clientDataJSON: buffer("client data"), attestationObject: buffer("attestation"),
        getTransports: () => ["usb", "nfc"], getAuthenticatorData: () => buffer("auth data"),
        getPublicKey: () => null, getPublicKeyAlgorithm: () => -8,
      },
      getClientExtensionResults: () => ({ credProps: { rk: true }, prf: { enabled: true, results: { first: new Uint8Array([255, 254]) } } }),
      ...(toJSON && { toJSON }),
    };
  }

  test("registrationToJSON: the fallback builds RegistrationResponseJSON, binary extension outputs included", () => {
    assert.deepEqual(registrationToJSON(attestationCredential()), {
      id: "AQID", rawId: "AQID", type: "public-key", authenticatorAttachment: "cross-platform",
      response: {
        clientDataJSON: toBase64url(Buffer.from("client data")), attestationObject: toBase64url(Buffer.from("attestation")),
        transports: ["usb", "nfc"], authenticatorData: toBase64url(Buffer.from("auth data")), publicKeyAlgorithm: -8,
      },
      clientExtensionResults: { credProps: { rk: true }, prf: { enabled: true, results: { first: "__4" } } },
    });
  });

  test("registrationToJSON: the browser's toJSON() where it gives the JSON form; the fallback where it does not", () => {
    const fromBrowser = {
      id: "AQID", rawId: "AQID", type: "public-key",
      response: { clientDataJSON: "Y2Q", attestationObject: "YW8", transports: ["internal"] }, clientExtensionResults: {},
    };
    assert.equal(registrationToJSON(attestationCredential(() => fromBrowser)), fromBrowser);
    // A password manager's stand-in whose toJSON returns something else, or throws.
    for (const broken of [() => ({}), () => ({ ...fromBrowser, response: {} }), () => { throw new Error("no"); }]) {
      const json = registrationToJSON(attestationCredential(broken));
      assert.equal(json.response.attestationObject, toBase64url(Buffer.from("attestation")));
    }
  });

  test("authenticationToJSON: fallback and toJSON(); a missing userHandle is null", () => {
    const buffer = (s) => new Uint8Array(Buffer.from(s)).buffer;
    const credential = (userHandle, toJSON) => ({
      id: "BAU", rawId: new Uint8Array([4, 5]).buffer, type: "public-key",
      response: { clientDataJSON: buffer("cd"), authenticatorData: buffer("ad"), signature: buffer("sig"), userHandle },
      getClientExtensionResults: () => ({}),
      ...(toJSON && { toJSON }),
    });
    assert.deepEqual(authenticationToJSON(credential(buffer("u-1"))), {
      id: "BAU", rawId: "BAU", type: "public-key", authenticatorAttachment: null,
      response: { clientDataJSON: "Y2Q", authenticatorData: "YWQ", signature: "c2ln", userHandle: "dS0x" },
      clientExtensionResults: {},
    });
    assert.equal(authenticationToJSON(credential(null)).response.userHandle, null);
    const fromBrowser = {
      id: "BAU", rawId: "BAU", type: "public-key",
      response: { clientDataJSON: "Y2Q", authenticatorData: "YWQ", signature: "c2ln", userHandle: null }, clientExtensionResults: {},
    };
    assert.equal(authenticationToJSON(credential(null, () => fromBrowser)), fromBrowser);
    assert.equal(authenticationToJSON(credential(null, () => ({ id: 1 }))).response.signature, "c2ln");
  });

  test("Ceremonies: a new ceremony aborts the one in progress; the caller's signal aborts its own", () => {
    const ceremonies = new Ceremonies();
    const first = ceremonies.begin();
    const second = ceremonies.begin();
    assert.equal(first.signal.aborted, true);
    assert.equal(first.signal.reason.name, "AbortError");
    assert.equal(second.signal.aborted, false);
    const controller = new AbortController();
    second.end();
    const third = ceremonies.begin(controller.signal);
    assert.equal(second.signal.aborted, false, "an ended ceremony is not aborted");
    controller.abort(new Error("left the page"));
    assert.equal(third.signal.reason.message, "left the page");
    const aborted = new AbortController();
    aborted.abort();
    assert.equal(ceremonies.begin(aborted.signal).signal.aborted, true);
  });
});

test("passkeysSupported() and passkeyAutofillSupported(): false without WebAuthn, else what the browser says", async () => {
  assert.equal(passkeysSupported(), false);
  assert.equal(await passkeyAutofillSupported(), false);
  const authenticator = browser(false);
  assert.equal(passkeysSupported(), true);
  assert.equal(await passkeyAutofillSupported(), true);
  authenticator.autofill = false;
  assert.equal(await passkeyAutofillSupported(), false);
});

for (const level3 of [true, false]) {
  describe(`passkeys in a browser ${level3 ? "with" : "without"} WebAuthn Level 3's JSON converters`, () => {
    const converted = (authenticator, expected) => {
      if (level3) assert.deepEqual(authenticator.converted, expected);
      else assert.deepEqual(authenticator.converted, { creation: 0, request: 0, toJSON: 0 });
    };

    test("registerPasskey({ name }): start, the browser's create(), finish with the credential's JSON", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond();
      const { client, events } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        const token = client.getSession().accessToken;
        const passkey = await client.registerPasskey({ name: "Laptop" });
        const start = last(server, "/v1/passkeys/register/start");
        assert.equal(start.method, "POST");
        assert.deepEqual(start.body, { name: "Laptop" });
        assert.equal(start.headers.get("authorization"), `Bearer ${token}`);

        // The browser got binary options, unwrapped from webauthn-rs's { publicKey }.
        const [{ method, publicKey, signal }] = authenticator.requests;
        assert.equal(method, "create");
        assert.ok(publicKey.challenge instanceof ArrayBuffer);
        assert.equal(text(publicKey.user.id), client.user.id);
        assert.equal(publicKey.rp.id, "app.example");
        assert.equal(publicKey.authenticatorSelection.residentKey, "required");
        assert.equal("hints" in publicKey, false, "null members are not passed on");
        assert.ok(signal instanceof AbortSignal);

        const finish = last(server, "/v1/passkeys/register/finish");
        assert.equal(finish.headers.get("authorization"), `Bearer ${token}`);
        assert.deepEqual(Object.keys(finish.body).sort(), ["challenge_id", "credential"]);
        assert.equal(finish.body.challenge_id, server.challenges.keys().next().value);
        const { credential } = finish.body;
        assert.equal(credential.id, toBase64url(authenticator.stored[0].rawId));
        assert.equal(credential.rawId, credential.id);
        assert.equal(credential.type, "public-key");
        assert.deepEqual(credential.response.transports, ["hybrid", "internal"]);
        assert.equal(typeof credential.response.attestationObject, "string");
        assert.deepEqual(credential.clientExtensionResults, { credProps: { rk: true } });
        converted(authenticator, { creation: 1, request: 0, toJSON: 1 });

        assert.deepEqual(passkey, { id: server.passkeys[0].id, name: "Laptop", created_at: "2025-01-01T00:00:00Z" });
        assert.deepEqual(events.map((e) => e.type), ["signed_in"], "a permanent user's session is unchanged");
        assert.equal(server.count("/v1/token/refresh"), 0);

        // No name: an empty body; the passkey already there is excluded.
        await client.registerPasskey().catch(() => {});
        assert.deepEqual(last(server, "/v1/passkeys/register/start").body, {});
        assert.deepEqual(bytes(authenticator.requests[1].publicKey.excludeCredentials[0].id), [...authenticator.stored[0].rawId]);
      } finally {
        client.dispose();
      }
    });

    test("registerPasskey(): the user cancels (NotAllowedError) or the authenticator has one (InvalidStateError): no finish", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond();
      const { client } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        authenticator.refuse = true;
        const cancelled = await rejection(client.registerPasskey());
        assert.equal(cancelled.name, "NotAllowedError");
        assert.equal(server.count("/v1/passkeys/register/finish"), 0);
        await client.registerPasskey();
        const again = await rejection(client.registerPasskey());
        assert.equal(again.name, "InvalidStateError");
        assert.equal(server.count("/v1/passkeys/register/finish"), 1);
        assert.equal(server.passkeys.length, 1);
      } finally {
        client.dispose();
      }
    });

    test("registerPasskey() without a fresh authentication: StepUpRequiredError before the browser is asked", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond();
      const { client } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        server.sessions.get(client.sessionId).authTime -= 1000;
        const err = await rejection(client.registerPasskey());
        assert.ok(err instanceof StepUpRequiredError);
        assert.equal(authenticator.requests.length, 0);
        assert.equal(server.count("/v1/token/refresh"), 0);
      } finally {
        client.dispose();
      }
    });

    test("registerPasskey() as a guest: now permanent, announced as a sign-in here and to the other tabs", async () => {
      browser(level3);
      const server = fakeSessiond({ mode: "cookie" });
      const tab = (label) => createClient({ url: "http://sessiond", fetch: server.fetchFor(label), restore: false });
      const a = tab("a");
      const b = tab("b");
      try {
        await Promise.all([a.ready, b.ready]);
        const aEvents = recordEvents(a);
        const bEvents = recordEvents(b);
        await a.guest();
        await b.whenSignedIn();
        await settle();
        const { sessionId } = a.getSession();
        FakeChannel.posted = [];
        await a.registerPasskey({ name: "Phone" });
        assert.equal(a.user.is_guest, false);
        assert.equal(a.sessionId, sessionId, "the same session");
        assert.deepEqual(aEvents.at(-1), { type: "signed_in", user: a.user, sessionId, remote: false });
        assert.deepEqual(FakeChannel.posted.map((m) => m.data), [{ type: "signed_in", sessionId, guest: false }]);
        await settle();
        assert.equal(b.user.is_guest, false);
        assert.equal(bEvents.at(-1).user.is_guest, false);
        assert.equal(bEvents.at(-1).remote, true);
      } finally {
        a.dispose();
        b.dispose();
      }
    });

    test("signInWithPasskey(): the browser's dialog (no mediation), then a session as any sign-in", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond({ jwt: true });
      const { client, storage, events } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        const { user } = client.getSession();
        await client.registerPasskey();
        await client.signOut();
        FakeChannel.posted = [];

        const signedIn = await client.signInWithPasskey();
        const start = last(server, "/v1/login/passkey/start");
        assert.equal(start.method, "POST");
        assert.deepEqual(start.body, {});
        assert.equal(start.headers.get("authorization"), null);
        const get = authenticator.requests.at(-1);
        assert.equal(get.method, "get");
        assert.equal(get.mediation, undefined, "sessiond's mediation hint does not turn a click into autofill");
        assert.equal(get.publicKey.rpId, "app.example");
        assert.ok(get.publicKey.challenge instanceof ArrayBuffer);

        const finish = last(server, "/v1/login/passkey/finish");
        assert.equal(finish.headers.get("authorization"), null);
        const { credential } = finish.body;
        assert.equal(credential.rawId, toBase64url(authenticator.stored[0].rawId));
        assert.equal(credential.response.userHandle, toBase64url(Buffer.from(user.id)));
        assert.equal(typeof credential.response.signature, "string");
        converted(authenticator, { creation: 1, request: 1, toJSON: 2 });

        assert.equal(signedIn.id, user.id);
        assert.equal(client.signedIn, true);
        assert.deepEqual(client.getSession().amr, ["hwk", "user"]);
        assert.equal(client.getSession().acr, "2");
        assert.equal(await storage.get(), server.sessions.get(client.sessionId).refresh);
        assert.equal(events.at(-1).type, "signed_in");
        assert.deepEqual(FakeChannel.posted.map((m) => m.data.type), ["signed_in"]);
        assert.ok(server.passkeys[0].last_used_at);
      } finally {
        client.dispose();
      }
    });

    test("signInWithPasskey(): options not wrapped in { publicKey } work the same; a refusal leaves the client signed out", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond();
      server.wrapOptions = false;
      const { client } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        await client.registerPasskey();
        await client.signOut();
        authenticator.refuse = true;
        assert.equal((await rejection(client.signInWithPasskey())).name, "NotAllowedError");
        assert.equal(server.count("/v1/login/passkey/finish"), 0);
        assert.equal(client.signedIn, false);
        await client.signInWithPasskey();
        assert.equal(client.signedIn, true);
        // A challenge sessiond refuses (spent, expired): its error code.
        await client.signOut();
        server.answer("/v1/login/passkey/finish", () => new Response(
          JSON.stringify({ error: "invalid_grant", error_description: "expired" }), { status: 400 }));
        const err = await rejection(client.signInWithPasskey());
        assert.ok(err instanceof SessiondError);
        assert.equal(err.code, "invalid_grant");
      } finally {
        client.dispose();
      }
    });

    test("signInWithPasskey({ conditional: true }): autofill mediation, settles when the user picks a passkey", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond();
      const { client } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        await client.registerPasskey();
        await client.signOut();
        let settled = false;
        const pending = client.signInWithPasskey({ conditional: true }).finally(() => {
          settled = true;
        });
        await settle();
        assert.equal(authenticator.requests.at(-1).mediation, "conditional");
        assert.equal(settled, false);
        assert.equal(server.count("/v1/login/passkey/finish"), 0);
        authenticator.pick();
        const user = await pending;
        assert.equal(user.email, "a@example.com");
        assert.equal(client.signedIn, true);
      } finally {
        client.dispose();
      }
    });

    test("an autofill request is aborted by its signal, and by the next passkey request (which then goes through)", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond();
      const { client } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        await client.registerPasskey();
        await client.signOut();

        const controller = new AbortController();
        const left = rejection(client.signInWithPasskey({ conditional: true, signal: controller.signal }));
        await settle();
        controller.abort();
        assert.equal((await left).name, "AbortError");
        assert.equal(authenticator.pending, false);

        // The page's autofill request is pending when the user clicks "Sign in with a passkey".
        const autofill = rejection(client.signInWithPasskey({ conditional: true }));
        await settle();
        assert.equal(authenticator.pending, true);
        const user = await client.signInWithPasskey();
        const aborted = await autofill;
        assert.equal(aborted.name, "AbortError");
        assert.equal(user.email, "a@example.com");
        assert.equal(server.count("/v1/login/passkey/finish"), 1);

        // A signal aborted before the call: nothing is sent.
        const requests = server.calls.length;
        const gone = new AbortController();
        gone.abort();
        assert.equal((await rejection(client.signInWithPasskey({ signal: gone.signal }))).name, "AbortError");
        assert.equal(server.calls.length, requests);
      } finally {
        client.dispose();
      }
    });

    test("reauthenticate({ passkey: true }): a sign-in challenge, the browser's assertion, POST /v1/reauth with both", async () => {
      const authenticator = browser(level3);
      const server = fakeSessiond({ jwt: true });
      const { client, storage, events } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        await client.registerPasskey();
        const { sessionId } = client.getSession();
        server.sessions.get(sessionId).authTime -= 1000;
        const presented = await storage.get();
        const accessToken = client.getSession().accessToken;

        await client.reauthenticate({ passkey: true });
        assert.equal(authenticator.requests.at(-1).method, "get");
        assert.equal(authenticator.requests.at(-1).mediation, undefined);
        const challengeId = [...server.challenges.keys()].at(-1);
        const call = last(server, "/v1/reauth");
        assert.equal(call.headers.get("authorization"), `Bearer ${accessToken}`);
        assert.deepEqual(Object.keys(call.body).sort(), ["challenge_id", "credential", "refresh_token"]);
        assert.equal(call.body.challenge_id, challengeId);
        assert.equal(call.body.refresh_token, presented);
        assert.equal(call.body.credential.rawId, toBase64url(authenticator.stored[0].rawId));
        assert.equal(client.sessionId, sessionId);
        assert.equal(client.getSession().authTime, server.sessions.get(sessionId).authTime);
        assert.equal(client.getSession().acr, "2");
        assert.equal(events.at(-1).type, "refreshed");

        // Cancelled in the browser: no reauth request.
        authenticator.refuse = true;
        const reauths = server.count("/v1/reauth");
        assert.equal((await rejection(client.reauthenticate({ passkey: true }))).name, "NotAllowedError");
        assert.equal(server.count("/v1/reauth"), reauths);
      } finally {
        client.dispose();
      }
    });

    test("listPasskeys() and deletePasskey(id): the user's passkeys; 404, 409 last_credential and step-up as sessiond says", async () => {
      browser(level3);
      const server = fakeSessiond();
      const { client } = await bearerClient(server);
      try {
        await client.signIn("a@example.com", "right");
        assert.deepEqual(await client.listPasskeys(), []);
        await client.registerPasskey({ name: "Laptop" });
        const listed = await client.listPasskeys();
        const call = last(server, "/v1/passkeys");
        assert.equal(call.method, "GET");
        assert.equal(call.headers.get("authorization"), `Bearer ${client.getSession().accessToken}`);
        assert.deepEqual(listed, [{ id: server.passkeys[0].id, name: "Laptop", created_at: "2025-01-01T00:00:00Z", last_used_at: null }]);

        assert.equal((await rejection(client.deletePasskey("pk-unknown/x"))).code, "not_found");
        assert.equal(last(server, "/v1/passkeys/pk-unknown%2Fx").method, "DELETE");
        server.sessions.get(client.sessionId).authTime -= 1000;
        assert.ok((await rejection(client.deletePasskey(listed[0].id))) instanceof StepUpRequiredError);
        await client.reauthenticate({ password: "right" });
        assert.equal(await client.deletePasskey(listed[0].id), undefined);
        assert.equal(last(server, `/v1/passkeys/${listed[0].id}`).headers.get("authorization"), `Bearer ${client.getSession().accessToken}`);
        assert.deepEqual(await client.listPasskeys(), []);

        // A guest made permanent by its passkey has nothing else to sign in with.
        const guest = await bearerClient(server);
        await guest.client.guest();
        const only = await guest.client.registerPasskey();
        const refused = await rejection(guest.client.deletePasskey(only.id));
        assert.equal(refused.status, 409);
        assert.equal(refused.code, "last_credential");
        guest.client.dispose();
      } finally {
        client.dispose();
      }
    });
  });
}

test("no WebAuthn in the page: registerPasskey(), signInWithPasskey() and reauthenticate({ passkey }) reject with NotSupportedError, sending nothing", async () => {
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    await client.signIn("a@example.com", "right");
    const requests = server.calls.length;
    for (const attempt of [client.registerPasskey(), client.signInWithPasskey(), client.reauthenticate({ passkey: true })]) {
      assert.equal((await rejection(attempt)).name, "NotSupportedError");
    }
    assert.equal(server.calls.length, requests);
  } finally {
    client.dispose();
  }
});

test("signInWithPasskey({ conditional: true }) where the browser has no passkey autofill: NotSupportedError, nothing sent", async () => {
  const authenticator = browser(true);
  authenticator.autofill = false;
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  try {
    const err = await rejection(client.signInWithPasskey({ conditional: true }));
    assert.equal(err.name, "NotSupportedError");
    assert.equal(server.calls.length, 0);
    assert.equal(authenticator.requests.length, 0);
  } finally {
    client.dispose();
  }
});

test("dispose() aborts a pending autofill request", async () => {
  const authenticator = browser(true);
  const server = fakeSessiond();
  const { client } = await bearerClient(server);
  const pending = rejection(client.signInWithPasskey({ conditional: true }));
  await settle();
  assert.equal(authenticator.pending, true);
  client.dispose();
  assert.equal((await pending).name, "AbortError");
  assert.equal(authenticator.pending, false);
});
