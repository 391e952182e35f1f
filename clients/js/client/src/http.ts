// sessiond's HTTP contract as the client speaks it: JSON requests, and JSON errors
// (`{ error, error_description }`) turned into one error type that apps can switch on.

import { fromBase64url } from "./base64url.js";
import type { MfaMethod, User } from "./types.js";

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

/**
 * `mfa_required` (401): the password (or the mailed sign-in) was right and the account has a
 * second factor. Finish with `completeMfa({ mfaToken, code })` (or `recoveryCode`) within 5
 * minutes; the token allows 5 wrong codes.
 */
export class MfaRequiredError extends SessiondError {
  /** Single use, for `completeMfa()`. */
  readonly mfaToken: string;
  /** What `completeMfa()` accepts: `totp` (a code), `recovery_code`. */
  readonly methods: MfaMethod[];
  constructor(status: number, description: string, mfaToken: string, methods: MfaMethod[]) {
    super(status, "mfa_required", description);
    this.name = "MfaRequiredError";
    this.mfaToken = mfaToken;
    this.methods = methods;
  }
}

/**
 * `insufficient_user_authentication` (401, RFC 9470): the request needs a more recent or a
 * stronger authentication; `reauthenticate()`, then try again. `maxAge` and `acrValues` come
 * from the answer's `WWW-Authenticate` challenge when the page can read it (cross-origin, only
 * where the server exposes that header).
 */
export class StepUpRequiredError extends SessiondError {
  /** The most seconds since the last authentication that the request accepts. */
  readonly maxAge?: number;
  /** The assurance levels it accepts (`["2"]`: two factors or a user-verified passkey). */
  readonly acrValues?: string[];
  constructor(status: number, description: string, challenge: StepUpChallenge) {
    super(status, "insufficient_user_authentication", description);
    this.name = "StepUpRequiredError";
    if (challenge.maxAge !== undefined) this.maxAge = challenge.maxAge;
    if (challenge.acrValues !== undefined) this.acrValues = challenge.acrValues;
  }
}

/** What an RFC 9470 challenge asks for. */
export interface StepUpChallenge {
  maxAge?: number;
  acrValues?: string[];
}

/**
 * The RFC 9470 challenge of a `WWW-Authenticate` header: null unless it says
 * `error="insufficient_user_authentication"`.
 */
export function stepUpChallenge(header: string | null): StepUpChallenge | null {
  if (!header || !/error="?insufficient_user_authentication"?/.test(header)) return null;
  const challenge: StepUpChallenge = {};
  const maxAge = /(?:^|[\s,])max_age="?(\d+)"?/.exec(header);
  if (maxAge) challenge.maxAge = Number(maxAge[1]);
  const acr = /(?:^|[\s,])acr_values="([^"]*)"/.exec(header) ?? /(?:^|[\s,])acr_values=([^\s,"]+)/.exec(header);
  if (acr) challenge.acrValues = acr[1].split(" ").filter(Boolean);
  return challenge;
}

/** The answer of every endpoint that starts or continues a session. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  expires_at: number;
  refresh_token?: string;
  session_id: string;
  user: User;
  /** When the user last authenticated in this session, in seconds since the epoch. */
  auth_time?: number;
}

/** Refresh answers that mean the session is over (as opposed to a network or server failure). */
export const SESSION_OVER: ReadonlySet<string> = new Set([
  "invalid_refresh_token",
  "refresh_token_reused",
  "session_revoked",
  "session_expired",
  "invalid_request",
]);

/**
 * The body of a successful answer (null for 204), or a `SessiondError` with the contract's
 * `error` code; an error body that is not the contract's JSON becomes `http_<status>`.
 */
export async function readJson(res: Response): Promise<unknown> {
  if (res.ok) return res.status === 204 ? null : res.json();
  let code = `http_${res.status}`;
  let description = res.statusText;
  let body: { error?: string; error_description?: string; mfa_token?: unknown; methods?: unknown } = {};
  try {
    body = (await res.json()) ?? {};
    code = body.error ?? code;
    description = body.error_description ?? description;
  } catch {
    // not the contract's JSON error
  }
  if (code === "mfa_required" && typeof body.mfa_token === "string") {
    const methods = Array.isArray(body.methods) ? body.methods.filter((m) => typeof m === "string") : [];
    throw new MfaRequiredError(res.status, description, body.mfa_token, methods);
  }
  if (code === "insufficient_user_authentication") {
    const challenge = stepUpChallenge(res.headers.get("www-authenticate")) ?? {};
    throw new StepUpRequiredError(res.status, description, challenge);
  }
  throw new SessiondError(res.status, code, description);
}

/**
 * Whether a 401 asks for a fresh or stronger authentication (its `WWW-Authenticate`, or its
 * body when the header is not exposed to the page), which a refresh would not give.
 */
export async function isStepUp(res: Response): Promise<boolean> {
  if (stepUpChallenge(res.headers.get("www-authenticate"))) return true;
  return (await errorCode(res)) === "insufficient_user_authentication";
}

/** What an access token says about its session's authentication (a JWT's payload, unverified). */
export interface AuthenticationClaims {
  auth_time?: number;
  acr?: string;
  amr?: string[];
}

/**
 * `auth_time`, `acr` and `amr` of an access token, read (not verified: sessiond verifies) from
 * its payload; empty when the token is not a JWT or lacks them.
 */
export function authenticationClaims(accessToken: string): AuthenticationClaims {
  const payload = accessToken.split(".")[1];
  if (!payload) return {};
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(new TextDecoder().decode(fromBase64url(payload)));
  } catch {
    return {};
  }
  const out: AuthenticationClaims = {};
  if (typeof claims?.auth_time === "number") out.auth_time = claims.auth_time;
  if (typeof claims?.acr === "string") out.acr = claims.acr;
  if (Array.isArray(claims?.amr)) out.amr = claims.amr.filter((m): m is string => typeof m === "string");
  return out;
}

/** The contract's `error` code of an answer, without consuming it (the caller may still read it). */
export async function errorCode(res: Response): Promise<string | null> {
  try {
    return ((await res.clone().json()) as { error?: string }).error ?? null;
  } catch {
    return null;
  }
}

/** True for answers worth retrying with the same request: sessiond overloaded or restarting. */
export function unavailable(res: Response): boolean {
  return res.status >= 500 || res.status === 429;
}

/**
 * `POST url` with a JSON body, and `Authorization: Bearer` when an access token is given.
 * `credentials` decides whether sessiond's cookie travels (cookie mode) or not (bearer mode).
 */
export function postJson(
  fetch: typeof globalThis.fetch,
  url: string,
  body: object,
  credentials: RequestCredentials,
  accessToken?: string | null,
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body), credentials });
}
