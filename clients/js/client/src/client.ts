// The client: one signed-in session (or none) per tab, kept current by refreshes and by what
// the other tabs say. The pieces it is made of each have their own module: the HTTP contract
// (http.ts), the refresh timing and retries (refresh.ts), the messages between tabs (tabs.ts) and
// where the refresh token or the session flag is kept (storage.ts). What the client itself owns
// is the state: which session is current, and which answer may still change it (the epoch).

import {
  SESSION_OVER, SessiondError, errorCode, isStepUp, postJson, readJson, unavailable, type TokenResponse,
} from "./http.js";
import {
  MIN_REMAINING_MS, RefreshTimer, UNREACHABLE_RETRY_MS, outdated, refreshDelay, sendWithRetries, sessionState, unref,
} from "./refresh.js";
import { hint, memoryStorage, type RefreshTokenStorage } from "./storage.js";
import { TabChannel, channelName, type Message } from "./tabs.js";
import type {
  BindableSocket, ChangeEvent, ChangeListener, CompleteFromUrlOptions, CompletedLink, DeviceSession, EmailLinkType,
  MfaProof, Passkey, PasskeySignInOptions, ReauthProof, RegisterPasskeyOptions, SessionState, TotpEnrollment, User,
} from "./types.js";
import { Ceremonies, createCredential, credentialsContainer, getCredential, passkeyAutofillSupported } from "./webauthn.js";

export interface ClientOptions {
  /** sessiond's base URL, e.g. `https://auth.example.com`. */
  url: string;
  /** `cookie` (default): the refresh token only in the HttpOnly cookie. `bearer`: in `storage`. */
  mode?: "cookie" | "bearer";
  /** Bearer mode: where the refresh token is kept (default: memory, lost on reload). */
  storage?: RefreshTokenStorage;
  /**
   * BroadcastChannel name shared by the tabs of this app, or `false` for none. Default:
   * `sessiond:<url>` in cookie mode and with a `shared` storage, none otherwise.
   */
  channel?: string | false;
  /**
   * Restore the session at start (cookie: one refresh, unless `sessionHint` says there is no
   * session; bearer: when storage holds a token). Default true.
   */
  restore?: boolean;
  /**
   * Cookie mode in browsers: keep a flag (`sessiond_session`, no secret) in localStorage while
   * signed in, and skip the start-up refresh when it is absent (default true). Set false when
   * this page can find a session it did not start (several origins sharing sessiond's cookie).
   */
  sessionHint?: boolean;
  /** Refresh this many seconds before expiry at most (default 60; never more than a quarter of the lifetime). */
  refreshLeadSecs?: number;
  /** Custom fetch (tests, instrumentation). Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
}


const MODE_MISMATCH =
  "@sessiond/client: cookie mode, but sessiond sent the refresh token in the response body: its cookie mode is off, " +
  "so this session ends at its first refresh and is not restored on reload. Turn cookie mode on in sessiond " +
  '([cookies] enabled = true) or use createClient({ mode: "bearer" }).';

/** The start of a WebAuthn ceremony: its id, and the options for the browser (JSON form). */
interface Challenge {
  challenge_id: string;
  options: unknown;
}

/** The link types of sessiond's mails that `completeFromUrl()` completes. */
const LINK_TYPES: ReadonlySet<string> = new Set<EmailLinkType>(["verify_email", "reset_password", "sign_in", "change_email"]);


export class SessiondClient {
  readonly url: string;
  readonly mode: "cookie" | "bearer";
  /** Settles once the start-up restore has finished (signed in or not). */
  readonly ready: Promise<void>;

  #fetch: typeof fetch;
  #storage: RefreshTokenStorage;
  #leadSecs: number;
  #state: SessionState | null = null;
  #listeners = new Set<ChangeListener>();
  #waiters: Array<(state: SessionState) => void> = [];
  #refreshing: Promise<SessionState | null> | null = null;
  #timer = new RefreshTimer();
  #channel: TabChannel;
  #disposed = false;
  /** Whether the last attempt to learn the session failed for lack of an answer (offline…). */
  #unsure = false;
  /** Bumped by every sign-in and sign-out, so a refresh that started before one is discarded. */
  #epoch = 0;
  /** Set once the start-up restore is over: from then on listeners get events. */
  #started = false;
  /** Why the last attempt to learn the session failed (`restore_failed`'s reason). */
  #failure = "";
  /** While following another tab's sign-in: the events it causes are `remote`. */
  #following = false;
  #warned = false;
  #hint: boolean;
  /** The WebAuthn ceremony in progress (one at a time: a new one aborts it). */
  #ceremonies = new Ceremonies();
  /** The session whose guest just registered a passkey: its next token response is a sign-in. */
  #promoting: string | null = null;

