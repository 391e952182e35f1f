// When to refresh, and how to send one refresh: the timing policy (before expiry, with jitter so
// that tabs and devices do not refresh in lockstep), the state a token response becomes, and the
// retries of a refresh that got no usable answer. Which token is presented and what an answer
// does to the session is the client's (client.ts): it owns the state.

import type { TokenResponse } from "./http.js";
import { SessiondError, authenticationClaims, unavailable } from "./http.js";
import type { SessionState } from "./types.js";

/** Below this much remaining lifetime, getAccessToken() refreshes before answering. */
export const MIN_REMAINING_MS = 1500;

/**
 * Delays before each attempt of one refresh. Network errors and 5xx/429 are retried with the
 * same token: sessiond's grace window answers a retried, already-spent token with the same
 * successor, so a retry never spends the session.
 */
export const RETRY_DELAYS_MS: readonly number[] = [0, 400, 1600];

/** After every attempt of a refresh failed: try again this long later, plus up to as much again. */
export const UNREACHABLE_RETRY_MS = 5000;

/** Node keeps running while a timer is pending; a client's timers must not keep a process alive. */
export function unref(timer: unknown) {
  (timer as { unref?: () => void } | null)?.unref?.();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The session a token response describes. The client stops using the access token a little
 * before sessiond does (a second, or a fifth of a very short lifetime): `exp` is in whole
 * seconds and the answer took time to arrive. `authTime`, `acr` and `amr` come from the access
 * token's claims (the answer's `auth_time` first, where sessiond sends one).
 */
export function sessionState(body: TokenResponse, now: number): SessionState {
  const claims = authenticationClaims(body.access_token);
  const authTime = typeof body.auth_time === "number" ? body.auth_time : claims.auth_time;
  return {
    user: body.user,
    sessionId: body.session_id,
    accessToken: body.access_token,
    expiresAt: now + body.expires_in * 1000 - Math.min(1000, body.expires_in * 200),
    ...(authTime !== undefined && { authTime }),
    ...(claims.acr !== undefined && { acr: claims.acr }),
    ...(claims.amr !== undefined && { amr: claims.amr }),
  };
}

/**
 * True for a state of the same session from before a guest upgrade (a refresh that crossed the
 * upgrade): an upgraded user never becomes a guest again, so the upgraded state stays.
 */
export function outdated(current: SessionState | null, next: SessionState): boolean {
  return current?.sessionId === next.sessionId && current.user.is_guest === false && next.user.is_guest === true;
}

/**
 * How long to wait before refreshing `state`: a random moment in the last part of the token's
 * life, `leadSecs` before expiry at most (never more than a quarter of the lifetime, so short
 * tokens are not refreshed at once), less up to a tenth of the lifetime (10 s at most) of jitter.
 * `random` is in [0, 1).
 */
export function refreshDelay(state: SessionState, leadSecs: number, now: number, random: number): number {
  const lifetime = Math.max(0, state.expiresAt - now);
  const lead = Math.min(leadSecs * 1000, lifetime / 4);
  const jitter = random * Math.min(10_000, lifetime / 10);
  return lifetime - lead - jitter;
}

/** The one pending refresh of a client: scheduling again replaces it. */
export class RefreshTimer {
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** Runs `run` in `delayMs` (at once if negative), replacing the refresh scheduled before. */
  schedule(delayMs: number, run: () => void) {
    this.clear();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      run();
    }, Math.max(0, delayMs));
    unref(this.#timer);
  }

  clear() {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * Sends one refresh (`send`) until it gets an answer worth reading: the first answer that is
 * neither a network error nor a 5xx/429, after the delays of `RETRY_DELAYS_MS`. Resolves null
 * when `alive()` turns false meanwhile (the client was disposed); rejects with the last failure
 * when every attempt failed.
 */
export async function sendWithRetries(send: () => Promise<Response>, alive: () => boolean): Promise<Response | null> {
  let lastError: unknown = null;
  for (const delay of RETRY_DELAYS_MS) {
    if (delay) await sleep(delay);
    if (!alive()) return null;
    let res: Response;
    try {
      res = await send();
    } catch (err) {
      lastError = err;
      continue;
    }
    if (unavailable(res)) {
      lastError = new SessiondError(res.status, `http_${res.status}`, "sessiond is unavailable");
      continue;
    }
    return res;
  }
  throw lastError;
}
