/**
 * The server-side view of sessiond: checks access tokens (introspection, or locally with the
 * JWKS), redeems WebSocket tickets, and optionally follows the session event feed.
 */
import { EventEmitter } from "node:events";
import { errors, jwtVerify } from "jose";
import type { JWTPayload } from "jose";
import { SessionEvents } from "./events.js";
import { JwksCache, JwksUnavailableError } from "./jwks.js";
import type { SessionEvent } from "./events.js";

/** Who a valid token or ticket belongs to (`req.auth`, `socket.data.session`). */
export interface SessionAuth {
  /** The user id. */
  sub: string;
  /** The session id. */
  sid: string;
  is_guest: boolean;
  email: string | null;
  /**
   * When the user last authenticated in this session (sign-in or re-authentication), in seconds
   * since the epoch. Absent when sessiond did not say (a WebSocket ticket, an older sessiond).
   */
  auth_time?: number;
  /** The assurance of that authentication: `"1"` one factor, `"2"` two factors or a user-verified passkey. */
  acr?: string;
  /** How the user authenticated: `["pwd"]`, `["pwd", "otp"]`, `["hwk", "user"]`, `["guest"]`… */
  amr?: string[];
}

export interface SessiondOptions {
  /** sessiond's base URL, e.g. `http://sessiond:8080`. */
  url: string;
  /**
   * A service key (`sessiond service-keys create NAME --scope introspect [--scope events]`):
   * scope `introspect` for introspection and tickets, `events` for the event feed.
   */
  serviceKey?: string;
  /**
   * How access tokens are checked. `introspect` (default): asks sessiond every time, so a logout
   * is seen at once. `jwks`: verifies the signature locally with sessiond's JWKS; with the event
   * feed (the default in this mode) tokens of ended sessions are refused within a second, and
   * whenever the feed cannot vouch for a token (not connected, token older than the feed) it is
   * introspected instead.
   */
  mode?: "introspect" | "jwks";
  /** JWKS mode: the expected `iss` (default: sessiond's discovery document). */
  issuer?: string;
  /** JWKS mode: the expected `aud` (default `sessiond`). */
  audience?: string | string[];
  /**
   * Follow `GET /v1/events` (service key scope `events`): `true`, `false`, or a shared
   * {@link SessionEvents}. Default: true in JWKS mode, false in introspection mode. A Sessiond
   * shared with `socketAuth({ sessiond })` must follow it (`events: true`), or sockets of
   * ended sessions would stay open: socketAuth refuses one that does not.
   */
  events?: boolean | SessionEvents;
  /**
   * JWKS mode: the longest access-token lifetime to trust locally (default 3600 s); longer-lived
   * tokens are introspected. Ended sessions are remembered this long (+60 s).
   */
  maxTokenLifetimeSecs?: number;
  /** Timeout of each call to sessiond (default 5000 ms). */
  timeoutMs?: number;
  /** Where warnings go (default `console.warn`). */
  warn?: (message: string) => void;
  fetch?: typeof fetch;
}

/** sessiond did not answer (or answered 5xx): the caller should answer 503, not 401. */
export class SessiondUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SessiondUnavailableError";
  }
}

export interface SessiondEvents {
  /** A session ended (from the feed): its sockets should close. */
  "session.ended": [SessionEvent];
  /** A user was deleted (from the feed). */
  "user.deleted": [SessionEvent];
  /** A signing key was retired (from the feed): tokens it signed no longer verify here. */
  "key.retired": [SessionEvent];
  /** The feed was reset: anything derived from it was dropped. */
  reset: [];
}

const ALGORITHMS = ["ES256", "EdDSA", "RS256"];

export class Sessiond extends EventEmitter<SessiondEvents> {
  readonly url: string;
  readonly mode: "introspect" | "jwks";
  /** The event feed follower, when following. */
  readonly events: SessionEvents | null;

  #serviceKey: string | undefined;
  #fetch: typeof fetch;
  #timeoutMs: number;
  #issuer: string | undefined;
  #issuerLookup: Promise<string> | null = null;
  #audience: string | string[];
  #jwks: JwksCache | null = null;
  #maxLifetimeMs: number;
  #warn: (message: string) => void;
  #ownsEvents: boolean;
  /** Ended session ids and deleted user ids from the feed, with when we learned it (ms). */
  #endedSessions = new Map<string, number>();
  #deletedUsers = new Map<string, number>();
  #pruneTimer: ReturnType<typeof setInterval> | null = null;
  #lastWarning = "";

