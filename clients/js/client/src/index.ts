/**
 * @sessiond/client: the browser side of sessiond (also runs on Node's fetch).
 *
 * - The access token lives in memory only. The refresh token lives in sessiond's HttpOnly
 *   cookie (`mode: "cookie"`, the default) or in a storage adapter the app chooses
 *   (`mode: "bearer"`).
 * - The access token is refreshed before it expires (with jitter) and once after a 401. A tab
 *   has at most one refresh in flight. Tabs tell each other over a BroadcastChannel that a
 *   session started or ended, never a token: each tab refreshes for its own access token and
 *   sessiond's refresh grace window (a just-spent refresh token presented again returns the same
 *   successor) makes racing tabs converge, so no tab ever waits on another and a lost race never
 *   signs a tab out.
 *
 * This module is the public API and nothing else: the modules behind it (client, http, refresh,
 * tabs, storage, webauthn, base64url) are not exported, so they can change without a major version.
 */
export { SessiondClient, createClient } from "./client.js";
export type { ClientOptions } from "./client.js";
export { MfaRequiredError, SessiondError, StepUpRequiredError } from "./http.js";
export { passkeyAutofillSupported, passkeysSupported } from "./webauthn.js";
export { localStorageAdapter, memoryStorage } from "./storage.js";
export type { RefreshTokenStorage } from "./storage.js";
export type {
  BindableSocket, ChangeEvent, ChangeListener, ChangeType, CompleteFromUrlOptions, CompletedLink, DeviceSession,
  EmailLinkType, MfaMethod, MfaProof, Passkey, PasskeySignInOptions, ReauthProof, RegisterPasskeyOptions, SessionState,
  TotpEnrollment, User,
} from "./types.js";
