// Stand-ins for what @sessiond/client talks to, for the unit tests (*.unit.test.js) that run
// without the sessiond binary: a fake sessiond behind a fake `fetch`, a fake BroadcastChannel
// that delivers between the clients of one process, and a fake localStorage.

/** A Response with a JSON body (or none for 204). */
export function json(status, body) {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: status === 204 ? {} : { "content-type": "application/json" },
  });
}

/**
 * A fake sessiond: guest and password sign-in, refresh with rotation (each refresh token works
 * once), logout and revoke; and the mailed flows (password reset, email verification, sign-in
 * by link or code, email change), reauthentication and account deletion, whose mails land in
 * `mails` (`{ type, to, token, code?, used }`; the code of a sign-in mail is always "123456").
 * An authentication is fresh for 300 s (`auth_time` of each session, in seconds). `mode: "cookie"`
 * keeps the refresh token in one cookie jar shared by every fetch made with `fetchFor()` (the
 * tabs of one browser); `mode: "bearer"` returns it in the body. `calls` records every request
 * with the label of the fetch that made it; `answer()` queues a one-time answer for a path (an
 * error, say) instead of the fake's own.
 *
 * Second factors and passkeys (unit tests of src/webauthn.ts and the MFA calls): TOTP enrollment
 * (the right code is always "654321"), `mfa_required` at login for enrolled users and
 * /v1/login/mfa, passkey registration and sign-in (it checks that the browser signed the
 * challenge it sent, read back from clientDataJSON), reauthentication with a code, a recovery
 * code or a passkey. Start answers wrap the options as webauthn-rs does (`{ publicKey }`) unless
 * `server.wrapOptions = false`. `jwt: true` makes access tokens JWT-shaped, with `auth_time`,
 * `acr` and `amr` in their payload.
 */
