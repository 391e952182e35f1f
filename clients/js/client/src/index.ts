/**
 * @sessiond/client: the browser side of sessiond (also runs on Node's fetch).
 *
 * - The access token lives in memory only. The refresh token lives in sessiond's HttpOnly
 *   cookie (`mode: "cookie"`, the default) or in a storage adapter the app chooses
 *   (`mode: "bearer"`).
 * - The access token is refreshed before it expires (with jitter) and once after a 401. A tab
 *   has at most one refresh in flight. Tabs tell each other over a BroadcastChannel that a
 *   session started or ended, never a token: each tab refreshes for its own access token and
 *   sessiond's refresh grace window (a just-spent refresh token presented again returns the same
 *   successor) makes racing tabs converge, so no tab ever waits on another and a lost race never
 *   signs a tab out.
 */

/** The user object of a token response. */
export interface User {
  id: string;
  email: string | null;
  is_guest: boolean;
  created_at: string;
}

/** What the client knows about the signed-in session. */
export interface SessionState {
  user: User;
  sessionId: string;
  accessToken: string;
  /**
   * When the client stops using the access token, in milliseconds of this machine's clock: its
   * lifetime counted from receipt, less a second (`exp` is in whole seconds).
   */
  expiresAt: number;
}

/** A device session as listed by `GET /v1/sessions`. */
export interface DeviceSession {
  id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  user_agent: string | null;
  ip_address: string | null;
  kind: string;
  provider: string | null;
  current: boolean;
}

/**
 * `initial_session`: the first event every listener gets, with the state after the start-up
 * restore (the session, or null). `restore_failed` replaces it when the restore could not reach
 * sessiond (the client asks again on the next `getAccessToken()`).
 */
export type ChangeType = "initial_session" | "restore_failed" | "signed_in" | "refreshed" | "signed_out";

export interface ChangeEvent {
  type: ChangeType;
  /** The user after the change (null when signed out). */
  user: User | null;
  /** The session after the change, or for `signed_out` the session that ended (if known). */
  sessionId: string | null;
  /** True when another tab made the change and this one learned it over the BroadcastChannel. */
  remote: boolean;
  /**
   * For `signed_out`: `logout`, or the error code that ended the session (`session_revoked`…).
   * For `restore_failed`: `network_error` or the error code of sessiond's answer.
   */
  reason?: string;
}

export type ChangeListener = (event: ChangeEvent) => void;

/** Where bearer mode keeps the refresh token. Methods may be sync or async. */
export interface RefreshTokenStorage {
  get(): string | null | Promise<string | null>;
  set(token: string): void | Promise<void>;
  remove(): void | Promise<void>;
  /** True when every tab sees the same value (then tabs share one session over the channel). */
  readonly shared?: boolean;
  /**
   * Where a refresh token waits whose revocation sessiond has not confirmed (a bearer-mode
   * sign-out while sessiond was unreachable), so that the next start tries again. Optional.
   */
  readonly pendingRevocation?: RefreshTokenStorage;
}

/** Keeps the refresh token in this JavaScript realm only (lost on reload; not shared). */
export function memoryStorage(): RefreshTokenStorage {
  let value: string | null = null;
  return {
    get: () => value,
    set: (token) => {
      value = token;
    },
    remove: () => {
      value = null;
    },
    shared: false,
  };
}

/**
 * Keeps the refresh token in `window.localStorage` under `key` (shared by the origin's tabs).
 * Anything that can run script on the origin can read it: prefer cookie mode in browsers.
 */
export function localStorageAdapter(key = "sessiond.refresh_token"): RefreshTokenStorage {
  const slot = (key: string): RefreshTokenStorage => {
    const store = () => (globalThis as { localStorage?: Storage }).localStorage;
    return {
      get: () => store()?.getItem(key) ?? null,
      set: (token) => store()?.setItem(key, token),
      remove: () => store()?.removeItem(key),
      shared: true,
    };
  };
  return { ...slot(key), pendingRevocation: slot(`${key}.revoke`) };
}

