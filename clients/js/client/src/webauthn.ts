// WebAuthn for sessiond's passkeys. sessiond sends ceremony options and expects credentials in
// WebAuthn Level 3's JSON forms (binary as base64url). Where the browser has the Level 3
// converters (`PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`,
// `credential.toJSON()`) they are used; elsewhere a small fallback converts the binary fields.
// Also here: one ceremony at a time per client (browsers refuse a second while one is pending,
// such as the autofill request of a sign-in page).

import { fromBase64url, toBase64url } from "./base64url.js";

type JsonObject = Record<string, unknown>;

/** A credential descriptor in JSON form (`excludeCredentials`, `allowCredentials`). */
interface DescriptorJSON {
  id: string;
  type: string;
  transports?: string[];
}

/** PublicKeyCredentialCreationOptionsJSON: the fields with binary values. */
export interface CreationOptionsJSON extends JsonObject {
  challenge: string;
  user: { id: string; name: string; displayName: string };
  excludeCredentials?: DescriptorJSON[];
}

/** PublicKeyCredentialRequestOptionsJSON: the fields with binary values. */
export interface RequestOptionsJSON extends JsonObject {
  challenge: string;
  allowCredentials?: DescriptorJSON[];
}

/** RegistrationResponseJSON (WebAuthn L3), what `POST /v1/passkeys/register/finish` takes. */
export interface RegistrationResponseJSON {
  id: string;
  rawId: string;
  type: string;
  authenticatorAttachment?: string | null;
  response: {
    clientDataJSON: string;
    attestationObject: string;
    transports?: string[];
    authenticatorData?: string;
    publicKey?: string;
    publicKeyAlgorithm?: number;
  };
  clientExtensionResults: JsonObject;
}

/** AuthenticationResponseJSON (WebAuthn L3), what the passkey sign-in and reauth take. */
export interface AuthenticationResponseJSON {
  id: string;
  rawId: string;
  type: string;
  authenticatorAttachment?: string | null;
  response: {
    clientDataJSON: string;
    authenticatorData: string;
    signature: string;
    userHandle: string | null;
  };
  clientExtensionResults: JsonObject;
}

/** The statics of `PublicKeyCredential`, each possibly missing (older browsers). */
interface PublicKeyCredentialStatics {
  parseCreationOptionsFromJSON?(options: unknown): PublicKeyCredentialCreationOptions;
  parseRequestOptionsFromJSON?(options: unknown): PublicKeyCredentialRequestOptions;
  isConditionalMediationAvailable?(): Promise<boolean>;
}

function statics(): PublicKeyCredentialStatics | undefined {
  const pkc = (globalThis as { PublicKeyCredential?: unknown }).PublicKeyCredential;
  return typeof pkc === "function" ? (pkc as PublicKeyCredentialStatics) : undefined;
}

function container(): CredentialsContainer | undefined {
  const credentials = (globalThis as { navigator?: { credentials?: CredentialsContainer } }).navigator?.credentials;
  return typeof credentials?.create === "function" && typeof credentials.get === "function" ? credentials : undefined;
}

/** True where this page can create and use passkeys (WebAuthn is there; a secure context). */
export function passkeysSupported(): boolean {
  return statics() !== undefined && container() !== undefined;
}

/**
 * True where the browser offers passkeys in form autofill (conditional mediation), for
 * `signInWithPasskey({ conditional: true })`.
 */
export async function passkeyAutofillSupported(): Promise<boolean> {
  if (!passkeysSupported()) return false;
  try {
    return (await statics()!.isConditionalMediationAvailable?.()) === true;
  } catch {
    return false;
  }
}

/**
 * The options of a start answer: `{ publicKey: {…} }` (webauthn-rs wraps them so) or the
 * options themselves, with `null` members dropped (JSON's way of saying "absent", which the
 * browser would read as 0 or "null").
 */
export function unwrapOptions<T extends JsonObject>(options: unknown): T {
  if (!isObject(options)) throw new TypeError("@sessiond/client: sessiond sent no WebAuthn options");
  const inner = isObject(options.publicKey) ? options.publicKey : options;
  const cleaned = withoutNulls(inner) as T;
  if (typeof cleaned.challenge !== "string") throw new TypeError("@sessiond/client: the WebAuthn options have no challenge");
  return cleaned;
}

/** PublicKeyCredentialCreationOptions from their JSON form. */
export function creationOptionsFromJSON(json: CreationOptionsJSON): PublicKeyCredentialCreationOptions {
  const parse = statics()?.parseCreationOptionsFromJSON;
  if (typeof parse === "function") return parse.call(statics(), json);
  const { challenge, user, excludeCredentials, ...rest } = json;
  return {
    ...(rest as unknown as PublicKeyCredentialCreationOptions),
    challenge: fromBase64url(challenge),
    user: { ...user, id: fromBase64url(user.id) },
    ...(excludeCredentials && { excludeCredentials: excludeCredentials.map(descriptor) }),
  };
}

/** PublicKeyCredentialRequestOptions from their JSON form. */
export function requestOptionsFromJSON(json: RequestOptionsJSON): PublicKeyCredentialRequestOptions {
  const parse = statics()?.parseRequestOptionsFromJSON;
  if (typeof parse === "function") return parse.call(statics(), json);
  const { challenge, allowCredentials, ...rest } = json;
  return {
    ...(rest as unknown as PublicKeyCredentialRequestOptions),
    challenge: fromBase64url(challenge),
    ...(allowCredentials && { allowCredentials: allowCredentials.map(descriptor) }),
  };
}

