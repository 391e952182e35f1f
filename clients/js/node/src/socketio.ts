/**
 * `socketAuth()`: a Socket.IO middleware (`io.use(socketAuth({...}))`) that lets a handshake in
 * with a one-time ticket (`auth: { ticket }`, redeemed with the service key) or an access token
 * (`auth: { token }` or an `Authorization: Bearer` header), and sets `socket.data.session`.
 * With the event feed it disconnects the sockets of a session within a second of its end,
 * after telling the client why (`session_ended` event with `{ reason }`).
 *
 * It follows the feed unless told not to (`events: false`): given a shared Sessiond that does not
 * follow it, it throws at setup; while sessiond refuses the key for the feed (no `events` scope)
 * it refuses handshakes (`unavailable`), logs why, and `ready()` rejects.
 */
import { Sessiond, SessiondUnavailableError } from "./sessiond.js";
import type { SessionAuth, SessiondOptions } from "./sessiond.js";
// For apps that import this module alone (`@sessiond/node/express`, `/socket.io`): the type of
// what the middleware attaches, without a second import from the package root.
export type { SessionAuth };
import { bearerToken } from "./express.js";
import { stepUpOptions, stepUpRefusal } from "./stepup.js";
import type { StepUpOptions } from "./stepup.js";
export type { StepUpOptions };
import type { SessionEvent } from "./events.js";

/** The event a socket receives just before the server disconnects it. */
export const SESSION_ENDED_EVENT = "session_ended";

/**
 * What the middleware puts in `socket.data`; the fourth type parameter of Socket.IO's `Server`:
 * `new Server<ClientToServer, ServerToClient, InterServer, SocketData>(…)` types
 * `socket.data.session` in `io.on("connection")`. Extend it for your own fields.
 */
export interface SocketData {
  /** Who the handshake's ticket or token belongs to. */
  session: SessionAuth;
}

/** The part of a Socket.IO server socket this middleware uses. */
export interface SocketLike {
  id: string;
  connected: boolean;
  handshake: { auth?: Record<string, unknown>; headers?: Record<string, string | string[] | undefined> };
  data: Partial<SocketData>;
  emit(event: string, ...args: unknown[]): unknown;
  disconnect(close?: boolean): unknown;
  once(event: "disconnect", listener: (...args: unknown[]) => void): unknown;
}

/** An error passed to `next()`: the client gets `message` and `data` in `connect_error`. */
export interface HandshakeError extends Error {
  data: {
    code: "invalid_ticket" | "invalid_token" | "credentials_required" | "unavailable" | "insufficient_user_authentication";
    /** `insufficient_user_authentication`: the `maxAge` asked for (RFC 9470's `max_age`). */
    max_age?: number;
    /** `insufficient_user_authentication`: the `acr` asked for (RFC 9470's `acr_values`). */
    acr_values?: string;
  };
}

/**
 * `maxAge` and `acr` (from {@link StepUpOptions}) are checked at the handshake only: a socket
 * stays connected as its authentication ages. A ticket handshake is judged by what sessiond's
 * ticket redemption says of the session (without `auth_time` / `acr` there, it is refused).
 */
export interface SocketAuthOptions extends Partial<SessiondOptions>, StepUpOptions {
  /** A shared {@link Sessiond}; else one is made from `url`, `serviceKey`… */
  sessiond?: Sessiond;
  /**
   * Follow the event feed and disconnect sockets of ended sessions (service key scope
   * `events`). Default true. `false` is the explicit opt-out: sockets then stay connected after
   * their session ends (also required to pass a shared `sessiond` that follows no feed).
   */
  events?: SessiondOptions["events"];
  /**
   * How long a handshake waits for the feed to become live the first time, in ms (default
   * 5000); it is refused as `unavailable` after that.
   */
  readyTimeoutMs?: number;
}

export interface SocketMiddleware {
  (socket: SocketLike, next: (err?: Error) => void): Promise<void>;
  readonly sessiond: Sessiond;
  /**
   * Resolves once the event feed is live; rejects when sessiond refuses the service key for it
   * (401, or 403: the key lacks the `events` scope). `await auth.ready()` before `listen()`.
   */
  ready(): Promise<void>;
  /** The sockets currently authenticated for a session id. */
  socketsOf(sid: string): SocketLike[];
  /** Stops the feed (if this middleware started it) and timers. */
  close(): Promise<void>;
}

function handshakeError(
  message: string,
  code: HandshakeError["data"]["code"],
  extra: Omit<HandshakeError["data"], "code"> = {},
): HandshakeError {
  return Object.assign(new Error(message), { data: { code, ...extra } });
}