  constructor(options: SessiondOptions) {
    super();
    if (!options?.url) throw new TypeError("@sessiond/node: options.url is required");
    this.url = options.url.replace(/\/+$/, "");
    this.mode = options.mode ?? "introspect";
    if (this.mode !== "introspect" && this.mode !== "jwks") {
      throw new TypeError(`@sessiond/node: unknown mode ${String(options.mode)}`);
    }
    this.#serviceKey = options.serviceKey;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#issuer = options.issuer;
    this.#audience = options.audience ?? "sessiond";
    this.#maxLifetimeMs = (options.maxTokenLifetimeSecs ?? 3600) * 1000;
    this.#warn = options.warn ?? ((message) => console.warn(`@sessiond/node: ${message}`));
    if (this.mode === "introspect" && !this.#serviceKey) {
      throw new TypeError("@sessiond/node: introspection needs options.serviceKey (scope introspect)");
    }

    const wantEvents = options.events ?? this.mode === "jwks";
    if (wantEvents instanceof SessionEvents) {
      this.events = wantEvents;
      this.#ownsEvents = false;
    } else if (wantEvents) {
      if (!this.#serviceKey) {
        throw new TypeError(
          "@sessiond/node: the event feed needs options.serviceKey (scope events); or set events: false",
        );
      }
      this.events = new SessionEvents({ url: this.url, serviceKey: this.#serviceKey, fetch: options.fetch });
      this.#ownsEvents = true;
    } else {
      this.events = null;
      this.#ownsEvents = false;
    }
    if (this.mode === "jwks") {
      // Kept no longer than sessiond's Cache-Control max-age, and without retired keys.
      this.#jwks = new JwksCache(`${this.url}/.well-known/jwks.json`, this.#fetch, this.#timeoutMs);
    }
    if (this.events) this.#follow(this.events);
  }

  /**
   * Resolves once the event feed is live (at once without a feed). Rejects when sessiond
   * refuses the service key for the feed (401, or 403 without the `events` scope): await it at
   * start-up so that a misconfigured key stops the server instead of leaving it half-working.
   */
  ready(): Promise<void> {
    return this.events ? this.events.ready() : Promise.resolve();
  }

  /** JWKS mode: the local key cache (its `expiresAt`, `kids`); null in introspection mode. */
  get jwks(): JwksCache | null {
    return this.#jwks;
  }

  /** True when the feed says this session has ended. */
  isEnded(session: Pick<SessionAuth, "sid" | "sub">): boolean {
    return this.#endedSessions.has(session.sid) || this.#deletedUsers.has(session.sub);
  }

  /**
   * Checks an access token: its owner, or null when it is not valid now (bad signature, expired,
   * logged out…). Throws {@link SessiondUnavailableError} when sessiond cannot be asked.
   */
  async verifyAccessToken(token: string): Promise<SessionAuth | null> {
    if (typeof token !== "string" || token.length === 0 || token.length > 8192) return null;
    if (this.mode === "introspect") return this.introspect(token);
    const claims = await this.#verifyLocally(token);
    if (!claims) return null;
    const auth = toAuth(claims);
    if (!auth || this.isEnded(auth)) return null;
    // Without the feed (events: false) local verification is all there is: a logout is not
    // seen until the token expires.
    if (!this.events || this.#feedVouchesFor(claims)) return auth;
    // The feed cannot say whether this session ended: ask sessiond (needs scope introspect).
    return this.introspect(token);
  }

  /** `POST /v1/introspect`: the token's owner while it is active, else null. */
  async introspect(token: string): Promise<SessionAuth | null> {
    const body = await this.#service("/v1/introspect", new URLSearchParams({ token }).toString(),
      "application/x-www-form-urlencoded");
    return body.active === true ? toAuth(body) : null;
  }

  /** `POST /v1/ws-tickets/redeem`: the ticket's owner the first time, else null. */
  async redeemTicket(ticket: string): Promise<SessionAuth | null> {
    if (typeof ticket !== "string" || ticket.length === 0 || ticket.length > 512) return null;
    const body = await this.#service("/v1/ws-tickets/redeem", JSON.stringify({ ticket }), "application/json");
    if (body.active !== true) return null;
    const auth = toAuth(body);
    return auth && !this.isEnded(auth) ? auth : null;
  }

  /** Stops the feed follower (if this instance started it) and timers. */
  async close(): Promise<void> {
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
    this.#pruneTimer = null;
    if (this.#ownsEvents) await this.events?.close();
  }

  #follow(events: SessionEvents) {
    events.on("session.ended", (event) => {
      if (event.session_id) this.#endedSessions.set(event.session_id, Date.now());
      this.emit("session.ended", event);
    });
    events.on("user.deleted", (event) => {
      if (event.user_id) this.#deletedUsers.set(event.user_id, Date.now());
      this.emit("user.deleted", event);
    });
    events.on("key.retired", (event) => {
      // At once, not when the cached JWKS expires: tokens signed by that key fail from now on.
      if (typeof event.kid === "string") this.#jwks?.retire(event.kid);
      this.emit("key.retired", event);
    });
    events.on("reset", () => {
      this.#endedSessions.clear();
      this.#deletedUsers.clear();
      // A retirement may have been missed too: fetch the JWKS again before trusting it.
      this.#jwks?.invalidate();
      this.emit("reset");
    });
    events.on("open", () => {
      this.#lastWarning = "";
    });
    events.on("error", (err) => {
      // One line per kind of failure, not one per retry.
      if (err.message !== this.#lastWarning) this.#warn(`event feed: ${err.message} (retrying)`);
      this.#lastWarning = err.message;
    });
    this.#pruneTimer = setInterval(() => this.#prune(), 60_000);
    this.#pruneTimer.unref?.();
    events.start();
  }

  #prune() {
    const before = Date.now() - this.#maxLifetimeMs - 60_000;
    for (const map of [this.#endedSessions, this.#deletedUsers]) {
      for (const [key, at] of map) if (at < before) map.delete(key);
    }
    this.#jwks?.prune(before);
  }

  /** Whether every end of this token's session would have reached us through the feed. */
  #feedVouchesFor(claims: JWTPayload): boolean {
    const events = this.events;
    if (!events?.live || events.liveSince === null) return false;
    const iat = (claims.iat ?? 0) * 1000;
    const exp = (claims.exp ?? 0) * 1000;
    if (exp - iat > this.#maxLifetimeMs) return false;
    // Issued before the feed was complete (5 s for clock differences): it could have ended unseen.
    return iat > events.liveSince + 5000;
  }

  async #verifyLocally(token: string): Promise<JWTPayload | null> {
    try {
      const { payload } = await jwtVerify(token, this.#jwks!.getKey, {
        issuer: await this.#expectedIssuer(),
        audience: this.#audience,
        typ: "at+jwt",
        algorithms: ALGORITHMS,
        requiredClaims: ["sub", "sid", "exp", "iat"],
      });
      return payload;
    } catch (err) {
      if (err instanceof SessiondUnavailableError) throw err;
      if (err instanceof JwksUnavailableError) {
        throw new SessiondUnavailableError(err.message, { cause: err });
      }
      if (
        err instanceof errors.JOSEError &&
        !(err instanceof errors.JWKSTimeout) &&
        err.code !== "ERR_JOSE_GENERIC"
      ) {
        return null;
      }
      throw new SessiondUnavailableError("sessiond's JWKS cannot be fetched", { cause: err });
    }
  }

  #expectedIssuer(): Promise<string> {
    if (this.#issuer) return Promise.resolve(this.#issuer);
    this.#issuerLookup ??= (async () => {
      const res = await this.#call("/.well-known/openid-configuration", { method: "GET" });
      const body = (await res.json()) as { issuer?: string };
      if (!body.issuer) throw new SessiondUnavailableError("sessiond's discovery document has no issuer");
      this.#issuer = body.issuer;
      return body.issuer;
    })().catch((err) => {
      this.#issuerLookup = null;
      throw err;
    });
    return this.#issuerLookup;
  }

  async #service(path: string, body: string, contentType: string): Promise<Record<string, unknown>> {
    if (!this.#serviceKey) throw new TypeError(`@sessiond/node: ${path} needs options.serviceKey`);
    const res = await this.#call(path, {
      method: "POST",
      headers: { authorization: `Bearer ${this.#serviceKey}`, "content-type": contentType },
      body,
    });
    return (await res.json()) as Record<string, unknown>;
  }

  async #call(path: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await this.#fetch(`${this.url}${path}`, { ...init, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (err) {
      throw new SessiondUnavailableError(`sessiond ${path} did not answer`, { cause: err });
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => "");
    if (res.status === 401 || res.status === 403) {
      // A wrong or under-scoped service key is a deployment error: say so loudly.
      this.#warn(`${path} refused the service key: ${res.status} ${text.slice(0, 200)}`);
    }
    throw new SessiondUnavailableError(`sessiond ${path} answered ${res.status}`);
  }
}

/** The owner of a token or ticket, from its claims or sessiond's answer. */
function toAuth(claims: Record<string, unknown>): SessionAuth | null {
  const { sub, sid, is_guest, email, auth_time, acr, amr } = claims;
  if (typeof sub !== "string" || typeof sid !== "string") return null;
  return {
    sub,
    sid,
    is_guest: is_guest === true,
    email: typeof email === "string" ? email : null,
    ...(typeof auth_time === "number" && Number.isFinite(auth_time) && { auth_time }),
    ...(typeof acr === "string" && { acr }),
    ...(Array.isArray(amr) && { amr: amr.filter((m): m is string => typeof m === "string") }),
  };
}