export interface ClientOptions {
  /** sessiond's base URL, e.g. `https://auth.example.com`. */
  url: string;
  /** `cookie` (default): the refresh token only in the HttpOnly cookie. `bearer`: in `storage`. */
  mode?: "cookie" | "bearer";
  /** Bearer mode: where the refresh token is kept (default: memory, lost on reload). */
  storage?: RefreshTokenStorage;
  /**
   * BroadcastChannel name shared by the tabs of this app, or `false` for none. Default:
   * `sessiond:<url>` in cookie mode and with a `shared` storage, none otherwise.
   */
  channel?: string | false;
  /**
   * Restore the session at start (cookie: one refresh, unless `sessionHint` says there is no
   * session; bearer: when storage holds a token). Default true.
   */
  restore?: boolean;
  /**
   * Cookie mode in browsers: keep a flag (`sessiond_session`, no secret) in localStorage while
   * signed in, and skip the start-up refresh when it is absent (default true). Set false when
   * this page can find a session it did not start (several origins sharing sessiond's cookie).
   */
  sessionHint?: boolean;
  /** Refresh this many seconds before expiry at most (default 60; never more than a quarter of the lifetime). */
  refreshLeadSecs?: number;
  /** Custom fetch (tests, instrumentation). Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** An error answered by sessiond: `status` and the contract's `error` code. */
export class SessiondError extends Error {
  readonly status: number;
  readonly code: string;
  readonly description: string;
  constructor(status: number, code: string, description: string) {
    super(description ? `${code}: ${description}` : code);
    this.name = "SessiondError";
    this.status = status;
    this.code = code;
    this.description = description;
  }
}

interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  expires_at: number;
  refresh_token?: string;
  session_id: string;
  user: User;
}

/**
 * What tabs tell each other: that a session started (or its user changed, as in an upgrade) or
 * ended. Never a token: a tab that learns of a sign-in refreshes for its own access token.
 */
type Message =
  | { type: "signed_in"; sessionId: string; guest: boolean }
  | { type: "signed_out"; sessionId: string | null; reason: string };

/** The message in `data` if it is exactly one of ours, else null (anything on the origin can post). */
function parseMessage(data: unknown): Message | null {
  if (!data || typeof data !== "object" || Object.keys(data).length !== 3) return null;
  const m = data as Record<string, unknown>;
  if (m.type === "signed_in" && typeof m.sessionId === "string" && typeof m.guest === "boolean") {
    return m as Message;
  }
  if (m.type === "signed_out" && (m.sessionId === null || typeof m.sessionId === "string") && typeof m.reason === "string") {
    return m as Message;
  }
  return null;
}

/**
 * Cookie mode, in browsers: a localStorage flag (no secret) saying this origin holds a session,
 * so that a signed-out page load sends no refresh request (which the console would show as a
 * failed request). `on` sets or clears it; without `on`, whether it is set (undefined where
 * there is no localStorage to ask).
 */
const HINT = "sessiond_session";
function hint(on?: boolean): boolean | undefined {
  try {
    const store = typeof document === "object" ? globalThis.localStorage : undefined;
    if (!store) return undefined;
    if (on === undefined) return store.getItem(HINT) !== null;
    if (on) store.setItem(HINT, "1");
    else store.removeItem(HINT);
  } catch {
    // storage disabled: behave as without it
  }
  return undefined;
}

const MODE_MISMATCH =
  "@sessiond/client: cookie mode, but sessiond sent the refresh token in the response body: its cookie mode is off, " +
  "so this session ends at its first refresh and is not restored on reload. Turn cookie mode on in sessiond " +
  '([cookies] enabled = true) or use createClient({ mode: "bearer" }).';

/** Refresh answers that mean the session is over (as opposed to a network or server failure). */
const SESSION_OVER = new Set([
  "invalid_refresh_token",
  "refresh_token_reused",
  "session_revoked",
  "session_expired",
  "invalid_request",
]);