export function fakeSessiond({ mode = "bearer", expiresIn = 120, jwt = false } = {}) {
  const sessions = new Map(); // session id -> { user, refresh, revoked }
  const owners = new Map(); // live refresh token -> session id
  const bearers = new Map(); // access token -> session id
  const queued = new Map(); // path -> [Response factories]
  const calls = [];
  const mails = [];
  const totp = new Map(); // user id -> { secret, confirmed, recovery: [codes] }
  const mfaTokens = new Map(); // mfa token -> { user, used }
  const passkeys = []; // { id, name, created_at, last_used_at, credentialId, userId }
  const challenges = new Map(); // challenge id -> { kind, challenge, userId?, name?, used }
  let cookie = null;
  let n = 0;
  const now = () => Math.floor(Date.now() / 1000);

  const issue = (sessionId) => {
    const session = sessions.get(sessionId);
    owners.delete(session.refresh);
    session.refresh = `rt-${++n}`;
    owners.set(session.refresh, sessionId);
    const accessToken = jwt ? jwtOf({
      sub: session.user.id, sid: sessionId, auth_time: session.authTime, acr: acrOf(session.amr), amr: session.amr,
    }, n) : `at-${n}`;
    bearers.set(accessToken, sessionId);
    const body = {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: expiresIn,
      expires_at: Math.floor(Date.now() / 1000) + expiresIn,
      session_id: sessionId,
      user: session.user,
      auth_time: session.authTime,
    };
    if (mode === "cookie") cookie = session.refresh;
    else body.refresh_token = session.refresh;
    return json(200, body);
  };
  const start = (user, amr = [user.is_guest ? "guest" : "pwd"]) => {
    const id = `s-${sessions.size + 1}`;
    sessions.set(id, { user, refresh: null, revoked: false, authTime: now(), amr });
    return issue(id);
  };
  /** A right first factor: the session, or mfa_required when the user has a confirmed TOTP. */
  const firstFactor = (user, amr) => {
    if (!totp.get(user.id)?.confirmed) return start(user, amr);
    const token = `mfa-${++n}`;
    mfaTokens.set(token, { user, amr, used: false });
    return json(401, {
      error: "mfa_required", error_description: "a second factor is required", mfa_token: token,
      methods: ["totp", "recovery_code"],
    });
  };
  /** "otp" or "rc" when `body` carries a right code or an unspent recovery code of `userId`; else null. */
  const secondFactor = (userId, body) => {
    const factor = totp.get(userId);
    if (!factor?.confirmed) return null;
    if (body.code !== undefined) return body.code === "654321" ? "otp" : null;
    const at = factor.recovery.indexOf(body.recovery_code);
    if (at < 0) return null;
    factor.recovery.splice(at, 1);
    return "rc";
  };
  const challenge = (kind, extra = {}) => {
    const id = `ch-${++n}`;
    const bytes = new TextEncoder().encode(`challenge ${n}`);
    challenges.set(id, { kind, challenge: Buffer.from(bytes).toString("base64url"), used: false, ...extra });
    return { id, challenge: Buffer.from(bytes).toString("base64url") };
  };
  const started = (id, options) =>
    json(200, { challenge_id: id, options: server.wrapOptions ? { publicKey: options } : options });
  /** The challenge `id` of `kind`, now spent, if the credential signed it; else undefined. */
  const spend = (kind, id, credential) => {
    const found = challenges.get(id);
    if (!found || found.used || found.kind !== kind) return undefined;
    found.used = true;
    const client = JSON.parse(Buffer.from(credential?.response?.clientDataJSON ?? "", "base64url").toString() || "{}");
    return client.challenge === found.challenge ? found : undefined;
  };
  /** The passkey that signed an assertion (a credential of sign-in form), if any. */
  const assertion = (id, credential) => {
    if (!spend("get", id, credential) || typeof credential.response.signature !== "string") return undefined;
    const passkey = passkeys.find((p) => p.credentialId === credential.rawId);
    if (!passkey || credential.response.userHandle !== Buffer.from(passkey.userId).toString("base64url")) return undefined;
    passkey.last_used_at = "2025-01-02T00:00:00Z";
    return passkey;
  };
  const registered = (email) =>
    [...sessions.values()].find((s) => s.user.email === email)?.user ??
    { id: "u-login", email, is_guest: false, created_at: "2025-01-01T00:00:00Z", email_verified: false };
  /** Changes a user in every session of theirs (the fake keeps a copy of the user per session). */
  const updateUser = (userId, changes) => {
    let user = null;
    for (const s of sessions.values()) {
      if (s.user.id === userId) user = s.user = { ...s.user, ...changes };
    }
    return user;
  };
  const mail = (type, to, extra = {}) => {
    const sent = { type, to, token: `mt-${mails.length + 1}`, used: false, ...extra };
    mails.push(sent);
    return sent;
  };
  /** The unused mail of `type` that `match` accepts, now spent; undefined if none. */
  const redeem = (type, match) => {
    const found = mails.find((m) => m.type === type && !m.used && match(m));
    if (found) found.used = true;
    return found;
  };
  const accepted = () => json(202, { accepted: true });
  const invalidGrant = () => json(400, { error: "invalid_grant", error_description: "the link or code is invalid or expired" });
  const invalidToken = () => json(401, { error: "invalid_token", error_description: "no valid access token" });
  const notFresh = () => new Response(
    JSON.stringify({ error: "insufficient_user_authentication", error_description: "authenticate again" }),
    {
      status: 401,
      headers: {
        "content-type": "application/json",
        "www-authenticate": 'Bearer error="insufficient_user_authentication", max_age=300',
      },
    },
  );

  const server = {
    calls,
    sessions,
    mails,
    totp,
    passkeys,
    challenges,
    wrapOptions: true,
    get cookie() {
      return cookie;
    },
    /** The requests to `path` (made by the fetch labelled `label`, if given). */
    count(path, label) {
      return calls.filter((c) => c.path === path && (label === undefined || c.label === label)).length;
    },
    answer(path, respond) {
      if (!queued.has(path)) queued.set(path, []);
      queued.get(path).push(respond);
    },
    /** Ends a session as an admin would: its refresh token stops working. */
    revoke(sessionId) {
      const session = sessions.get(sessionId);
      session.revoked = true;
      owners.delete(session.refresh);
    },
    fetchFor(label = "") {
      return async (input, init = {}) => {
        const url = new URL(typeof input === "string" ? input : input.url);
        const body = typeof init.body === "string" ? JSON.parse(init.body) : null;
        const headers = new Headers(init.headers);
        calls.push({ label, path: url.pathname, method: init.method ?? "GET", body, headers, credentials: init.credentials });
        const scripted = queued.get(url.pathname)?.shift();
        if (scripted) return scripted();
        // The live session of the request's access token, if any.
        const bearer = bearers.get(headers.get("authorization")?.replace(/^Bearer /, ""));
        const current = bearer && !sessions.get(bearer).revoked ? sessions.get(bearer) : null;
        const fresh = current && now() - current.authTime <= 300;
        switch (url.pathname) {
          case "/v1/guest":
            return start({ id: `u-${sessions.size + 1}`, email: null, is_guest: true, created_at: "2025-01-01T00:00:00Z" });
          case "/v1/login":
            if (body.password !== "right") {
              return json(401, { error: "invalid_credentials", error_description: "wrong email or password" });
            }
            return firstFactor(registered(body.email), ["pwd"]);
          case "/v1/token/refresh": {
            const token = mode === "cookie" ? cookie : body.refresh_token;
            const sessionId = owners.get(token);
            if (!sessionId) return json(401, { error: "invalid_refresh_token", error_description: "unknown token" });
            return issue(sessionId);
          }
          case "/v1/logout": {
            const access = headers.get("authorization")?.replace(/^Bearer /, "");
            const sessionId = bearers.get(access) ?? (mode === "cookie" ? owners.get(cookie) : undefined);
            if (sessionId) server.revoke(sessionId);
            if (mode === "cookie") cookie = null;
            return json(204);
          }
          case "/v1/revoke":
            if (owners.has(body.token)) server.revoke(owners.get(body.token));
            return json(200, {});
          case "/v1/password/forgot":
            mail("reset_password", body.email);
            return accepted();
          case "/v1/password/reset": {
            const used = redeem("reset_password", (m) => m.token === body.token);
            if (!used) return invalidGrant();
            return start({ ...registered(used.to), email_verified: true });
          }
          case "/v1/email/verify/send":
            if (!current) return invalidToken();
            if (current.user.is_guest) return json(403, { error: "forbidden", error_description: "guests have no email" });
            mail("verify_email", current.user.email, { userId: current.user.id });
            return accepted();
          case "/v1/email/verify": {
            const used = redeem("verify_email", (m) => m.token === body.token);
            if (!used) return invalidGrant();
            return json(200, { user: updateUser(used.userId, { email_verified: true }) });
          }
          case "/v1/login/email":
            mail("sign_in", body.email, { code: "123456" });
            return accepted();
          case "/v1/login/email/verify": {
            const used = redeem("sign_in", (m) => (body.token ? m.token === body.token : m.to === body.email && m.code === body.code));
            if (!used) return invalidGrant();
            return firstFactor({ ...registered(used.to), email_verified: true }, ["email"]);
          }
          case "/v1/email/change":
            if (!current) return invalidToken();
            if (!fresh) return notFresh();
            mail("change_email", body.new_email, { userId: current.user.id });
            return accepted();
          case "/v1/email/change/confirm": {
            const used = redeem("change_email", (m) => m.token === body.token);
            if (!used) return invalidGrant();
            return json(200, { user: updateUser(used.userId, { email: used.to, email_verified: true }) });
          }
          case "/v1/me": {
            if (init.method !== "DELETE") break;
            if (!current) return invalidToken();
            if (!fresh) return notFresh();
            for (const [id, s] of sessions) if (s.user.id === current.user.id) server.revoke(id);
            if (mode === "cookie") cookie = null;
            return json(204);
          }
          case "/v1/reauth": {
            if (!current) return invalidToken();
            let amr;
            if (body.password !== undefined) amr = body.password === "right" ? ["pwd"] : null;
            else if (body.challenge_id !== undefined) {
              const passkey = assertion(body.challenge_id, body.credential);
              amr = passkey?.userId === current.user.id ? ["hwk", "user"] : null;
            } else {
              const factor = secondFactor(current.user.id, body);
              amr = factor ? [...current.amr.filter((m) => m !== "otp" && m !== "rc"), factor] : null;
            }
            if (!amr) {
              return json(401, { error: "invalid_credentials", error_description: "wrong password" });
            }
            const presented = mode === "cookie" ? cookie : body.refresh_token;
            if (sessions.get(owners.get(presented)) !== current) {
              return json(401, { error: "invalid_refresh_token", error_description: "not this session's token" });
            }
            current.authTime = now();
            current.amr = amr;
            return issue(bearer);
          }
          case "/v1/login/mfa": {
            const pending = mfaTokens.get(body.mfa_token);
            if (!pending || pending.used) return invalidGrant();
            const factor = secondFactor(pending.user.id, body);
            if (!factor) return invalidGrant();
            pending.used = true;
            return start(pending.user, [...pending.amr, factor]);
          }
          case "/v1/mfa/totp": {
            if (!current) return invalidToken();
            if (init.method === "DELETE") {
              if (!fresh) return notFresh();
              totp.delete(current.user.id);
              return json(204);
            }
            if (!fresh) return notFresh();
            const secret = `JBSWY3DPEHPK3PX${++n}`;
            totp.set(current.user.id, { secret, confirmed: false, recovery: [] });
            return json(201, { secret, otpauth_uri: `otpauth://totp/sessiond:${current.user.email}?secret=${secret}&issuer=sessiond` });
          }
          case "/v1/mfa/totp/confirm": {
            if (!current) return invalidToken();
            const factor = totp.get(current.user.id);
            if (!factor || body.code !== "654321") return invalidGrant();
            factor.confirmed = true;
            factor.recovery = Array.from({ length: 10 }, (_, i) => `rc-${i}-${n}`);
            return json(200, { recovery_codes: [...factor.recovery] });
          }
          case "/v1/passkeys/register/start": {
            if (!current) return invalidToken();
            if (!fresh && !current.user.is_guest) return notFresh();
            const { id, challenge: value } = challenge("create", { userId: current.user.id, name: body?.name });
            return started(id, {
              rp: { name: "sessiond", id: "app.example" },
              user: { id: Buffer.from(current.user.id).toString("base64url"), name: current.user.email ?? "guest", displayName: current.user.email ?? "guest" },
              challenge: value,
              pubKeyCredParams: [{ type: "public-key", alg: -7 }, { type: "public-key", alg: -257 }],
              timeout: 300000,
              excludeCredentials: passkeys.filter((p) => p.userId === current.user.id)
                .map((p) => ({ type: "public-key", id: p.credentialId })),
              authenticatorSelection: { residentKey: "required", requireResidentKey: true, userVerification: "preferred" },
              attestation: "none",
              hints: null,
            });
          }
          case "/v1/passkeys/register/finish": {
            if (!current) return invalidToken();
            const ceremony = spend("create", body.challenge_id, body.credential);
            if (!ceremony || ceremony.userId !== current.user.id || typeof body.credential.response.attestationObject !== "string") {
              return invalidGrant();
            }
            const passkey = {
              id: `pk-${++n}`, name: ceremony.name ?? "Passkey", created_at: "2025-01-01T00:00:00Z", last_used_at: null,
              credentialId: body.credential.rawId, userId: current.user.id, transports: body.credential.response.transports,
            };
            passkeys.push(passkey);
            if (current.user.is_guest) updateUser(current.user.id, { is_guest: false });
            return json(201, { id: passkey.id, name: passkey.name, created_at: passkey.created_at });
          }
          case "/v1/passkeys": {
            if (!current) return invalidToken();
            return json(200, {
              passkeys: passkeys.filter((p) => p.userId === current.user.id)
                .map(({ id, name, created_at, last_used_at }) => ({ id, name, created_at, last_used_at })),
            });
          }
          case "/v1/login/passkey/start": {
            const { id, challenge: value } = challenge("get");
            const options = { challenge: value, rpId: "app.example", userVerification: "preferred", timeout: 300000 };
            return json(200, { challenge_id: id, options: server.wrapOptions ? { publicKey: options, mediation: "conditional" } : options });
          }
          case "/v1/login/passkey/finish": {
            const passkey = assertion(body.challenge_id, body.credential);
            if (!passkey) return invalidGrant();
            const user = [...sessions.values()].find((s) => s.user.id === passkey.userId)?.user;
            return start(user, ["hwk", "user"]);
          }
        }
        if (url.pathname.startsWith("/v1/passkeys/") && init.method === "DELETE") {
          if (!current) return invalidToken();
          if (!fresh) return notFresh();
          const id = decodeURIComponent(url.pathname.slice("/v1/passkeys/".length));
          const at = passkeys.findIndex((p) => p.id === id && p.userId === current.user.id);
          if (at < 0) return json(404, { error: "not_found", error_description: "no such passkey" });
          const mine = passkeys.filter((p) => p.userId === current.user.id);
          if (mine.length === 1 && current.user.email === null) {
            return json(409, { error: "last_credential", error_description: "the only way left to sign in" });
          }
          passkeys.splice(at, 1);
          return json(204);
        }
        return json(404, { error: "not_found", error_description: url.pathname });
      };
    },
  };
  return server;
}

