// base64url (RFC 4648 §5, no padding) <-> bytes, with atob/btoa only (browsers and Node alike):
// the encoding of WebAuthn's JSON forms and of a JWT's parts.

/** The bytes of an ArrayBuffer or of a view on one. */
function bytesOf(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

/** base64url without padding. */
export function toBase64url(data: ArrayBuffer | ArrayBufferView): string {
  let binary = "";
  for (const byte of bytesOf(data)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of base64url (or plain base64; padding optional). Throws a TypeError on anything else. */
export function fromBase64url(text: string): ArrayBuffer {
  if (typeof text !== "string" || !/^[A-Za-z0-9\-_+/]*={0,2}$/.test(text)) {
    throw new TypeError("@sessiond/client: not base64url");
  }
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  let binary: string;
  try {
    binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  } catch {
    throw new TypeError("@sessiond/client: not base64url");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}
