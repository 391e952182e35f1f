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
 */
export function fakeSessiond({ mode = "bearer", expiresIn = 120 } = {}) {
  const sessions = new Map(); // session id -> { user, refresh, revoked }
  const owners = new Map(); // live refresh token -> session id
  const bearers = new Map(); // access token -> session id
  const queued = new Map(); // path -> [Response factories]
  const calls = [];
  const mails = [];
  let cookie = null;
  let n = 0;
  const now = () => Math.floor(Date.now() / 1000);

  const issue = (sessionId) => {
    const session = sessions.get(sessionId);
    owners.delete(session.refresh);
    session.refresh = `rt-${++n}`;
    owners.set(session.refresh, sessionId);
    bearers.set(`at-${n}`, sessionId);
    const body = {
      access_token: `at-${n}`,
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
  const start = (user) => {
    const id = `s-${sessions.size + 1}`;
    sessions.set(id, { user, refresh: null, revoked: false, authTime: now() });
    return issue(id);
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
            return start(registered(body.email));
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
            return start({ ...registered(used.to), email_verified: true });
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
            if (body.password !== "right") {
              return json(401, { error: "invalid_credentials", error_description: "wrong password" });
            }
            const presented = mode === "cookie" ? cookie : body.refresh_token;
            if (sessions.get(owners.get(presented)) !== current) {
              return json(401, { error: "invalid_refresh_token", error_description: "not this session's token" });
            }
            current.authTime = now();
            return issue(bearer);
          }
        }
        return json(404, { error: "not_found", error_description: url.pathname });
      };
    },
  };
  return server;
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