/** Below this much remaining lifetime, getAccessToken() refreshes before answering. */
const MIN_REMAINING_MS = 1500;

/**
 * True for a state of the same session from before a guest upgrade (a refresh that crossed the
 * upgrade): an upgraded user never becomes a guest again, so the upgraded state stays.
 */
function outdated(current: SessionState | null, next: SessionState): boolean {
  return current?.sessionId === next.sessionId && current.user.is_guest === false && next.user.is_guest === true;
}

/** The contract's `error` code of an answer, without consuming it. */
async function errorCode(res: Response): Promise<string | null> {
  try {
    return ((await res.clone().json()) as { error?: string }).error ?? null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The part of a Socket.IO (or similar) client socket that `bindSocket()` uses. */
export interface BindableSocket {
  disconnect(): unknown;
  connect?(): unknown;
}

function unref(timer: unknown) {
  (timer as { unref?: () => void } | null)?.unref?.();
}

export class SessiondClient {
  readonly url: string;
  readonly mode: "cookie" | "bearer";
  /** Settles once the start-up restore has finished (signed in or not). */
  readonly ready: Promise<void>;

  #fetch: typeof fetch;
  #storage: RefreshTokenStorage;
  #leadSecs: number;
  #state: SessionState | null = null;
  #listeners = new Set<ChangeListener>();
  #waiters: Array<(state: SessionState) => void> = [];
  #refreshing: Promise<SessionState | null> | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #channel: BroadcastChannel | null = null;
  #disposed = false;
  /** Whether the last attempt to learn the session failed for lack of an answer (offline…). */
  #unsure = false;
  /** Bumped by every sign-in and sign-out, so a refresh that started before one is discarded. */
  #epoch = 0;
  /** Set once the start-up restore is over: from then on listeners get events. */
  #started = false;
  /** Why the last attempt to learn the session failed (`restore_failed`'s reason). */
  #failure = "";
  /** While following another tab's sign-in: the events it causes are `remote`. */
  #following = false;
  #warned = false;
  #hint: boolean;

  constructor(options: ClientOptions) {
    if (!options?.url) throw new TypeError("@sessiond/client: options.url is required");
    this.url = options.url.replace(/\/+$/, "");
    this.mode = options.mode ?? "cookie";
    if (this.mode !== "cookie" && this.mode !== "bearer") {
      throw new TypeError(`@sessiond/client: unknown mode ${String(options.mode)}`);
    }
    this.#storage = options.storage ?? memoryStorage();
    this.#leadSecs = options.refreshLeadSecs ?? 60;
    this.#hint = this.mode === "cookie" && options.sessionHint !== false;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("@sessiond/client: no fetch available");
    this.#fetch = (input, init) => f(input, init);

    const shared = this.mode === "cookie" || this.#storage.shared === true;
    const channel = options.channel ?? (shared ? `sessiond:${this.url}` : false);
    if (channel !== false && typeof BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel(channel);
      unref(this.#channel);
      this.#channel.onmessage = (event: MessageEvent) => this.#onMessage(event.data);
    }

    if (this.mode === "bearer") {
      // A revocation that a previous page could not deliver.
      Promise.resolve(this.#storage.pendingRevocation?.get())
        .then((token) => {
          if (token) void this.#revoke(token, 0);
        })
        .catch(() => {});
    }
    this.ready = (options.restore === false ? Promise.resolve() : this.#restore()).then(() => {
      this.#started = true;
      this.#emit(this.#initial());
    });
  }

  /** The signed-in user, or null. */
  get user(): User | null {
    return this.#state?.user ?? null;
  }

  /** The current session id, or null. */
  get sessionId(): string | null {
    return this.#state?.sessionId ?? null;
  }

  get signedIn(): boolean {
    return this.#state !== null;
  }

  /**
   * A copy of the session as the client holds it now, or null when signed out. The access token
   * may be close to expiry: for requests, use `getAccessToken()` or `fetch()`.
   */
  getSession(): SessionState | null {
    const s = this.#state;
    return s && { ...s, user: { ...s.user } };
  }

  /**
   * Calls `listener` first with `initial_session` (or `restore_failed`) once the start-up restore
   * is over, then on every sign-in, refresh and sign-out (also those of other tabs).
   */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    if (this.#started) {
      queueMicrotask(() => this.#listeners.has(listener) && this.#emit(this.#initial(), [listener]));
    }
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the session once the client is signed in (at once if it already is). */
  whenSignedIn(): Promise<SessionState> {
    if (this.#state) return Promise.resolve({ ...this.#state });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  // ---- signing in ---------------------------------------------------------------------------

  signUp(email: string, password: string): Promise<User> {
    return this.#signIn("/v1/signup", { email, password });
  }

  signIn(email: string, password: string): Promise<User> {
    return this.#signIn("/v1/login", { email, password });
  }

  /** @deprecated Renamed {@link SessiondClient.signIn}. */
  logIn(email: string, password: string): Promise<User> {
    return this.signIn(email, password);
  }

  guest(): Promise<User> {
    return this.#signIn("/v1/guest", {});
  }

  /** Exchanges a third-party JWT (Supabase, Firebase, Auth0, Clerk…) for a sessiond session. */
  bridge(provider: string, token: string): Promise<User> {
    return this.#signIn("/v1/bridge", { provider, token });
  }

  /**
   * Makes the signed-in guest a permanent user (same user id, same session). The upgrade spends
   * the guest's refresh token: in bearer mode the stored one is sent along (in cookie mode the
   * cookie is), so a tab that refreshes with it a moment later gets the upgrade's new token
   * from sessiond's grace window instead of being refused.
   */
  async upgrade(email: string, password: string): Promise<User> {
    this.#assertLive();
    const send = async () => {
      // The access token first: getting it may rotate the refresh token read next.
      const accessToken = await this.getAccessToken();
      const refreshToken = this.mode === "bearer" ? await this.#storage.get() : null;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (accessToken) headers.authorization = `Bearer ${accessToken}`;
      // A refresh already in flight (or started meanwhile) must not put the guest state back.
      this.#epoch++;
      const res = await this.#fetch(`${this.url}/v1/upgrade`, {
        method: "POST",
        headers,
        body: JSON.stringify(refreshToken ? { email, password, refresh_token: refreshToken } : { email, password }),
        credentials: this.#credentials(),
      });
      return { res, accessToken };
    };
    let { res, accessToken } = await send();
    if (res.status === 401 && accessToken && (await errorCode(res)) === "invalid_token") {
      // The access token went stale on the way: one refresh (if still needed) and one retry.
      if (this.#state?.accessToken === accessToken) await this.refresh().catch(() => null);
      if (this.#state) ({ res } = await send());
    }
    const body = (await this.#json(res)) as TokenResponse;
    await this.#accept(body, "signed_in", null);
    return body.user;
  }

  async #signIn(path: string, body: object): Promise<User> {
    this.#assertLive();
    const epoch = ++this.#epoch;
    const res = await this.#fetch(`${this.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      credentials: this.#credentials(),
    });
    const tokens = (await this.#json(res)) as TokenResponse;
    // The newest sign-in wins; a refresh started before it can no longer overwrite it.
    this.#epoch = Math.max(this.#epoch, epoch);
    await this.#accept(tokens, "signed_in", null);
    return tokens.user;
  }

  // ---- tokens -------------------------------------------------------------------------------

  /**
   * A valid access token, refreshed first when it is about to expire; null when signed out.
   * Waits for the start-up restore.
   */
  async getAccessToken(): Promise<string | null> {
    await this.ready;
    const state = this.#state;
    if (state && state.expiresAt - Date.now() > MIN_REMAINING_MS) return state.accessToken;
    if (!state && this.mode === "bearer" && !(await this.#storage.get())) return null;
    // Signed out as far as sessiond told us: no request. After a failure to reach it: ask again.
    if (!state && this.mode === "cookie" && !this.#unsure) return null;
    return (await this.refresh())?.accessToken ?? null;
  }

  /**
   * Refreshes now (joining the refresh already in flight in this tab, if any). Resolves with the
   * new state, or null when the session is over (then the client is signed out). Network and
   * server failures reject and leave the current state alone.
   */
  refresh(): Promise<SessionState | null> {
    this.#assertLive();
    if (!this.#refreshing) {
      this.#refreshing = this.#doRefresh().finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  /**
   * `fetch` with `Authorization: Bearer <access token>`. After a 401 it refreshes once and
   * retries once (so the request body must be replayable: a string, FormData, Blob, …).
   */
  async fetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const token = await this.getAccessToken();
    const send = (accessToken: string | null) => {
      const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
      if (accessToken) headers.set("authorization", `Bearer ${accessToken}`);
      return this.#fetch(input instanceof Request ? input.clone() : input, { ...init, headers });
    };
    const res = await send(token);
    // Signed out meanwhile (by another tab, say): nothing to refresh.
    if (res.status !== 401 || !token || !this.#state) return res;
    let fresh: SessionState | null;
    try {
      // The token may have been refreshed by someone else meanwhile; else refresh now.
      fresh = this.#state && this.#state.accessToken !== token ? this.#state : await this.refresh();
    } catch {
      return res;
    }
    if (!fresh) return res;
    return send(fresh.accessToken);
  }

  /** A one-time WebSocket ticket (valid 30 s) for a Socket.IO / WebSocket handshake. */
  async wsTicket(): Promise<string> {
    const res = await this.fetch(`${this.url}/v1/ws-tickets`, { method: "POST" });
    const { ticket } = (await this.#json(res)) as { ticket: string };
    return ticket;
  }

  /**
   * A Socket.IO `auth` callback: each connection attempt (reconnections too) gets a new ticket,
   * `{ ticket }`, or `{}` when there is none to get (signed out), which the server refuses.
   * `io(url, { auth: client.socketAuth() })`.
   */
  socketAuth(): (cb: (auth: { ticket?: string }) => void) => void {
    return (cb) => {
      this.wsTicket().then((ticket) => cb({ ticket }), () => cb({}));
    };
  }

  /**
   * Disconnects `socket` when the session ends (here or in another tab) and reconnects it (for
   * a new ticket) when another session replaces it. Returns a function that unbinds.
   */
  bindSocket(socket: BindableSocket): () => void {
    let sessionId = this.sessionId;
    return this.onChange(({ type, sessionId: next }) => {
      if (type === "signed_out") socket.disconnect();
      else if (type === "signed_in" && sessionId && next !== sessionId) {
        socket.disconnect();
        socket.connect?.();
      }
      sessionId = type === "signed_out" ? null : next;
    });
  }

  /** The signed-in user's live sessions (devices). */
  async sessions(): Promise<DeviceSession[]> {
    const res = await this.fetch(`${this.url}/v1/sessions`);
    return ((await this.#json(res)) as { sessions: DeviceSession[] }).sessions;
  }

  /** Ends one of the user's sessions; ending the current one signs this client out. */
  async revokeSession(id: string): Promise<void> {
    const res = await this.fetch(`${this.url}/v1/sessions/${encodeURIComponent(id)}`, {
      method: "DELETE",
    });
    await this.#json(res);
    if (id === this.#state?.sessionId) await this.#signedOut("revoked", true);
  }

  /**
   * Signs out: `local` (this session, the default), `others` (every other session of the user,
   * this one stays signed in) or `global` (all of them). In bearer mode, when the access token
   * is unusable or sessiond cannot be reached, this session is revoked with its refresh token
   * (RFC 7009 `POST /v1/revoke`), retried in the background while sessiond is unreachable; this
   * tab is signed out at once either way.
   */
  async signOut(scope: "local" | "others" | "global" = "local"): Promise<void> {
    this.#assertLive();
    const request = (accessToken: string | null) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (accessToken) headers.authorization = `Bearer ${accessToken}`;
      return this.#fetch(`${this.url}/v1/logout`, {
        method: "POST",
        headers,
        body: JSON.stringify({ scope }),
        credentials: this.#credentials(),
      });
    };
    let token: string | null = null;
    try {
      token = await this.getAccessToken();
    } catch {
      // sessiond unreachable for a refresh: try the logout anyway (cookie mode needs no token).
    }
    const sessionId = this.#state?.sessionId ?? null;
    // Read after the refresh above, which may have rotated it.
    const refreshToken = this.mode === "bearer" ? await this.#storage.get() : null;
    let res: Response | null = null;
    let failure: unknown = null;
    if (token || this.mode === "cookie") {
      try {
        res = await request(token);
        // Cookie mode: the cookie alone also names the session.
        if (res.status === 401 && token && this.mode === "cookie") res = await request(null);
      } catch (err) {
        failure = err;
      }
    }
    // Bearer mode without a logout: the refresh token still names the session.
    const revoke = !!refreshToken && !res?.ok && scope !== "others";
    if (revoke) await this.#revoke(refreshToken, 0);
    else if (failure) throw failure;
    // A 401: nothing left to log out of.
    else if (res && !res.ok && res.status !== 401) await this.#json(res);
    if (scope !== "others") await this.#signedOut("logout", true, sessionId);
  }

  /** @deprecated Renamed {@link SessiondClient.signOut}. */
  logOut(scope: "local" | "others" | "global" = "local"): Promise<void> {
    return this.signOut(scope);
  }

  /** Stops timers, closes the BroadcastChannel and drops listeners. The client is unusable after. */
  dispose(): void {
    this.#disposed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#channel?.close();
    this.#channel = null;
    this.#listeners.clear();
    this.#waiters = [];
  }

  // ---- internals ----------------------------------------------------------------------------

  #credentials(): RequestCredentials {
    return this.mode === "cookie" ? "include" : "omit";
  }

  #assertLive() {
    if (this.#disposed) throw new Error("@sessiond/client: this client was disposed");
  }

  async #json(res: Response): Promise<unknown> {
    if (res.ok) return res.status === 204 ? null : res.json();
    let code = `http_${res.status}`;
    let description = res.statusText;
    try {
      const body = (await res.json()) as { error?: string; error_description?: string };
      code = body.error ?? code;
      description = body.error_description ?? description;
    } catch {
      // not the contract's JSON error
    }
    throw new SessiondError(res.status, code, description);
  }

  async #restore(): Promise<void> {
    try {
      if (this.mode === "bearer" ? !(await this.#storage.get()) : this.#hint && hint() === false) return;
      await this.refresh();
    } catch (err) {
      // Offline or sessiond unreachable: stay signed out for now; getAccessToken() tries again.
      this.#failure = err instanceof SessiondError ? err.code : "network_error";
    }
  }

  /** The first event a listener gets: the state now, or that the restore failed. */
  #initial(): ChangeEvent {
    const s = this.#state;
    return s || !this.#failure
      ? { type: "initial_session", user: s?.user ?? null, sessionId: s?.sessionId ?? null, remote: false }
      : { type: "restore_failed", user: null, sessionId: null, remote: false, reason: this.#failure };
  }

  /**
   * RFC 7009: ends the session of `token` without an access token. Network failures, 5xx and 429
   * are retried after 1, 2, 4, … 32 s (in the background: the first attempt is awaited).
   */
  async #revoke(token: string, attempt: number): Promise<void> {
    const pending = this.#storage.pendingRevocation;
    try {
      const res = await this.#fetch(`${this.url}/v1/revoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token, token_type_hint: "refresh_token" }),
        credentials: "omit",
      });
      if (res.status < 500 && res.status !== 429) {
        if (pending && (await pending.get()) === token) await pending.remove();
        return;
      }
    } catch {
      // unreachable: try again later
    }
    if (attempt < 6) unref(setTimeout(() => void this.#revoke(token, attempt + 1), 1000 * 2 ** attempt));
    // Kept for the next start too (until sessiond answers).
    if (attempt === 0) await Promise.resolve(pending?.set(token)).catch(() => {});
  }

  async #doRefresh(): Promise<SessionState | null> {
    const epoch = this.#epoch;
    const presented = this.mode === "bearer" ? await this.#storage.get() : null;
    if (this.mode === "bearer" && !presented) {
      if (this.#state) await this.#signedOut("invalid_refresh_token", true);
      return null;
    }
    // Network errors and 5xx/429 are retried with the same token: sessiond's grace window
    // answers a retried, already-spent token with the same successor.
    let lastError: unknown = null;
    for (const delay of [0, 400, 1600]) {
      if (delay) await sleep(delay);
      if (this.#disposed) return null;
      let res: Response;
      try {
        res = await this.#fetch(`${this.url}/v1/token/refresh`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(presented ? { refresh_token: presented } : {}),
          credentials: this.#credentials(),
        });
      } catch (err) {
        lastError = err;
        continue;
      }
      if (res.status >= 500 || res.status === 429) {
        lastError = new SessiondError(res.status, `http_${res.status}`, "sessiond is unavailable");
        continue;
      }
      let body: TokenResponse;
      try {
        body = (await this.#json(res)) as TokenResponse;
      } catch (err) {
        if (err instanceof SessiondError && SESSION_OVER.has(err.code)) {
          // A sign-in (here or in another tab) may have replaced the session meanwhile.
          if (epoch !== this.#epoch) return this.#state;
          if (this.mode === "bearer" && (await this.#storage.get()) !== presented) {
            // Another tab rotated or replaced the stored token: try again with that one.
            return this.#doRefreshOnce();
          }
          await this.#signedOut(err.code, this.#state !== null);
          return null;
        }
        throw err;
      }
      if (epoch !== this.#epoch) return this.#state;
      await this.#accept(body, this.#state ? "refreshed" : "signed_in", presented, epoch);
      return this.#state;
    }
    this.#unsure = true;
    if (this.#state) this.#schedule(5000 + Math.random() * 5000);
    throw lastError;
  }

  /** One more refresh attempt with whatever the storage holds now (bearer mode, lost race). */
  async #doRefreshOnce(): Promise<SessionState | null> {
    const presented = await this.#storage.get();
    if (!presented) {
      await this.#signedOut("invalid_refresh_token", this.#state !== null);
      return null;
    }
    const epoch = this.#epoch;
    const res = await this.#fetch(`${this.url}/v1/token/refresh`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: presented }),
      credentials: "omit",
    });
    try {
      const body = (await this.#json(res)) as TokenResponse;
      if (epoch !== this.#epoch) return this.#state;
      await this.#accept(body, this.#state ? "refreshed" : "signed_in", presented, epoch);
      return this.#state;
    } catch (err) {
      if (err instanceof SessiondError && SESSION_OVER.has(err.code)) {
        if (epoch !== this.#epoch) return this.#state;
        await this.#signedOut(err.code, this.#state !== null);
        return null;
      }
      throw err;
    }
  }

  /** Takes a token response: stores the refresh token (bearer), updates state, tells everyone. */
  async #accept(body: TokenResponse, type: "signed_in" | "refreshed", presented: string | null, epoch?: number) {
    if (this.#disposed) return;
    if (this.mode === "cookie") {
      if (body.refresh_token && !this.#warned) {
        this.#warned = true;
        console.warn(MODE_MISMATCH);
      }
      // Without a cookie there is nothing for the next page load to restore.
      if (this.#hint) hint(!body.refresh_token);
    }
    if (this.mode === "bearer" && body.refresh_token) {
      // After a refresh, write the successor only if the storage still holds the token we
      // presented: a tab that lost the race must not put back an older token.
      if (presented === null || (await this.#storage.get()) === presented) {
        await this.#storage.set(body.refresh_token);
      }
    }
    // A refresh overtaken by a sign-in or an upgrade (while the storage was written) is dropped.
    if (epoch !== undefined && epoch !== this.#epoch) return;
    const previous = this.#state;
    const state: SessionState = {
      user: body.user,
      sessionId: body.session_id,
      accessToken: body.access_token,
      expiresAt: Date.now() + body.expires_in * 1000 - Math.min(1000, body.expires_in * 200),
    };
    if (outdated(previous, state)) return;
    const kind = type === "refreshed" && previous?.sessionId === state.sessionId ? "refreshed" : "signed_in";
    this.#set(state, kind, this.#following);
    // Other tabs learn that a session started (or its user changed), never the token.
    if (kind === "signed_in" && !this.#following) {
      this.#post({ type: kind, sessionId: state.sessionId, guest: state.user.is_guest });
    }
  }


  #set(state: SessionState, type: "signed_in" | "refreshed", remote: boolean) {
    this.#state = state;
    this.#unsure = false;
    this.#failure = "";
    this.#scheduleRefresh(state);
    this.#emit({ type, user: state.user, sessionId: state.sessionId, remote });
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve({ ...state });
  }

  async #signedOut(reason: string, notify: boolean, sessionId = this.#state?.sessionId ?? null) {
    this.#epoch++;
    this.#unsure = false;
    this.#failure = "";
    const had = this.#state !== null;
    this.#state = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.mode === "bearer") await this.#storage.remove();
    else if (this.#hint) hint(false);
    if (notify) this.#post({ type: "signed_out", sessionId, reason });
    if (had) this.#emit({ type: "signed_out", user: null, sessionId, remote: false, reason });
  }

  #onMessage(data: unknown) {
    const message = parseMessage(data);
    const current = this.#state;
    if (this.#disposed || !message) return;
    if (message.type === "signed_out") {
      if (!current || (message.sessionId !== null && message.sessionId !== current.sessionId)) return;
      this.#epoch++;
      this.#state = null;
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      this.#emit({
        type: "signed_out",
        user: null,
        sessionId: current.sessionId,
        remote: true,
        reason: message.reason,
      });
      return;
    }
    void this.#follow(message.sessionId, message.guest);
  }

  /**
   * Another tab signed in (or upgraded): refresh for this tab's own access token, with the
   * refresh token the tabs share (the cookie, or the shared storage). A refresh already in flight
   * may still carry the previous token: then once more.
   */
  async #follow(sessionId: string, guest: boolean) {
    const done = () => this.#state?.sessionId === sessionId && this.#state.user.is_guest === guest;
    this.#following = true;
    try {
      for (let i = 0; i < 2 && !done(); i++) if (!(await this.refresh())) break;
    } catch {
      // unreachable: getAccessToken() tries again
    } finally {
      this.#following = false;
    }
  }

  #post(message: Message) {
    try {
      this.#channel?.postMessage(message);
    } catch {
      // a closed channel
    }
  }

  #emit(event: ChangeEvent, listeners = [...this.#listeners]) {
    if (!this.#started) return;
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Refresh at a random moment in the last part of the token's life (before the lead). */
  #scheduleRefresh(state: SessionState) {
    const lifetime = Math.max(0, state.expiresAt - Date.now());
    const lead = Math.min(this.#leadSecs * 1000, lifetime / 4);
    const jitter = Math.random() * Math.min(10_000, lifetime / 10);
    this.#schedule(lifetime - lead - jitter);
  }

  #schedule(delayMs: number) {
    if (this.#disposed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.refresh().catch(() => {
        // failures reschedule themselves; the state is kept
      });
    }, Math.max(0, delayMs));
    unref(this.#timer);
  }
}

/** Creates a client; see {@link ClientOptions}. */
export function createClient(options: ClientOptions): SessiondClient {
  return new SessiondClient(options);
}