/** The assurance level of an `amr`: 2 with a second factor or a user-verified passkey. */
function acrOf(amr) {
  return amr.includes("otp") || amr.includes("rc") || amr.includes("user") ? "2" : "1";
}

/** A JWT-shaped token (unsigned: the client only reads it) with `claims` as its payload. */
function jwtOf(claims, n) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "ES256", typ: "at+jwt" })}.${part(claims)}.sig-${n}`;
}

/**
 * A BroadcastChannel that delivers between the instances of this process with the same name
 * (never to the sender, a structured clone, on a later microtask: as browsers do, minus the
 * event loop turn). `FakeChannel.posted` records every message.
 */
export class FakeChannel {
  static #open = new Set();
  static posted = [];

  constructor(name) {
    this.name = name;
    this.onmessage = null;
    this.closed = false;
    FakeChannel.#open.add(this);
  }

  postMessage(data) {
    if (this.closed) throw new DOMException("closed", "InvalidStateError");
    const copy = structuredClone(data);
    FakeChannel.posted.push({ name: this.name, data: copy });
    for (const peer of FakeChannel.#open) {
      if (peer !== this && peer.name === this.name) queueMicrotask(() => !peer.closed && peer.onmessage?.({ data: copy }));
    }
  }

  close() {
    this.closed = true;
    FakeChannel.#open.delete(this);
  }

  /** Installs the fake as the global BroadcastChannel; returns a function that puts back the real one. */
  static install() {
    const real = globalThis.BroadcastChannel;
    globalThis.BroadcastChannel = FakeChannel;
    FakeChannel.posted = [];
    return () => {
      globalThis.BroadcastChannel = real;
    };
  }
}

/** `window.localStorage` in a Map. */
export function fakeLocalStorage() {
  const items = new Map();
  return {
    items,
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => void items.set(k, String(v)),
    removeItem: (k) => void items.delete(k),
  };
}

/** Lets every promise that is ready settle (several turns: fetch, storage and listeners chain). */
export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Records a client's change events (after the initial one). */
export function recordEvents(client) {
  const events = [];
  client.onChange((e) => {
    if (e.type !== "initial_session" && e.type !== "restore_failed") events.push(e);
  });
  return events;
}

/** The bytes of a BufferSource; a TypeError otherwise (as the browser's WebIDL conversion does). */
function bufferSource(value, what) {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${what} is not a BufferSource`);
}

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
/** An ArrayBuffer of exactly these bytes (a Buffer's may be a slice of a shared pool). */
const arrayBuffer = (bytes) => new Uint8Array(bytes).buffer;
const utf8 = (text) => arrayBuffer(new TextEncoder().encode(text));

