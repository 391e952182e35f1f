/**
 * @sessiond/node: sessiond for Node servers.
 *
 * - `requireSession()`: Express/Connect middleware, `req.auth = { sub, sid, is_guest, email,
 *   auth_time, acr, amr }`; with `maxAge` / `acr`, RFC 9470 step-up challenges.
 * - `socketAuth()`: Socket.IO handshake middleware (ticket or access token),
 *   `socket.data.session`, sockets of ended sessions disconnected via the event feed.
 * - `Sessiond`: token checks (introspection or JWKS), ticket redemption, the feed's state.
 * - `SessionEvents`: a follower of `GET /v1/events` (SSE, resumable).
 */
export { Sessiond, SessiondUnavailableError } from "./sessiond.js";
export type { SessionAuth, SessiondOptions, SessiondEvents } from "./sessiond.js";
export { requireSession, bearerToken } from "./express.js";
export type { RequireSessionOptions, SessionMiddleware, SessionRequest } from "./express.js";
export { socketAuth, SESSION_ENDED_EVENT } from "./socketio.js";
export type { SocketAuthOptions, SocketMiddleware, SocketLike, SocketData, HandshakeError } from "./socketio.js";
export { SessionEvents, SseParser } from "./events.js";
export type {
  SessionEvent, SessionEventType, SessionEventsOptions, SessionEventsEvents, FeedRefusedError,
} from "./events.js";
export type { JwksCache } from "./jwks.js";
export type { StepUpOptions, StepUpRefusal } from "./stepup.js";
