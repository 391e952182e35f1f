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
 * once), logout and revoke. `mode: "cookie"` keeps the refresh token in one cookie jar shared by
 * every fetch made with `fetchFor()` (the tabs of one browser); `mode: "bearer"` returns it in
 * the body. `calls` records every request with the label of the fetch that made it; `answer()`
 * queues a one-time answer for a path (an error, say) instead of the fake's own.
 */
export function fakeSessiond({ mode = "bearer", expiresIn = 120 } = {}) {
  const sessions = new Map(); // session id -> { user, refresh, revoked }
  const owners = new Map(); // live refresh token -> session id
  const bearers = new Map(); // access token -> session id
  const queued = new Map(); // path -> [Response factories]
  const calls = [];
  let cookie = null;
  let n = 0;

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
    };
    if (mode === "cookie") cookie = session.refresh;
    else body.refresh_token = session.refresh;
    return json(200, body);
  };
  const start = (user) => {
    const id = `s-${sessions.size + 1}`;
    sessions.set(id, { user, refresh: null, revoked: false });
    return issue(id);
  };

  const server = {
    calls,
    sessions,
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
        switch (url.pathname) {
          case "/v1/guest":
            return start({ id: `u-${sessions.size + 1}`, email: null, is_guest: true, created_at: "2025-01-01T00:00:00Z" });
          case "/v1/login":
            if (body.password !== "right") {
              return json(401, { error: "invalid_credentials", error_description: "wrong email or password" });
            }
            return start({ id: "u-login", email: body.email, is_guest: false, created_at: "2025-01-01T00:00:00Z" });
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
          default:
            return json(404, { error: "not_found", error_description: url.pathname });
        }
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
