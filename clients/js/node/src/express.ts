/**
 * `requireSession()`: Express (or Connect / plain `node:http`) middleware that checks
 * `Authorization: Bearer <access token>` with sessiond and sets `req.auth`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Sessiond, SessiondUnavailableError } from "./sessiond.js";
import type { SessionAuth, SessiondOptions } from "./sessiond.js";
import { stepUpChallenge, stepUpOptions, stepUpRefusal } from "./stepup.js";
import type { StepUpOptions, StepUpRefusal } from "./stepup.js";
// For apps that import this module alone (`@sessiond/node/express`, `/socket.io`): the type of
// what the middleware attaches, without a second import from the package root.
export type { SessionAuth, StepUpOptions };

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * Set by requireSession(): the caller's session. Typed as present, as it is on every route
       * behind requireSession(); with `anonymous: true` it is null when the request had no
       * token (check `req.auth === null` there), and it is undefined on routes without the
       * middleware.
       */
      auth: SessionAuth;
    }
  }
}

export interface RequireSessionOptions extends Partial<SessiondOptions>, StepUpOptions {
  /** A shared {@link Sessiond} (one feed connection for several middlewares); else `url` etc. */
  sessiond?: Sessiond;
  /**
   * Let requests without an `Authorization` header through with `req.auth = null`. A header
   * with a bad, expired or revoked token is still refused. Default false.
   */
  anonymous?: boolean;
  /** The `realm` of `WWW-Authenticate` (default `sessiond`). */
  realm?: string;
}

type Request = IncomingMessage & { auth?: SessionAuth | null };

/** A `node:http` request behind requireSession() (for apps without Express's types). */
export type SessionRequest<R extends IncomingMessage = IncomingMessage> = R & { auth: SessionAuth };
type Next = (err?: unknown) => void;

export interface SessionMiddleware {
  (req: Request, res: ServerResponse, next: Next): Promise<void>;
  /** The checker used (its feed, `close()`). */
  readonly sessiond: Sessiond;
}

/** The token of `Authorization: Bearer <token>`; null when absent, false when malformed. */
export function bearerToken(header: string | string[] | undefined): string | null | false {
  if (header === undefined || header === "") return null;
  if (Array.isArray(header)) return false;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return match ? match[1] : false;
}

/** The contract's error JSON with `WWW-Authenticate` (RFC 6750). */
function refuse(res: ServerResponse, realm: string, description: string) {
  const quoted = (s: string) => s.replace(/["\\]/g, "");
  res.statusCode = 401;
  res.setHeader(
    "www-authenticate",
    `Bearer realm="${quoted(realm)}", error="invalid_token", error_description="${quoted(description)}"`,
  );
  res.setHeader("content-type", "application/json");
  res.setHeader("cache-control", "no-store");
  res.end(JSON.stringify({ error: "invalid_token", error_description: description }));
}

/** 401 `insufficient_user_authentication` with the RFC 9470 challenge. */
function insufficient(res: ServerResponse, realm: string, refusal: StepUpRefusal) {
  res.statusCode = 401;
  res.setHeader("www-authenticate", stepUpChallenge(realm, refusal));
  res.setHeader("content-type", "application/json");
  res.setHeader("cache-control", "no-store");
  res.end(JSON.stringify({ error: refusal.error, error_description: refusal.error_description }));
}

function unavailable(res: ServerResponse) {
  res.statusCode = 503;
  res.setHeader("retry-after", "1");
  res.setHeader("content-type", "application/json");
  res.setHeader("cache-control", "no-store");
  res.end(JSON.stringify({ error: "unavailable", error_description: "the session service cannot be reached" }));
}

/**
 * Middleware that lets a request through only with a valid access token, and sets
 * `req.auth = { sub, sid, is_guest, email, auth_time, acr, amr }`. Otherwise it answers 401
 * `{"error": "invalid_token", "error_description": …}` with `WWW-Authenticate: Bearer …`, or 503
 * `unavailable` when sessiond cannot be asked. With `maxAge` and/or `acr`, a valid token whose
 * session authenticated too long ago or too weakly gets 401 `insufficient_user_authentication`
 * with RFC 9470's challenge (`max_age=…`, `acr_values="…"`): the client re-authenticates and
 * tries again.
 */
export function requireSession(options: RequireSessionOptions): SessionMiddleware {
  const required = stepUpOptions(options);
  const sessiond = options.sessiond ?? new Sessiond(options as SessiondOptions);
  const anonymous = options.anonymous === true;
  const realm = options.realm ?? "sessiond";
  const middleware = async (req: Request, res: ServerResponse, next: Next) => {
    const token = bearerToken(req.headers.authorization);
    if (token === null) {
      if (anonymous) {
        req.auth = null;
        return next();
      }
      return refuse(res, realm, "an access token is required");
    }
    if (token === false) return refuse(res, realm, "the Authorization header must be Bearer <access token>");
    let auth: SessionAuth | null;
    try {
      auth = await sessiond.verifyAccessToken(token);
    } catch (err) {
      if (err instanceof SessiondUnavailableError) return unavailable(res);
      return next(err);
    }
    if (!auth) return refuse(res, realm, "the access token is invalid, expired or revoked");
    const refusal = stepUpRefusal(auth, required);
    if (refusal) return insufficient(res, realm, refusal);
    req.auth = auth;
    next();
  };
  return Object.assign(middleware, { sessiond }) as SessionMiddleware;
}