function descriptor(d: DescriptorJSON): PublicKeyCredentialDescriptor {
  return { ...d, id: fromBase64url(d.id) } as PublicKeyCredentialDescriptor;
}

/** A created credential in RegistrationResponseJSON form. */
export function registrationToJSON(credential: PublicKeyCredential): RegistrationResponseJSON {
  const json = browserJSON(credential);
  if (json && typeof (json.response as JsonObject).attestationObject === "string") {
    return json as unknown as RegistrationResponseJSON;
  }
  const response = credential.response as AuthenticatorAttestationResponse;
  const transports = attempt(() => response.getTransports?.());
  const authenticatorData = attempt(() => response.getAuthenticatorData?.());
  const publicKey = attempt(() => response.getPublicKey?.());
  const publicKeyAlgorithm = attempt(() => response.getPublicKeyAlgorithm?.());
  return {
    ...common(credential),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      ...(Array.isArray(transports) && { transports }),
      ...(authenticatorData && { authenticatorData: toBase64url(authenticatorData) }),
      ...(publicKey && { publicKey: toBase64url(publicKey) }),
      ...(typeof publicKeyAlgorithm === "number" && { publicKeyAlgorithm }),
    },
  };
}

/** An assertion in AuthenticationResponseJSON form. */
export function authenticationToJSON(credential: PublicKeyCredential): AuthenticationResponseJSON {
  const json = browserJSON(credential);
  if (json && typeof (json.response as JsonObject).signature === "string") {
    return json as unknown as AuthenticationResponseJSON;
  }
  const response = credential.response as AuthenticatorAssertionResponse;
  return {
    ...common(credential),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    },
  };
}

/**
 * `credential.toJSON()` where the browser has it and it gives the JSON form (some password
 * manager extensions replace `navigator.credentials` with objects whose toJSON is missing or
 * returns something else); null otherwise, for the fallback.
 */
function browserJSON(credential: PublicKeyCredential): JsonObject | null {
  if (typeof credential.toJSON !== "function") return null;
  const json = attempt(() => credential.toJSON() as unknown);
  return isObject(json) && typeof json.id === "string" && typeof json.rawId === "string" &&
    isObject(json.response) && typeof json.response.clientDataJSON === "string"
    ? json
    : null;
}

function common(credential: PublicKeyCredential) {
  const results = attempt(() => credential.getClientExtensionResults?.()) ?? {};
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment ?? null,
    clientExtensionResults: binaryToJSON(results) as JsonObject,
  };
}

/** Extension outputs with their binary members (prf, largeBlob) as base64url, as toJSON() does. */
function binaryToJSON(value: unknown): unknown {
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return toBase64url(value as ArrayBuffer);
  if (Array.isArray(value)) return value.map(binaryToJSON);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, binaryToJSON(v)]));
  return value;
}

/**
 * The browser's credentials container, or a NotSupportedError (the name the browser's own
 * refusals use) where there is none: no WebAuthn, or not a secure context.
 */
export function credentialsContainer(): CredentialsContainer {
  const credentials = container();
  if (!credentials) throw new DOMException("passkeys (WebAuthn) are not available here", "NotSupportedError");
  return credentials;
}

/**
 * One WebAuthn ceremony at a time: starting one aborts the one in progress (browsers refuse a
 * second request while one is pending, e.g. the autofill request of a sign-in page while the
 * user clicks "Sign in with a passkey"), which rejects with an AbortError.
 */
export class Ceremonies {
  #current: AbortController | null = null;

  /** The signal for a new ceremony, aborted by the next one, by `signal` or by `abort()`. */
  begin(signal?: AbortSignal): { signal: AbortSignal; end: () => void } {
    this.abort("another passkey request started");
    const controller = new AbortController();
    this.#current = controller;
    const follow = () => controller.abort(signal?.reason);
    if (signal?.aborted) follow();
    else signal?.addEventListener("abort", follow, { once: true });
    return {
      signal: controller.signal,
      end: () => {
        signal?.removeEventListener("abort", follow);
        if (this.#current === controller) this.#current = null;
      },
    };
  }

  /** Aborts the ceremony in progress, if any. */
  abort(why: string) {
    this.#current?.abort(new DOMException(why, "AbortError"));
    this.#current = null;
  }
}

/** `navigator.credentials.create()` with sessiond's creation options; the credential as JSON. */
export async function createCredential(options: unknown, signal: AbortSignal): Promise<RegistrationResponseJSON> {
  const publicKey = creationOptionsFromJSON(unwrapOptions<CreationOptionsJSON>(options));
  const credential = await credentialsContainer().create({ publicKey, signal });
  if (!credential) throw new DOMException("no passkey was created", "NotAllowedError");
  return registrationToJSON(credential as PublicKeyCredential);
}

/** `navigator.credentials.get()` with sessiond's request options; the assertion as JSON. */
export async function getCredential(
  options: unknown,
  { mediation, signal }: { mediation?: CredentialMediationRequirement; signal: AbortSignal },
): Promise<AuthenticationResponseJSON> {
  const publicKey = requestOptionsFromJSON(unwrapOptions<RequestOptionsJSON>(options));
  const credential = await credentialsContainer().get({ publicKey, signal, ...(mediation && { mediation }) });
  if (!credential) throw new DOMException("no passkey was chosen", "NotAllowedError");
  return authenticationToJSON(credential as PublicKeyCredential);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]));
}

/** `read()`, or undefined when it throws (an optional getter a browser half-implements). */
function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