  constructor(options: ClientOptions) {
    if (!options?.url) throw new TypeError("@sessiond/client: options.url is required");
    this.url = options.url.replace(/\/+$/, "");
    this.mode = options.mode ?? "cookie";
    if (this.mode !== "cookie" && this.mode !== "bearer") {
      throw new TypeError(`@sessiond/client: unknown mode ${String(options.mode)}`);
    }
    this.#storage = options.storage ?? memoryStorage();
    this.#leadSecs = options.refreshLeadSecs ?? 60;
    this.#hint = this.mode === "cookie" && options.sessionHint !== false;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("@sessiond/client: no fetch available");
    this.#fetch = (input, init) => f(input, init);

    const shared = this.mode === "cookie" || this.#storage.shared === true;
    this.#channel = new TabChannel(channelName(options.channel, this.url, shared), (m) => this.#onMessage(m));

    if (this.mode === "bearer") {
      // A revocation that a previous page could not deliver.
      Promise.resolve(this.#storage.pendingRevocation?.get())
        .then((token) => {
          if (token) void this.#revoke(token, 0);
        })
        .catch(() => {});
    }
    this.ready = (options.restore === false ? Promise.resolve() : this.#restore()).then(() => {
      this.#started = true;
      this.#emit(this.#initial());
    });
  }

  /** The signed-in user, or null. */
  get user(): User | null {
    return this.#state?.user ?? null;
  }

  /** The current session id, or null. */
  get sessionId(): string | null {
    return this.#state?.sessionId ?? null;
  }

  get signedIn(): boolean {
    return this.#state !== null;
  }

  /**
   * A copy of the session as the client holds it now, or null when signed out. The access token
   * may be close to expiry: for requests, use `getAccessToken()` or `fetch()`.
   */
  getSession(): SessionState | null {
    const s = this.#state;
    return s && { ...s, user: { ...s.user }, ...(s.amr && { amr: [...s.amr] }) };
  }

