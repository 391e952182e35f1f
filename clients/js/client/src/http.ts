// sessiond's HTTP contract as the client speaks it: JSON requests, and JSON errors
// (`{ error, error_description }`) turned into one error type that apps can switch on.

import type { User } from "./types.js";

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
  try {
    const body = (await res.json()) as { error?: string; error_description?: string };
    code = body.error ?? code;
    description = body.error_description ?? description;
  } catch {
    // not the contract's JSON error
  }
  throw new SessiondError(res.status, code, description);
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
