// Where the client keeps what must outlive an access token: the refresh token (bearer mode, in
// a storage adapter the app chooses) and, in cookie mode, a flag saying that a session exists
// (the refresh token itself is in sessiond's HttpOnly cookie, out of reach of script).

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
    // Looked up on each call, not captured: storage can appear or be replaced after start-up.
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

/**
 * Cookie mode, in browsers: a localStorage flag (no secret) saying this origin holds a session,
 * so that a signed-out page load sends no refresh request (which the console would show as a
 * failed request). `on` sets or clears it; without `on`, whether it is set (undefined where
 * there is no localStorage to ask).
 */
export const HINT = "sessiond_session";
export function hint(on?: boolean): boolean | undefined {
  try {
    // Only in a page: the flag exists to spare page loads a request, and a Node process has
    // no page loads (nor, before Node 22, a localStorage).
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
