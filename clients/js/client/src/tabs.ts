// What the tabs of one app tell each other over a BroadcastChannel: that a session started (or
// its user changed, as in an upgrade) or ended. Never a token: anything on the origin can listen
// to the channel, and a tab that learns of a sign-in refreshes for its own access token (with the
// refresh token the tabs share: the cookie, or a shared storage).

import { unref } from "./refresh.js";

export type Message =
  | { type: "signed_in"; sessionId: string; guest: boolean }
  | { type: "signed_out"; sessionId: string | null; reason: string };

/** The message in `data` if it is exactly one of ours, else null (anything on the origin can post). */
export function parseMessage(data: unknown): Message | null {
  if (!data || typeof data !== "object" || Object.keys(data).length !== 3) return null;
  const m = data as Record<string, unknown>;
  if (m.type === "signed_in" && typeof m.sessionId === "string" && typeof m.guest === "boolean") {
    return m as Message;
  }
  if (m.type === "signed_out" && (m.sessionId === null || typeof m.sessionId === "string") && typeof m.reason === "string") {
    return m as Message;
  }
  return null;
}

/**
 * The channel name of a client: `channel` when given (`false` for none); else `sessiond:<url>`
 * when the tabs share one session (cookie mode, or a storage every tab sees), and none otherwise
 * (tabs with a storage each have sessions each, and nothing to tell each other).
 */
export function channelName(channel: string | false | undefined, url: string, shared: boolean): string | false {
  return channel ?? (shared ? `sessiond:${url}` : false);
}

/** One tab's end of the channel; inert where there is no BroadcastChannel (old runtimes). */
export class TabChannel {
  #channel: BroadcastChannel | null = null;

  /** `onMessage` gets our messages only; anything else posted on the channel is dropped. */
  constructor(name: string | false, onMessage: (message: Message) => void) {
    // Looked up at construction, not import: tests and polyfills may install one later.
    const Channel = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel;
    if (name === false || typeof Channel !== "function") return;
    this.#channel = new Channel(name);
    unref(this.#channel);
    this.#channel.onmessage = (event: MessageEvent) => {
      const message = parseMessage(event.data);
      if (message) onMessage(message);
    };
  }

  post(message: Message) {
    try {
      this.#channel?.postMessage(message);
    } catch {
      // a closed channel
    }
  }

  close() {
    this.#channel?.close();
    this.#channel = null;
  }
}