export function socketAuth(options: SocketAuthOptions): SocketMiddleware {
  const required = stepUpOptions(options);
  if (options.sessiond && !options.sessiond.events && options.events !== false) {
    throw new TypeError(
      "@sessiond/node: socketAuth({ sessiond }) was given a Sessiond that does not follow the event feed, " +
        "so sockets would stay connected after logout. Create the shared one with " +
        "new Sessiond({ url, serviceKey, events: true }) and a service key with the scopes `introspect` " +
        "and `events`; or pass events: false to socketAuth to accept sockets outliving their sessions.",
    );
  }
  const ownSessiond = !options.sessiond;
  const sessiond =
    options.sessiond ?? new Sessiond({ ...(options as SessiondOptions), events: options.events ?? true });
  const feed = sessiond.events;
  const readyTimeoutMs = options.readyTimeoutMs ?? 5000;
  const warn = options.warn ?? ((message: string) => console.error(`@sessiond/node: ${message}`));
  let lastRefusal = "";
  /** sid -> sockets (with when they were registered). */
  const bySession = new Map<string, Map<SocketLike, number>>();

  const forget = (socket: SocketLike, sid: string) => {
    const sockets = bySession.get(sid);
    sockets?.delete(socket);
    if (sockets?.size === 0) bySession.delete(sid);
  };

  /** Tells the client why, then disconnects (waiting for the handshake to finish if needed). */
  const end = (socket: SocketLike, sid: string, reason: string, attempt = 0) => {
    if (!socket.connected) {
      // Still inside the middleware chain: try again shortly (for up to 5 s; after that the
      // handshake was refused by a later middleware and there is nothing to close).
      if (attempt < 100) setTimeout(() => end(socket, sid, reason, attempt + 1), 50).unref?.();
      else forget(socket, sid);
      return;
    }
    forget(socket, sid);
    socket.emit(SESSION_ENDED_EVENT, { reason, session_id: sid });
    // Namespace-level disconnect: the client sees "io server disconnect" and does not reconnect.
    socket.disconnect();
  };

  const endSession = (sid: string, reason: string) => {
    for (const socket of [...(bySession.get(sid)?.keys() ?? [])]) end(socket, sid, reason);
  };

  const onEnded = (event: SessionEvent) => {
    if (event.session_id) endSession(event.session_id, event.reason ?? "ended");
  };
  const onUserDeleted = (event: SessionEvent) => {
    for (const [sid, sockets] of bySession) {
      for (const socket of [...sockets.keys()]) {
        if (socket.data.session?.sub === event.user_id) end(socket, sid, "user_deleted");
      }
    }
  };
  const onReset = () => {
    // Which sessions ended while the follower was away is unknown: every socket reconnects
    // (a new ticket or token is checked then). A transport close makes clients reconnect.
    for (const [sid, sockets] of bySession) {
      for (const socket of [...sockets.keys()]) {
        forget(socket, sid);
        socket.disconnect(true);
      }
    }
  };
  sessiond.on("session.ended", onEnded);
  sessiond.on("user.deleted", onUserDeleted);
  sessiond.on("reset", onReset);

  // Sockets registered in the middleware but never connected (refused by a later middleware).
  const sweep = setInterval(() => {
    const before = Date.now() - 30_000;
    for (const [sid, sockets] of bySession) {
      for (const [socket, at] of sockets) if (!socket.connected && at < before) forget(socket, sid);
    }
  }, 30_000);
  sweep.unref?.();

  /** Null when sockets can be admitted; else why not. */
  const feedProblem = async (): Promise<string | null> => {
    if (!feed) return null;
    // A follower that was live once resumes without loss: nothing is missed while it reconnects.
    if (!feed.refused && (feed.live || feed.liveSince !== null)) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        feed.ready(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the event feed is not live after ${readyTimeoutMs} ms`)),
            readyTimeoutMs);
        }),
      ]);
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timer);
    }
  };

  const middleware = async (socket: SocketLike, next: (err?: Error) => void) => {
    // Without the feed a logout would not close the socket: admit none until it is live.
    const problem = await feedProblem();
    if (problem) {
      if (problem !== lastRefusal) warn(`socketAuth refuses handshakes: ${problem}`);
      lastRefusal = problem;
      return next(handshakeError("authentication unavailable", "unavailable"));
    }
    lastRefusal = "";
    const auth = socket.handshake.auth ?? {};
    const { ticket } = auth;
    let token = typeof auth.token === "string" && auth.token ? auth.token : null;
    if (!token && !ticket) {
      const header = bearerToken(socket.handshake.headers?.authorization);
      if (header) token = header;
    }
    let session: SessionAuth | null;
    try {
      if (typeof ticket === "string" && ticket) {
        session = await sessiond.redeemTicket(ticket);
        if (!session) return next(handshakeError("invalid or expired ticket", "invalid_ticket"));
      } else if (token) {
        session = await sessiond.verifyAccessToken(token);
        if (!session) return next(handshakeError("invalid or expired token", "invalid_token"));
      } else {
        return next(handshakeError("a ticket or an access token is required", "credentials_required"));
      }
    } catch (err) {
      if (!(err instanceof SessiondUnavailableError)) console.error("@sessiond/node: handshake check failed:", err);
      return next(handshakeError("authentication unavailable", "unavailable"));
    }
    // The session may have ended while we waited for sessiond.
    if (sessiond.isEnded(session)) return next(handshakeError("the session has ended", "invalid_token"));
    const refusal = stepUpRefusal(session, required);
    if (refusal) {
      const { error, error_description, ...challenge } = refusal;
      return next(handshakeError(error_description, error, challenge));
    }
    socket.data.session = session;
    if (sessiond.events) {
      const sid = session.sid;
      let sockets = bySession.get(sid);
      if (!sockets) bySession.set(sid, (sockets = new Map()));
      sockets.set(socket, Date.now());
      socket.once("disconnect", () => forget(socket, sid));
    }
    next();
  };

  return Object.assign(middleware, {
    sessiond,
    ready: () => sessiond.ready(),
    socketsOf: (sid: string) => [...(bySession.get(sid)?.keys() ?? [])].filter((s) => s.connected),
    close: async () => {
      clearInterval(sweep);
      sessiond.off("session.ended", onEnded);
      sessiond.off("user.deleted", onUserDeleted);
      sessiond.off("reset", onReset);
      if (ownSessiond) await sessiond.close();
    },
  }) as SocketMiddleware;
}