/**
 * A browser's WebAuthn with one passkey authenticator: a fake `navigator.credentials` and
 * `PublicKeyCredential`, installed by `install({ level3 })`. With `level3` (the default) the
 * browser has WebAuthn Level 3's converters (`PublicKeyCredential.parseCreationOptionsFromJSON` /
 * `parseRequestOptionsFromJSON`, `credential.toJSON()`), counted in `converted`; without, the
 * client's fallback must convert. Like browsers, create() and get() refuse options whose
 * binary fields are not BufferSources, allow one request at a time, honour `signal`, and sign
 * clientDataJSON with the challenge they were given. A `conditional` get() waits for `pick()`.
 * `refuse = true` makes the next ceremony fail as a user's cancel does (NotAllowedError);
 * `autofill` is what isConditionalMediationAvailable() says.
 */
export function fakeAuthenticator() {
  const stored = []; // { rawId: Uint8Array, userId: Uint8Array, rpId }
  const requests = []; // { method, publicKey, mediation, signal }
  const converted = { creation: 0, request: 0, toJSON: 0 };
  let pending = null; // the request in progress: { reject, conditional?, resolve?, publicKey? }
  let n = 0;
  let level3 = true;

  const withToJSON = (credential, json) =>
    level3 ? Object.assign(credential, { toJSON: () => (converted.toJSON++, json()) }) : credential;

  const attestation = (publicKey) => {
    const rawId = new Uint8Array(16).fill(++n);
    const userId = bufferSource(publicKey.user.id, "user.id");
    stored.push({ rawId, userId: new Uint8Array(userId), rpId: publicKey.rp.id });
    const clientData = utf8(JSON.stringify({
      type: "webauthn.create", challenge: b64url(bufferSource(publicKey.challenge, "challenge")), origin: "https://app.example",
    }));
    const response = {
      clientDataJSON: clientData,
      attestationObject: utf8(`attestation ${n}`),
      getTransports: () => ["hybrid", "internal"],
      getAuthenticatorData: () => utf8(`authenticator data ${n}`),
      getPublicKey: () => utf8(`public key ${n}`),
      getPublicKeyAlgorithm: () => -7,
    };
    const credential = {
      id: b64url(rawId), rawId: arrayBuffer(rawId), type: "public-key", authenticatorAttachment: "platform", response,
      getClientExtensionResults: () => ({ credProps: { rk: true } }),
    };
    return withToJSON(credential, () => ({
      id: b64url(rawId), rawId: b64url(rawId), type: "public-key", authenticatorAttachment: "platform",
      response: {
        clientDataJSON: b64url(new Uint8Array(clientData)), attestationObject: b64url(new Uint8Array(response.attestationObject)),
        transports: ["hybrid", "internal"], publicKeyAlgorithm: -7,
      },
      clientExtensionResults: { credProps: { rk: true } },
    }));
  };

  const assertion = (publicKey, passkey) => {
    const clientData = utf8(JSON.stringify({
      type: "webauthn.get", challenge: b64url(bufferSource(publicKey.challenge, "challenge")), origin: "https://app.example",
    }));
    const response = {
      clientDataJSON: clientData, authenticatorData: utf8("authenticator data"), signature: utf8(`signature ${b64url(passkey.rawId)}`),
      userHandle: arrayBuffer(passkey.userId),
    };
    const credential = {
      id: b64url(passkey.rawId), rawId: arrayBuffer(passkey.rawId), type: "public-key", authenticatorAttachment: "platform", response,
      getClientExtensionResults: () => ({}),
    };
    return withToJSON(credential, () => ({
      id: b64url(passkey.rawId), rawId: b64url(passkey.rawId), type: "public-key", authenticatorAttachment: "platform",
      response: {
        clientDataJSON: b64url(new Uint8Array(clientData)), authenticatorData: b64url(new Uint8Array(response.authenticatorData)),
        signature: b64url(new Uint8Array(response.signature)), userHandle: b64url(passkey.userId),
      },
      clientExtensionResults: {},
    }));
  };

  /** Runs one request: refused while another is pending; settled by `run`, or rejected on abort. */
  const request = (method, { publicKey, mediation, signal }, run) => {
    requests.push({ method, publicKey, mediation, signal });
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (pending) return Promise.reject(new DOMException("A request is already pending.", "NotAllowedError"));
    return new Promise((resolve, reject) => {
      const current = { reject };
      pending = current;
      const done = () => {
        if (pending === current) pending = null;
        signal?.removeEventListener("abort", abort);
      };
      const abort = () => {
        done();
        reject(signal.reason);
      };
      signal?.addEventListener("abort", abort);
      const settle = () => {
        try {
          if (authenticator.refuse) {
            authenticator.refuse = false;
            throw new DOMException("The operation either timed out or was not allowed.", "NotAllowedError");
          }
          resolve(run());
        } catch (err) {
          reject(err);
        } finally {
          done();
        }
      };
      if (mediation === "conditional") Object.assign(current, { conditional: true, settle });
      else queueMicrotask(settle);
    });
  };

  const candidates = (publicKey) => {
    const allowed = (publicKey.allowCredentials ?? []).map((d) => b64url(bufferSource(d.id, "allowCredentials[].id")));
    return stored.filter((p) => (!publicKey.rpId || p.rpId === publicKey.rpId) && (!allowed.length || allowed.includes(b64url(p.rawId))));
  };

  const credentials = {
    create(options) {
      const publicKey = options.publicKey;
      return request("create", options, () => {
        for (const d of publicKey.excludeCredentials ?? []) {
          const id = b64url(bufferSource(d.id, "excludeCredentials[].id"));
          if (stored.some((p) => b64url(p.rawId) === id)) {
            throw new DOMException("The authenticator already holds this user's passkey.", "InvalidStateError");
          }
        }
        return attestation(publicKey);
      });
    },
    get(options) {
      const publicKey = options.publicKey;
      bufferSource(publicKey.challenge, "challenge");
      return request("get", options, () => {
        const [passkey] = candidates(publicKey).slice(authenticator.choice ?? 0);
        if (!passkey) throw new DOMException("No passkey available.", "NotAllowedError");
        return assertion(publicKey, passkey);
      });
    },
  };

  /** JSON -> binary as the browser's Level 3 parsers do (and, like WebIDL, no nulls for absent members). */
  const parse = (kind, json) => {
    converted[kind]++;
    if (JSON.stringify(json).includes("null")) throw new TypeError("null is not a valid member value");
    const buffer = (s) => arrayBuffer(Buffer.from(s, "base64url"));
    const ids = (list) => list?.map((d) => ({ ...d, id: buffer(d.id) }));
    const out = { ...json, challenge: buffer(json.challenge) };
    if (json.user) out.user = { ...json.user, id: buffer(json.user.id) };
    if (json.excludeCredentials) out.excludeCredentials = ids(json.excludeCredentials);
    if (json.allowCredentials) out.allowCredentials = ids(json.allowCredentials);
    return out;
  };

  const authenticator = {
    stored,
    requests,
    converted,
    credentials,
    refuse: false,
    autofill: true,
    /** Which of the matching passkeys the user picks (default the first). */
    choice: 0,
    /** Whether a request is waiting (a conditional one, for the user to pick). */
    get pending() {
      return pending !== null;
    },
    /** The user picks a passkey in the autofill: the pending conditional request settles. */
    pick() {
      if (!pending?.conditional) throw new Error("no conditional request is pending");
      pending.settle();
    },
    /** Installs the fake as the page's WebAuthn; returns a function that puts back what was there. */
    install(options = {}) {
      level3 = options.level3 ?? true;
      const saved = ["navigator", "PublicKeyCredential"].map((k) => [k, Object.getOwnPropertyDescriptor(globalThis, k)]);
      class PublicKeyCredential {
        static isConditionalMediationAvailable() {
          return Promise.resolve(authenticator.autofill);
        }
      }
      if (level3) {
        PublicKeyCredential.parseCreationOptionsFromJSON = (json) => parse("creation", json);
        PublicKeyCredential.parseRequestOptionsFromJSON = (json) => parse("request", json);
      }
      Object.defineProperty(globalThis, "PublicKeyCredential", { value: PublicKeyCredential, configurable: true, writable: true });
      Object.defineProperty(globalThis, "navigator", { value: { credentials }, configurable: true, writable: true });
      return () => {
        for (const [k, descriptor] of saved) {
          if (descriptor) Object.defineProperty(globalThis, k, descriptor);
          else delete globalThis[k];
        }
      };
    },
  };
  return authenticator;
}
