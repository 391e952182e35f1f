/**
 * sessiond's public signing keys (`GET /.well-known/jwks.json`) for local verification, kept no
 * longer than sessiond's own `Cache-Control: max-age` says, and without the keys the event feed
 * reported retired (`key.retired`).
 */
import { createLocalJWKSet, errors } from "jose";
import type { JSONWebKeySet, JWTVerifyGetKey } from "jose";

/** Cache lifetime when the answer has no `max-age` (e.g. a proxy dropped the header). */
const DEFAULT_MAX_AGE_SECS = 60;
/** An unknown `kid` refetches the set at most this often (a new key after a rotation). */
const UNKNOWN_KID_COOLDOWN_MS = 2_000;

/** The JWKS answer could not be had: the caller answers 503, not 401. */
export class JwksUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "JwksUnavailableError";
  }
}

/** Seconds an answer may be used, from `Cache-Control` (and `Age`, when a cache served it). */
export function freshnessSecs(cacheControl: string | null, age: string | null): number {
  const directives = (cacheControl ?? "").toLowerCase();
  if (/(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$|=)/.test(directives)) return 0;
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/.exec(directives);
  const maxAge = match ? Number(match[1]) : DEFAULT_MAX_AGE_SECS;
  const served = Number(age);
  return Math.max(0, maxAge - (Number.isFinite(served) && served > 0 ? served : 0));
}

export class JwksCache {
  readonly url: string;
  #fetch: typeof fetch;
  #timeoutMs: number;
  #keys: JSONWebKeySet | null = null;
  #local: ReturnType<typeof createLocalJWKSet> | null = null;
  /** When the cached set stops being usable (ms). */
  #expiresAt = 0;
  #fetchedAt = 0;
  #loading: Promise<void> | null = null;
  /** kid -> when the feed said it was retired (ms). */
  #retired = new Map<string, number>();

  constructor(url: string, fetchImpl: typeof fetch, timeoutMs: number) {
    this.url = url;
    this.#fetch = fetchImpl;
    this.#timeoutMs = timeoutMs;
  }

  /** The key resolver for `jwtVerify`. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const kid = header.kid;
    if (kid !== undefined && this.#retired.has(kid)) {
      throw new errors.JWKSNoMatchingKey(`the signing key ${kid} was retired`);
    }
    if (!this.#local || Date.now() >= this.#expiresAt) await this.#reload();
    try {
      return await this.#local!(header, token);
    } catch (err) {
      // A key published since the last fetch (a rotation): fetch again, not too often.
      if (err instanceof errors.JWKSNoMatchingKey && Date.now() - this.#fetchedAt >= UNKNOWN_KID_COOLDOWN_MS) {
        await this.#reload();
        return await this.#local!(header, token);
      }
      throw err;
    }
  };

  /** Until when (ms since the epoch) the cached set is used; 0 before the first fetch. */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** The kids of the cached set. */
  get kids(): string[] {
    return (this.#keys?.keys ?? []).map((k) => k.kid).filter((k): k is string => typeof k === "string");
  }

  /**
   * `key.retired`: the key verifies nothing from now on, whatever a cached JWKS says. The set is
   * fetched again before the next verification, for the active key that replaced it.
   */
  retire(kid: string) {
    this.#retired.set(kid, Date.now());
    if (this.#keys?.keys.some((k) => k.kid === kid)) this.#use(this.#keys);
    this.#expiresAt = 0;
  }

  /** Fetch the set again before the next verification (after a feed `reset`). */
  invalidate() {
    this.#expiresAt = 0;
  }

  /** Forgets retirements older than `before` (ms): the tokens those keys signed have expired. */
  prune(before: number) {
    for (const [kid, at] of this.#retired) if (at < before) this.#retired.delete(kid);
  }

  #use(set: JSONWebKeySet) {
    const keys = set.keys.filter((k) => !(typeof k.kid === "string" && this.#retired.has(k.kid)));
    this.#keys = { keys };
    this.#local = createLocalJWKSet(this.#keys);
  }

  #reload(): Promise<void> {
    this.#loading ??= this.#load().finally(() => {
      this.#loading = null;
    });
    return this.#loading;
  }

  async #load() {
    let res: Response;
    try {
      res = await this.#fetch(this.url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      throw new JwksUnavailableError("sessiond's JWKS did not answer", { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new JwksUnavailableError(`sessiond's JWKS answered ${res.status}`);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      throw new JwksUnavailableError("sessiond's JWKS is not JSON", { cause: err });
    }
    const keys = (body as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw new JwksUnavailableError("sessiond's JWKS has no keys array");
    const now = Date.now();
    this.#use({ keys } as JSONWebKeySet);
    this.#fetchedAt = now;
    this.#expiresAt = now + freshnessSecs(res.headers.get("cache-control"), res.headers.get("age")) * 1000;
  }
}