  /**
   * Calls `listener` first with `initial_session` (or `restore_failed`) once the start-up restore
   * is over, then on every sign-in, refresh and sign-out (also those of other tabs).
   */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    if (this.#started) {
      queueMicrotask(() => this.#listeners.has(listener) && this.#emit(this.#initial(), [listener]));
    }
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the session once the client is signed in (at once if it already is). */
  whenSignedIn(): Promise<SessionState> {
    if (this.#state) return Promise.resolve({ ...this.#state });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  // ---- signing in ---------------------------------------------------------------------------

  signUp(email: string, password: string): Promise<User> {
    return this.#signIn("/v1/signup", { email, password });
  }

  /**
   * Signs in with email and password. When the account has a second factor, rejects with an
   * `MfaRequiredError` (`code` `mfa_required`) carrying `mfaToken` and `methods`: ask for a
   * code, then `completeMfa({ mfaToken, code })`.
   */
  signIn(email: string, password: string): Promise<User> {
    return this.#signIn("/v1/login", { email, password });
  }

  /** @deprecated Renamed {@link SessiondClient.signIn}. */
  logIn(email: string, password: string): Promise<User> {
    return this.signIn(email, password);
  }

  guest(): Promise<User> {
    return this.#signIn("/v1/guest", {});
  }

  /** Exchanges a third-party JWT (Supabase, Firebase, Auth0, Clerk…) for a sessiond session. */
  bridge(provider: string, token: string): Promise<User> {
    return this.#signIn("/v1/bridge", { provider, token });
  }

  /**
   * Makes the signed-in guest a permanent user (same user id, same session). The upgrade spends
   * the guest's refresh token: in bearer mode the stored one is sent along (in cookie mode the
   * cookie is), so a tab that refreshes with it a moment later gets the upgrade's new token
   * from sessiond's grace window instead of being refused.
   */
  async upgrade(email: string, password: string): Promise<User> {
    this.#assertLive();
    const send = async () => {
      // The access token first: getting it may rotate the refresh token read next.
      const accessToken = await this.getAccessToken();
      const refreshToken = this.mode === "bearer" ? await this.#storage.get() : null;
      // A refresh already in flight (or started meanwhile) must not put the guest state back.
      this.#epoch++;
      const res = await postJson(
        this.#fetch,
        `${this.url}/v1/upgrade`,
        refreshToken ? { email, password, refresh_token: refreshToken } : { email, password },
        this.#credentials(),
        accessToken,
      );
      return { res, accessToken };
    };
    let { res, accessToken } = await send();
    if (res.status === 401 && accessToken && (await errorCode(res)) === "invalid_token") {
      // The access token went stale on the way: one refresh (if still needed) and one retry.
      if (this.#state?.accessToken === accessToken) await this.refresh().catch(() => null);
      if (this.#state) ({ res } = await send());
    }
    const body = (await readJson(res)) as TokenResponse;
    await this.#accept(body, "signed_in", null);
    return body.user;
  }

  async #signIn(path: string, body: object): Promise<User> {
    this.#assertLive();
    const epoch = ++this.#epoch;
    const res = await postJson(this.#fetch, `${this.url}${path}`, body, this.#credentials());
    const tokens = (await readJson(res)) as TokenResponse;
    // The newest sign-in wins; a refresh started before it can no longer overwrite it.
    this.#epoch = Math.max(this.#epoch, epoch);
    await this.#accept(tokens, "signed_in", null);
    return tokens.user;
  }

  // ---- mailed links and codes, fresh authentication ------------------------------------------

  /**
   * Mails a password reset link to `email`. sessiond answers the same whether or not an account
   * has that email (so nobody learns which addresses have one): resolving means only "accepted".
   */
  async requestPasswordReset(email: string): Promise<void> {
    this.#assertLive();
    await readJson(await postJson(this.#fetch, `${this.url}/v1/password/forgot`, { email }, this.#credentials()));
  }

  /**
   * Sets a new password with the token of a reset link and signs in (a new session, stored and
   * announced to the other tabs as any sign-in). `invalid_grant` when the token is unknown,
   * spent or expired.
   */
  resetPassword(token: string, newPassword: string): Promise<User> {
    return this.#signIn("/v1/password/reset", { token, new_password: newPassword });
  }

  /** Mails the signed-in (non-guest) user a link that verifies their email. */
  async sendVerification(): Promise<void> {
    this.#assertLive();
    const url = `${this.url}/v1/email/verify/send`;
    await readJson(await this.#authorized((accessToken) => this.#fetch(url, { method: "POST", headers: bearer(accessToken) })));
  }

  /**
   * Verifies an email with the token of a verification link; resolves with the user. When this
   * client is signed in as that user, its `user` gets `email_verified: true` too.
   */
  async verifyEmail(token: string): Promise<User> {
    this.#assertLive();
    const res = await postJson(this.#fetch, `${this.url}/v1/email/verify`, { token }, this.#credentials());
    const { user } = (await readJson(res)) as { user: User };
    this.#updateUser(user);
    return user;
  }

  /**
   * Mails `email` a sign-in link and a 6-digit code (no password); finish with
   * `verifyEmailSignIn()`, or `completeFromUrl()` on the link's page.
   */
  async signInWithEmail(email: string): Promise<void> {
    this.#assertLive();
    await readJson(await postJson(this.#fetch, `${this.url}/v1/login/email`, { email }, this.#credentials()));
  }

  /**
   * Signs in with the token of a mailed sign-in link, or with the email and the mailed code.
   * Like `signIn()`, rejects with an `MfaRequiredError` when the account has a second factor.
   */
  verifyEmailSignIn(proof: { token: string } | { email: string; code: string }): Promise<User> {
    const body = "token" in proof ? { token: proof.token } : { email: proof.email, code: proof.code };
    return this.#signIn("/v1/login/email/verify", body);
  }

  /**
   * Mails `newEmail` a link that makes it the signed-in user's email (`confirmEmailChange()`).
   * Needs a fresh authentication: `insufficient_user_authentication` (401) asks for
   * `reauthenticate()` first.
   */
  async changeEmail(newEmail: string): Promise<void> {
    this.#assertLive();
    const url = `${this.url}/v1/email/change`;
    await readJson(await this.#authorized((accessToken) =>
      postJson(this.#fetch, url, { new_email: newEmail }, this.#credentials(), accessToken)));
  }

  /**
   * Confirms an email change with the token of the link mailed to the new address; resolves with
   * the user. When this client is signed in as that user, its `user` gets the new email too.
   */
  async confirmEmailChange(token: string): Promise<User> {
    this.#assertLive();
    const res = await postJson(this.#fetch, `${this.url}/v1/email/change/confirm`, { token }, this.#credentials());
    const { user } = (await readJson(res)) as { user: User };
    this.#updateUser(user);
    return user;
  }

  /**
   * Deletes the signed-in user and all their sessions, then signs out here and in the other tabs
   * as `signOut()` does (`signed_out`, reason `account_deleted`). Needs a fresh authentication:
   * `insufficient_user_authentication` (401) asks for `reauthenticate()` first.
   */
  async deleteAccount(): Promise<void> {
    this.#assertLive();
    const url = `${this.url}/v1/me`;
    const res = await this.#authorized((accessToken) => this.#fetch(url, { method: "DELETE", headers: bearer(accessToken) }));
    const sessionId = this.#state?.sessionId ?? null;
    await readJson(res);
    await this.#signedOut("account_deleted", true, sessionId);
  }

  /**
   * Authenticates again in the current session, for what needs a fresh authentication
   * (`changeEmail()`, `deleteAccount()`, `enrollTotp()`, `disableTotp()`, `deletePasskey()`,
   * an app's routes behind `requireSession({ maxAge })`): with the password, a TOTP `code`, a
   * `recoveryCode`, or `{ passkey: true }` (the browser asks for one of the user's passkeys). The
   * answer is the same session with a new `authTime` (and `acr`) and a rotated refresh token,
   * kept as a refresh's: the refresh token goes along as refresh sends it (the cookie, or in
   * bearer mode the stored token).
   */
  async reauthenticate(proof: ReauthProof): Promise<User> {
    this.#assertLive();
    const passkey = "passkey" in proof && proof.passkey === true;
    // No WebAuthn here: a NotSupportedError before any request.
    if (passkey) credentialsContainer();
    const ceremony = passkey ? this.#ceremonies.begin(proof.signal) : null;
    try {
      const fields = ceremony ? await this.#passkeyAssertion(ceremony.signal) : reauthFields(proof);
      return await this.#reauth(fields);
    } finally {
      ceremony?.end();
    }
  }

  async #reauth(fields: object): Promise<User> {
    const url = `${this.url}/v1/reauth`;
    let presented: string | null = null;
    let epoch = this.#epoch;
    const res = await this.#authorized(async (accessToken) => {
      // Read after the access token, whose refresh may have rotated it.
      presented = this.mode === "bearer" ? await this.#storage.get() : null;
      // A refresh in flight with the token this spends must not overwrite the answer.
      epoch = ++this.#epoch;
      const body = presented ? { ...fields, refresh_token: presented } : fields;
      return postJson(this.#fetch, url, body, this.#credentials(), accessToken);
    });
    const body = (await readJson(res)) as TokenResponse;
    await this.#accept(body, "refreshed", presented, epoch);
    return body.user;
  }

  // ---- second factors and passkeys -----------------------------------------------------------

  /**
   * Finishes a sign-in that rejected with `MfaRequiredError`: its `mfaToken` with a TOTP `code`
   * or a `recoveryCode`. Signs in as `signIn()` does. A wrong code is `invalid_grant` (the token
   * allows 5, within 5 minutes).
   */
  completeMfa(proof: MfaProof): Promise<User> {
    const body = "code" in proof
      ? { mfa_token: proof.mfaToken, code: proof.code }
      : { mfa_token: proof.mfaToken, recovery_code: proof.recoveryCode };
    return this.#signIn("/v1/login/mfa", body);
  }

  /**
   * Starts enrolling a TOTP authenticator app: `{ secret, otpauth_uri }` to show (a QR code of
   * the URI). Nothing changes until `confirmTotp(code)` with a first code from the app. Needs a
   * fresh authentication (`StepUpRequiredError` otherwise); not for guests.
   */
  async enrollTotp(): Promise<TotpEnrollment> {
    this.#assertLive();
    const url = `${this.url}/v1/mfa/totp`;
    const res = await this.#authorized((accessToken) => this.#fetch(url, { method: "POST", headers: bearer(accessToken) }));
    const { secret, otpauth_uri } = (await readJson(res)) as TotpEnrollment;
    return { secret, otpauth_uri };
  }

  /**
   * Confirms the enrollment with a code from the authenticator app; resolves with the 10
   * recovery codes, which sessiond shows this once: have the user keep them.
   */
  async confirmTotp(code: string): Promise<string[]> {
    this.#assertLive();
    const url = `${this.url}/v1/mfa/totp/confirm`;
    const res = await this.#authorized((accessToken) =>
      postJson(this.#fetch, url, { code }, this.#credentials(), accessToken));
    return ((await readJson(res)) as { recovery_codes: string[] }).recovery_codes;
  }

  /** Removes the TOTP authenticator and its recovery codes. Needs a fresh authentication. */
  async disableTotp(): Promise<void> {
    this.#assertLive();
    const url = `${this.url}/v1/mfa/totp`;
    await readJson(await this.#authorized((accessToken) => this.#fetch(url, { method: "DELETE", headers: bearer(accessToken) })));
  }

  /**
   * Creates a passkey for the signed-in user (the browser's dialog) and registers it with
   * sessiond; resolves with it. Needs a fresh authentication, except for a guest: a guest
   * becomes a permanent user by it (same user and session; listeners and the other tabs get
   * `signed_in` with the new user, as for `upgrade()`). Rejects with the browser's
   * `NotAllowedError` when the user cancels, `InvalidStateError` when the authenticator
   * already holds a passkey of this user, and a `NotSupportedError` (before any request) where
   * the page has no WebAuthn.
   */
  async registerPasskey({ name, signal }: RegisterPasskeyOptions = {}): Promise<Passkey> {
    this.#assertLive();
    credentialsContainer();
    const ceremony = this.#ceremonies.begin(signal);
    try {
      ceremony.signal.throwIfAborted();
      const start = `${this.url}/v1/passkeys/register/start`;
      const res = await this.#authorized((accessToken) =>
        postJson(this.#fetch, start, name === undefined ? {} : { name }, this.#credentials(), accessToken));
      const { challenge_id, options } = (await readJson(res)) as Challenge;
      const credential = await createCredential(options, ceremony.signal);
      const finish = `${this.url}/v1/passkeys/register/finish`;
      const done = await this.#authorized((accessToken) =>
        postJson(this.#fetch, finish, { challenge_id, credential }, this.#credentials(), accessToken));
      const passkey = (await readJson(done)) as Passkey;
      if (this.#state?.user.is_guest) await this.#promoted(this.#state.sessionId);
      return passkey;
    } finally {
      ceremony.end();
    }
  }

  /**
   * Signs in with a passkey (discoverable: no email asked). By default the browser shows its
   * dialog (call it from a click). With `conditional: true` the user's passkeys are offered in
   * the autofill of an `<input autocomplete="username webauthn">` instead: call it when the
   * sign-in page loads; it settles when the user picks one (rejects with a NotSupportedError,
   * before any request, where the browser has no passkey autofill). A later passkey request
   * of this client aborts a pending one (it rejects with an AbortError), as does `signal`.
   */
  async signInWithPasskey({ conditional = false, signal }: PasskeySignInOptions = {}): Promise<User> {
    this.#assertLive();
    credentialsContainer();
    if (conditional && !(await passkeyAutofillSupported())) {
      throw new DOMException("this browser offers no passkey autofill", "NotSupportedError");
    }
    const ceremony = this.#ceremonies.begin(signal);
    try {
      const { challenge_id, options } = await this.#passkeyChallenge(ceremony.signal);
      const credential = await getCredential(options, {
        signal: ceremony.signal,
        ...(conditional && { mediation: "conditional" as const }),
      });
      return await this.#signIn("/v1/login/passkey/finish", { challenge_id, credential });
    } finally {
      ceremony.end();
    }
  }

  /** The signed-in user's passkeys. */
  async listPasskeys(): Promise<Passkey[]> {
    const res = await this.fetch(`${this.url}/v1/passkeys`);
    return ((await readJson(res)) as { passkeys: Passkey[] }).passkeys;
  }

  /**
   * Deletes one of the user's passkeys. Needs a fresh authentication; `last_credential` (409)
   * when it is the only way left to sign in, `not_found` (404) when it is not the user's.
   */
  async deletePasskey(id: string): Promise<void> {
    this.#assertLive();
    const url = `${this.url}/v1/passkeys/${encodeURIComponent(id)}`;
    await readJson(await this.#authorized((accessToken) => this.#fetch(url, { method: "DELETE", headers: bearer(accessToken) })));
  }

  /** A sign-in challenge (`POST /v1/login/passkey/start`), unless `signal` was aborted meanwhile. */
  async #passkeyChallenge(signal: AbortSignal): Promise<Challenge> {
    signal.throwIfAborted();
    const res = await postJson(this.#fetch, `${this.url}/v1/login/passkey/start`, {}, this.#credentials());
    const challenge = (await readJson(res)) as Challenge;
    signal.throwIfAborted();
    return challenge;
  }

  /** The fields of a passkey reauthentication: a sign-in challenge and the browser's assertion. */
  async #passkeyAssertion(signal: AbortSignal): Promise<object> {
    const { challenge_id, options } = await this.#passkeyChallenge(signal);
    return { challenge_id, credential: await getCredential(options, { signal }) };
  }

  /**
   * The guest of `sessionId` registered a passkey and is now permanent: refresh for a token that
   * says so, announced as a sign-in (as `upgrade()` is). A refresh already in flight may still
   * carry the guest: then once more.
   */
  async #promoted(sessionId: string) {
    this.#promoting = sessionId;
    try {
      for (let i = 0; i < 2 && this.#state?.sessionId === sessionId && this.#state.user.is_guest; i++) {
        if (!(await this.refresh())) break;
      }
    } catch {
      // unreachable: the passkey is registered all the same; the next refresh brings the user
    } finally {
      this.#promoting = null;
    }
  }

  /**
   * Completes the link of one of sessiond's mails on the page it opens
   * (`?type=<type>&token=<token>` in `url`, default `location.href`): `verify_email`
   * (`verifyEmail`), `sign_in` (`verifyEmailSignIn`), `change_email` (`confirmEmailChange`),
   * `reset_password` (`resetPassword` with `options.newPassword`; without it, only returns the
   * `token`, for the page to ask for a new password). When `url` is the page's, `type` and `token`
   * are first removed from the address bar (`history.replaceState`), so that neither a reload nor
   * a shared URL carries the token. Resolves null when the URL holds no such link.
   */
  async completeFromUrl(url?: string | URL, options: CompleteFromUrlOptions = {}): Promise<CompletedLink | null> {
    this.#assertLive();
    const page = (globalThis as { location?: { href?: string } }).location?.href;
    const href = url === undefined ? page : String(url);
    if (!href) return null;
    const link = new URL(href, page);
    const type = link.searchParams.get("type");
    const token = link.searchParams.get("token");
    if (!type || !token || !LINK_TYPES.has(type)) return null;
    if (href === page) forgetLink(link);
    switch (type as EmailLinkType) {
      case "verify_email":
        return { type: "verify_email", user: await this.verifyEmail(token) };
      case "change_email":
        return { type: "change_email", user: await this.confirmEmailChange(token) };
      case "sign_in": {
        const user = await this.verifyEmailSignIn({ token });
        return { type: "sign_in", user, ...this.#sessionOf(user) };
      }
      case "reset_password": {
        if (options.newPassword === undefined) return { type: "reset_password", token };
        const user = await this.resetPassword(token, options.newPassword);
        return { type: "reset_password", user, ...this.#sessionOf(user) };
      }
    }
  }

  // ---- tokens -------------------------------------------------------------------------------

  /**
   * A valid access token, refreshed first when it is about to expire; null when signed out.
   * Waits for the start-up restore.
   */
  async getAccessToken(): Promise<string | null> {
    await this.ready;
    const state = this.#state;
    if (state && state.expiresAt - Date.now() > MIN_REMAINING_MS) return state.accessToken;
    if (!state && this.mode === "bearer" && !(await this.#storage.get())) return null;
    // Signed out as far as sessiond told us: no request. After a failure to reach it: ask again.
    if (!state && this.mode === "cookie" && !this.#unsure) return null;
    return (await this.refresh())?.accessToken ?? null;
  }

  /**
   * Refreshes now (joining the refresh already in flight in this tab, if any). Resolves with the
   * new state, or null when the session is over (then the client is signed out). Network and
   * server failures reject and leave the current state alone.
   */
  refresh(): Promise<SessionState | null> {
    this.#assertLive();
    if (!this.#refreshing) {
      this.#refreshing = this.#doRefresh().finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  /**
   * `fetch` with `Authorization: Bearer <access token>`. After a 401 it refreshes once and
   * retries once (so the request body must be replayable: a string, FormData, Blob, …).
   */
  async fetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const token = await this.getAccessToken();
    const send = (accessToken: string | null) => {
      const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
      if (accessToken) headers.set("authorization", `Bearer ${accessToken}`);
      return this.#fetch(input instanceof Request ? input.clone() : input, { ...init, headers });
    };
    const res = await send(token);
    // Signed out meanwhile (by another tab, say): nothing to refresh.
    if (res.status !== 401 || !token || !this.#state) return res;
    // A step-up challenge (RFC 9470): the token is fine, the authentication too old or weak.
    if (await isStepUp(res)) return res;
    let fresh: SessionState | null;
    try {
      // The token may have been refreshed by someone else meanwhile; else refresh now.
      fresh = this.#state && this.#state.accessToken !== token ? this.#state : await this.refresh();
    } catch {
      return res;
    }
    if (!fresh) return res;
    return send(fresh.accessToken);
  }

  /** A one-time WebSocket ticket (valid 30 s) for a Socket.IO / WebSocket handshake. */
  async wsTicket(): Promise<string> {
    const res = await this.fetch(`${this.url}/v1/ws-tickets`, { method: "POST" });
    const { ticket } = (await readJson(res)) as { ticket: string };
    return ticket;
  }

  /**
   * A Socket.IO `auth` callback: each connection attempt (reconnections too) gets a new ticket,
   * `{ ticket }`, or `{}` when there is none to get (signed out), which the server refuses.
   * `io(url, { auth: client.socketAuth() })`.
   */
  socketAuth(): (cb: (auth: { ticket?: string }) => void) => void {
    return (cb) => {
      this.wsTicket().then((ticket) => cb({ ticket }), () => cb({}));
    };
  }

  /**
   * Disconnects `socket` when the session ends (here or in another tab) and reconnects it (for
   * a new ticket) when another session replaces it. Returns a function that unbinds.
   */
  bindSocket(socket: BindableSocket): () => void {
    let sessionId = this.sessionId;
    return this.onChange(({ type, sessionId: next }) => {
      if (type === "signed_out") socket.disconnect();
      else if (type === "signed_in" && sessionId && next !== sessionId) {
        socket.disconnect();
        socket.connect?.();
      }
      sessionId = type === "signed_out" ? null : next;
    });
  }

  /** The signed-in user's live sessions (devices). */
  async sessions(): Promise<DeviceSession[]> {
    const res = await this.fetch(`${this.url}/v1/sessions`);
    return ((await readJson(res)) as { sessions: DeviceSession[] }).sessions;
  }

  /** Ends one of the user's sessions; ending the current one signs this client out. */
  async revokeSession(id: string): Promise<void> {
    const res = await this.fetch(`${this.url}/v1/sessions/${encodeURIComponent(id)}`, {
      method: "DELETE",
    });
    await readJson(res);
    if (id === this.#state?.sessionId) await this.#signedOut("revoked", true);
  }

  /**
   * Signs out: `local` (this session, the default), `others` (every other session of the user,
   * this one stays signed in) or `global` (all of them). In bearer mode, when the access token
   * is unusable or sessiond cannot be reached, this session is revoked with its refresh token
   * (RFC 7009 `POST /v1/revoke`), retried in the background while sessiond is unreachable; this
   * tab is signed out at once either way.
   */
  async signOut(scope: "local" | "others" | "global" = "local"): Promise<void> {
    this.#assertLive();
    const request = (accessToken: string | null) =>
      postJson(this.#fetch, `${this.url}/v1/logout`, { scope }, this.#credentials(), accessToken);
    let token: string | null = null;
    try {
      token = await this.getAccessToken();
    } catch {
      // sessiond unreachable for a refresh: try the logout anyway (cookie mode needs no token).
    }
    const sessionId = this.#state?.sessionId ?? null;
    // Read after the refresh above, which may have rotated it.
    const refreshToken = this.mode === "bearer" ? await this.#storage.get() : null;
    let res: Response | null = null;
    let failure: unknown = null;
    if (token || this.mode === "cookie") {
      try {
        res = await request(token);
        // Cookie mode: the cookie alone also names the session.
        if (res.status === 401 && token && this.mode === "cookie") res = await request(null);
      } catch (err) {
        failure = err;
      }
    }
    // Bearer mode without a logout: the refresh token still names the session.
    const revoke = !!refreshToken && !res?.ok && scope !== "others";
    if (revoke) await this.#revoke(refreshToken, 0);
    else if (failure) throw failure;
    // A 401: nothing left to log out of.
    else if (res && !res.ok && res.status !== 401) await readJson(res);
    if (scope !== "others") await this.#signedOut("logout", true, sessionId);
  }

  /** @deprecated Renamed {@link SessiondClient.signOut}. */
  logOut(scope: "local" | "others" | "global" = "local"): Promise<void> {
    return this.signOut(scope);
  }

  /** Stops timers, closes the BroadcastChannel and drops listeners. The client is unusable after. */
  dispose(): void {
    this.#disposed = true;
    this.#ceremonies.abort("the client was disposed");
    this.#timer.clear();
    this.#channel.close();
    this.#listeners.clear();
    this.#waiters = [];
  }

  // ---- internals ----------------------------------------------------------------------------

  #credentials(): RequestCredentials {
    return this.mode === "cookie" ? "include" : "omit";
  }

  #assertLive() {
    if (this.#disposed) throw new Error("@sessiond/client: this client was disposed");
  }

  /**
   * Sends a request that needs the access token (`request` adds it). After a 401
   * `invalid_token` (the token went stale on the way): one refresh, if still needed, and one
   * retry. Other refusals (`insufficient_user_authentication`…) are the answer: no refresh.
   */
  async #authorized(request: (accessToken: string | null) => Promise<Response>): Promise<Response> {
    const accessToken = await this.getAccessToken();
    const res = await request(accessToken);
    if (res.status !== 401 || !accessToken || (await errorCode(res)) !== "invalid_token") return res;
    if (this.#state?.accessToken === accessToken) await this.refresh().catch(() => null);
    const fresh = this.#state?.accessToken;
    return fresh ? request(fresh) : res;
  }

  /** The signed-in user as sessiond now describes it (a verified or changed email), if it is ours. */
  #updateUser(user: User) {
    const state = this.#state;
    if (state && user && state.user.id === user.id) this.#state = { ...state, user: { ...state.user, ...user } };
  }

  /** `{ session }` when the client holds `user`'s session (the one a link just started). */
  #sessionOf(user: User): { session?: SessionState } {
    const session = this.getSession();
    return session && session.user.id === user.id ? { session } : {};
  }

  async #restore(): Promise<void> {
    try {
      if (this.mode === "bearer" ? !(await this.#storage.get()) : this.#hint && hint() === false) return;
      await this.refresh();
    } catch (err) {
      // Offline or sessiond unreachable: stay signed out for now; getAccessToken() tries again.
      this.#failure = err instanceof SessiondError ? err.code : "network_error";
    }
  }

  /** The first event a listener gets: the state now, or that the restore failed. */
  #initial(): ChangeEvent {
    const s = this.#state;
    return s || !this.#failure
      ? { type: "initial_session", user: s?.user ?? null, sessionId: s?.sessionId ?? null, remote: false }
      : { type: "restore_failed", user: null, sessionId: null, remote: false, reason: this.#failure };
  }

  /**
   * RFC 7009: ends the session of `token` without an access token. Network failures, 5xx and 429
   * are retried after 1, 2, 4, … 32 s (in the background: the first attempt is awaited).
   */
  async #revoke(token: string, attempt: number): Promise<void> {
    const pending = this.#storage.pendingRevocation;
    try {
      const res = await postJson(this.#fetch, `${this.url}/v1/revoke`, { token, token_type_hint: "refresh_token" }, "omit");
      if (!unavailable(res)) {
        if (pending && (await pending.get()) === token) await pending.remove();
        return;
      }
    } catch {
      // unreachable: try again later
    }
    if (attempt < 6) unref(setTimeout(() => void this.#revoke(token, attempt + 1), 1000 * 2 ** attempt));
    // Kept for the next start too (until sessiond answers).
    if (attempt === 0) await Promise.resolve(pending?.set(token)).catch(() => {});
  }

  async #doRefresh(): Promise<SessionState | null> {
    const epoch = this.#epoch;
    const presented = this.mode === "bearer" ? await this.#storage.get() : null;
    if (this.mode === "bearer" && !presented) {
      if (this.#state) await this.#signedOut("invalid_refresh_token", true);
      return null;
    }
    let res: Response | null;
    try {
      res = await sendWithRetries(
        () => postJson(
          this.#fetch,
          `${this.url}/v1/token/refresh`,
          presented ? { refresh_token: presented } : {},
          this.#credentials(),
        ),
        () => !this.#disposed,
      );
    } catch (err) {
      // No answer: the session may well be alive. Keep the state and try again later.
      this.#unsure = true;
      if (this.#state) this.#schedule(UNREACHABLE_RETRY_MS + Math.random() * UNREACHABLE_RETRY_MS);
      throw err;
    }
    if (!res) return null;
    let body: TokenResponse;
    try {
      body = (await readJson(res)) as TokenResponse;
    } catch (err) {
      if (err instanceof SessiondError && SESSION_OVER.has(err.code)) {
        // A sign-in (here or in another tab) may have replaced the session meanwhile.
        if (epoch !== this.#epoch) return this.#state;
        if (this.mode === "bearer" && (await this.#storage.get()) !== presented) {
          // Another tab rotated or replaced the stored token: try again with that one.
          return this.#doRefreshOnce();
        }
        await this.#signedOut(err.code, this.#state !== null);
        return null;
      }
      throw err;
    }
    if (epoch !== this.#epoch) return this.#state;
    await this.#accept(body, this.#state ? "refreshed" : "signed_in", presented, epoch);
    return this.#state;
  }

  /** One more refresh attempt with whatever the storage holds now (bearer mode, lost race). */
  async #doRefreshOnce(): Promise<SessionState | null> {
    const presented = await this.#storage.get();
    if (!presented) {
      await this.#signedOut("invalid_refresh_token", this.#state !== null);
      return null;
    }
    const epoch = this.#epoch;
    const res = await postJson(this.#fetch, `${this.url}/v1/token/refresh`, { refresh_token: presented }, "omit");
    try {
      const body = (await readJson(res)) as TokenResponse;
      if (epoch !== this.#epoch) return this.#state;
      await this.#accept(body, this.#state ? "refreshed" : "signed_in", presented, epoch);
      return this.#state;
    } catch (err) {
      if (err instanceof SessiondError && SESSION_OVER.has(err.code)) {
        if (epoch !== this.#epoch) return this.#state;
        await this.#signedOut(err.code, this.#state !== null);
        return null;
      }
      throw err;
    }
  }

  /** Takes a token response: stores the refresh token (bearer), updates state, tells everyone. */
  async #accept(body: TokenResponse, type: "signed_in" | "refreshed", presented: string | null, epoch?: number) {
    if (this.#disposed) return;
    if (this.mode === "cookie") {
      if (body.refresh_token && !this.#warned) {
        this.#warned = true;
        console.warn(MODE_MISMATCH);
      }
      // Without a cookie there is nothing for the next page load to restore.
      if (this.#hint) hint(!body.refresh_token);
    }
    if (this.mode === "bearer" && body.refresh_token) {
      // After a refresh, write the successor only if the storage still holds the token we
      // presented: a tab that lost the race must not put back an older token.
      if (presented === null || (await this.#storage.get()) === presented) {
        await this.#storage.set(body.refresh_token);
      }
    }
    // A refresh overtaken by a sign-in or an upgrade (while the storage was written) is dropped.
    if (epoch !== undefined && epoch !== this.#epoch) return;
    const previous = this.#state;
    const state = sessionState(body, Date.now());
    if (outdated(previous, state)) return;
    // A guest that became permanent by a passkey is announced as upgrade() announces it.
    const promoted = this.#promoting === state.sessionId && previous?.user.is_guest === true && !state.user.is_guest;
    const kind = type === "refreshed" && previous?.sessionId === state.sessionId && !promoted ? "refreshed" : "signed_in";
    this.#set(state, kind, this.#following);
    // Other tabs learn that a session started (or its user changed), never the token.
    if (kind === "signed_in" && !this.#following) {
      this.#post({ type: kind, sessionId: state.sessionId, guest: state.user.is_guest });
    }
  }


  #set(state: SessionState, type: "signed_in" | "refreshed", remote: boolean) {
    this.#state = state;
    this.#unsure = false;
    this.#failure = "";
    this.#scheduleRefresh(state);
    this.#emit({ type, user: state.user, sessionId: state.sessionId, remote });
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve({ ...state });
  }

  async #signedOut(reason: string, notify: boolean, sessionId = this.#state?.sessionId ?? null) {
    this.#epoch++;
    this.#unsure = false;
    this.#failure = "";
    const had = this.#state !== null;
    this.#state = null;
    this.#timer.clear();
    if (this.mode === "bearer") await this.#storage.remove();
    else if (this.#hint) hint(false);
    if (notify) this.#post({ type: "signed_out", sessionId, reason });
    if (had) this.#emit({ type: "signed_out", user: null, sessionId, remote: false, reason });
  }

  #onMessage(message: Message) {
    const current = this.#state;
    if (this.#disposed) return;
    if (message.type === "signed_out") {
      if (!current || (message.sessionId !== null && message.sessionId !== current.sessionId)) return;
      this.#epoch++;
      this.#state = null;
      this.#timer.clear();
      this.#emit({
        type: "signed_out",
        user: null,
        sessionId: current.sessionId,
        remote: true,
        reason: message.reason,
      });
      return;
    }
    void this.#follow(message.sessionId, message.guest);
  }

  /**
   * Another tab signed in (or upgraded): refresh for this tab's own access token, with the
   * refresh token the tabs share (the cookie, or the shared storage). A refresh already in flight
   * may still carry the previous token: then once more.
   */
  async #follow(sessionId: string, guest: boolean) {
    const done = () => this.#state?.sessionId === sessionId && this.#state.user.is_guest === guest;
    this.#following = true;
    try {
      for (let i = 0; i < 2 && !done(); i++) if (!(await this.refresh())) break;
    } catch {
      // unreachable: getAccessToken() tries again
    } finally {
      this.#following = false;
    }
  }

  #post(message: Message) {
    this.#channel.post(message);
  }

  #emit(event: ChangeEvent, listeners = [...this.#listeners]) {
    if (!this.#started) return;
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Refresh at a random moment in the last part of the token's life (before the lead). */
  #scheduleRefresh(state: SessionState) {
    this.#schedule(refreshDelay(state, this.#leadSecs, Date.now(), Math.random()));
  }

  #schedule(delayMs: number) {
    if (this.#disposed) return;
    this.#timer.schedule(delayMs, () => {
      this.refresh().catch(() => {
        // failures reschedule themselves; the state is kept
      });
    });
  }
}

/** The body fields of a reauthentication with a password or a second factor. */
function reauthFields(proof: ReauthProof): object {
  if ("password" in proof) return { password: proof.password };
  if ("code" in proof) return { code: proof.code };
  if ("recoveryCode" in proof) return { recovery_code: proof.recoveryCode };
  throw new TypeError("@sessiond/client: reauthenticate() needs { password }, { code }, { recoveryCode } or { passkey: true }");
}

/** `Authorization: Bearer` with `accessToken`, or no header without one. */
function bearer(accessToken: string | null): Record<string, string> {
  return accessToken ? { authorization: `Bearer ${accessToken}` } : {};
}

/** Removes a mailed link's `type` and `token` from the address bar (where there is a history). */
function forgetLink(link: URL) {
  const history = (globalThis as { history?: History }).history;
  if (typeof history?.replaceState !== "function") return;
  const clean = new URL(link.href);
  clean.searchParams.delete("type");
  clean.searchParams.delete("token");
  try {
    history.replaceState(history.state, "", clean.href);
  } catch {
    // a sandboxed document, say: the link is completed all the same
  }
}

/** Creates a client; see {@link ClientOptions}. */
export function createClient(options: ClientOptions): SessiondClient {
  return new SessiondClient(options);
}

