// The shapes the client hands to apps (sessiond's user and session objects, change events). Kept
// apart from the modules that produce them so that each of those can import them without
// importing the client.

/** The user object of a token response. */
export interface User {
  id: string;
  email: string | null;
  is_guest: boolean;
  created_at: string;
  /** Whether the user proved they own `email` (a verification link, a mailed sign-in, a reset). */
  email_verified?: boolean;
}

/** What the client knows about the signed-in session. */
export interface SessionState {
  user: User;
  sessionId: string;
  accessToken: string;
  /**
   * When the client stops using the access token, in milliseconds of this machine's clock: its
   * lifetime counted from receipt, less a second (`exp` is in whole seconds).
   */
  expiresAt: number;
  /**
   * When the user last authenticated in this session (sign-in, `reauthenticate()`), in seconds
   * since the epoch: the token response's `auth_time`, when sessiond sends one.
   */
  authTime?: number;
  /**
   * The assurance of that authentication, from the access token: `"1"` one factor, `"2"` two
   * factors or a user-verified passkey. Absent when the token does not say.
   */
  acr?: string;
  /** How the user authenticated, from the access token: `["pwd"]`, `["pwd", "otp"]`, `["hwk", "user"]`… */
  amr?: string[];
}

/** A device session as listed by `GET /v1/sessions`. */
export interface DeviceSession {
  id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  user_agent: string | null;
  ip_address: string | null;
  kind: string;
  provider: string | null;
  current: boolean;
}

/**
 * `initial_session`: the first event every listener gets, with the state after the start-up
 * restore (the session, or null). `restore_failed` replaces it when the restore could not reach
 * sessiond (the client asks again on the next `getAccessToken()`).
 */
export type ChangeType = "initial_session" | "restore_failed" | "signed_in" | "refreshed" | "signed_out";

export interface ChangeEvent {
  type: ChangeType;
  /** The user after the change (null when signed out). */
  user: User | null;
  /** The session after the change, or for `signed_out` the session that ended (if known). */
  sessionId: string | null;
  /** True when another tab made the change and this one learned it over the BroadcastChannel. */
  remote: boolean;
  /**
   * For `signed_out`: `logout`, or the error code that ended the session (`session_revoked`…).
   * For `restore_failed`: `network_error` or the error code of sessiond's answer.
   */
  reason?: string;
}

export type ChangeListener = (event: ChangeEvent) => void;

/** The part of a Socket.IO (or similar) client socket that `bindSocket()` uses. */
export interface BindableSocket {
  disconnect(): unknown;
  connect?(): unknown;
}

/** The `type` of a link in sessiond's mails: `<link_url>?type=<type>&token=<token>`. */
export type EmailLinkType = "verify_email" | "reset_password" | "sign_in" | "change_email";

/** Options of `completeFromUrl()`. */
export interface CompleteFromUrlOptions {
  /**
   * For a `reset_password` link: the new password. Without it the link is not used: the result
   * carries its `token`, for `resetPassword(token, newPassword)` once the page has asked for one.
   */
  newPassword?: string;
}

/** What `completeFromUrl()` did with the link in the URL. */
export interface CompletedLink {
  type: EmailLinkType;
  /** The user after the flow (absent for a `reset_password` link without `newPassword`). */
  user?: User;
  /** The session the flow started (`sign_in`, and `reset_password` with `newPassword`). */
  session?: SessionState;
  /** A `reset_password` link without `newPassword`: the token to pass to `resetPassword()`. */
  token?: string;
}

/** A second factor that `completeMfa()` takes (the `methods` of an `MfaRequiredError`). */
export type MfaMethod = "totp" | "recovery_code" | (string & {});

/** What finishes a sign-in that answered `mfa_required`: the `mfaToken` and one second factor. */
export type MfaProof = { mfaToken: string; code: string } | { mfaToken: string; recoveryCode: string };

/** A TOTP authenticator being enrolled (`enrollTotp()`): show the URI as a QR code, or the secret. */
export interface TotpEnrollment {
  /** The shared secret, base32 (for typing into an authenticator app). */
  secret: string;
  /** `otpauth://totp/…` (for a QR code). */
  otpauth_uri: string;
}

/** A passkey of the signed-in user, as `GET /v1/passkeys` lists it. */
export interface Passkey {
  id: string;
  /** The name given at registration, or one sessiond chose. */
  name: string;
  created_at: string;
  last_used_at: string | null;
}

/** Options of `registerPasskey()`. */
export interface RegisterPasskeyOptions {
  /** A name the user will recognise in `listPasskeys()` ("MacBook", "YubiKey"). */
  name?: string;
  /** Aborts the browser's dialog. */
  signal?: AbortSignal;
}

/** Options of `signInWithPasskey()`. */
export interface PasskeySignInOptions {
  /**
   * Offer the user's passkeys in the browser's autofill (`mediation: "conditional"`) instead of
   * a dialog: call it when the sign-in page loads, with an `<input autocomplete="username
   * webauthn">` on the page. It settles only when the user picks a passkey (or it is aborted).
   */
  conditional?: boolean;
  /** Aborts the request (e.g. an autofill request when the user leaves the page). */
  signal?: AbortSignal;
}

/** One way to authenticate again for `reauthenticate()`. */
export type ReauthProof =
  | { password: string }
  | { code: string }
  | { recoveryCode: string }
  | { passkey: true; signal?: AbortSignal };
