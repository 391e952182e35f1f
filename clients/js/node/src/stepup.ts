/**
 * Step-up (RFC 9470): what requireSession() and socketAuth() ask of a session's authentication
 * beyond a valid token (`maxAge`: authenticated recently; `acr`: strongly enough), and the
 * challenge they answer with when it falls short, which tells the client what to redo
 * (`reauthenticate()` in @sessiond/client).
 */
import type { SessionAuth } from "./sessiond.js";

/** The step-up options of requireSession() and socketAuth(). */
export interface StepUpOptions {
  /**
   * Refuse sessions whose last authentication (`auth_time`) is more than this many seconds ago,
   * with 401 `insufficient_user_authentication` and `max_age` in the challenge. A session whose
   * token carries no `auth_time` is refused too.
   */
  maxAge?: number;
  /**
   * Refuse sessions whose authentication is weaker than this level: `"1"` one factor, `"2"` two
   * factors or a user-verified passkey (the token's `acr`). A token without `acr` is refused.
   */
  acr?: "1" | "2" | (string & {});
}

/** Why a session falls short, in the words of the contract and of RFC 9470. */
export interface StepUpRefusal {
  error: "insufficient_user_authentication";
  error_description: string;
  /** The `maxAge` asked for (the challenge's `max_age`), when one is. */
  max_age?: number;
  /** The `acr` asked for (the challenge's `acr_values`), when one is. */
  acr_values?: string;
}

/** The options, checked once at setup (a typo must not leave a route unguarded). */
export function stepUpOptions(options: StepUpOptions): StepUpOptions {
  const { maxAge, acr } = options;
  if (maxAge !== undefined && !(typeof maxAge === "number" && Number.isFinite(maxAge) && maxAge >= 0)) {
    throw new TypeError(`@sessiond/node: maxAge must be a number of seconds >= 0, not ${String(maxAge)}`);
  }
  if (acr !== undefined && !(typeof acr === "string" && /^[1-9][0-9]*$/.test(acr))) {
    throw new TypeError(`@sessiond/node: acr must be a level such as "2", not ${String(acr)}`);
  }
  return {
    ...(maxAge !== undefined && { maxAge: Math.floor(maxAge) }),
    ...(acr !== undefined && { acr }),
  };
}

/**
 * Null when `auth` meets `required` at `now` (seconds since the epoch); else the refusal. The
 * refusal names everything that is required (both `max_age` and `acr_values` when both are
 * asked for), so that one re-authentication satisfies it.
 */
export function stepUpRefusal(
  auth: SessionAuth,
  required: StepUpOptions,
  now = Math.floor(Date.now() / 1000),
): StepUpRefusal | null {
  const { maxAge, acr } = required;
  const weak = acr !== undefined && !(typeof auth.acr === "string" && Number(auth.acr) >= Number(acr));
  const stale = maxAge !== undefined && !(typeof auth.auth_time === "number" && now - auth.auth_time <= maxAge);
  if (!weak && !stale) return null;
  return {
    error: "insufficient_user_authentication",
    error_description: weak
      ? `a stronger authentication is required (acr ${acr})`
      : `an authentication within the last ${maxAge} seconds is required`,
    ...(maxAge !== undefined && { max_age: maxAge }),
    ...(acr !== undefined && { acr_values: acr }),
  };
}

/** `WWW-Authenticate` for a refusal (RFC 6750 with RFC 9470's `max_age` and `acr_values`). */
export function stepUpChallenge(realm: string, refusal: StepUpRefusal): string {
  const quoted = (s: string) => s.replace(/["\\]/g, "");
  let challenge =
    `Bearer realm="${quoted(realm)}", error="${refusal.error}", error_description="${quoted(refusal.error_description)}"`;
  if (refusal.max_age !== undefined) challenge += `, max_age=${refusal.max_age}`;
  if (refusal.acr_values !== undefined) challenge += `, acr_values="${quoted(refusal.acr_values)}"`;
  return challenge;
}
