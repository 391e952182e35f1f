/**
 * Follows sessiond's session event feed (`GET /v1/events`, Server-Sent Events, service key with
 * scope `events`): parses `id:`/`event:`/`data:`, resumes after a lost connection with
 * `Last-Event-ID`, reconnects with backoff, and reports a `reset` (the resume point is older
 * than sessiond's retention: whatever was derived from the feed must be dropped).
 */
import { EventEmitter } from "node:events";

export type SessionEventType = "session.created" | "session.ended" | "user.deleted";

/** One event of the feed (the SSE `data:` JSON). */
export interface SessionEvent {
  /** The event id (an integer; the SSE `id:` is the same number as text). */
  id: number;
  type: SessionEventType | string;
  at: string;
  user_id: string | null;
  session_id: string | null;
  /** For `session.ended`: logout, revoked, token_revoked, refresh_token_reused, password_changed, admin, user_deleted. */
  reason: string | null;
}

export interface SessionEventsOptions {
  /** sessiond's base URL. */
  url: string;
  /** A service key with scope `events`. */
  serviceKey: string;
  /**
   * Resume after this event id (e.g. persisted by the app). Default: from now on. One sessiond
   * no longer retains, or refuses, gets a `reset` and the feed continues from now.
   */
  lastEventId?: string | number;
  /** First reconnection delay in ms (doubles up to `maxRetryMs`, with jitter). Default 500. */
  retryMs?: number;
  /** Default 15000. */
  maxRetryMs?: number;
  /** A connection silent for this long (no event, no keep-alive) is dropped and reopened. Default 45000. */
  idleTimeoutMs?: number;
  fetch?: typeof fetch;
}

export interface SessionEventsEvents {
  /** Every event of the feed. */
  event: [SessionEvent];
  "session.created": [SessionEvent];
  "session.ended": [SessionEvent];
  "user.deleted": [SessionEvent];
  /** The resume point was too old: drop what you derived from earlier events. */
  reset: [];
  /** The stream is open (again); `live` is true from here until it drops. */
  open: [];
  /** The stream dropped; the follower reconnects by itself. */
  close: [Error | null];
  error: [Error];
}

/** One SSE message: the fields of a block ended by a blank line. */
interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
  retry: number | undefined;
}

/**
 * An incremental Server-Sent Events parser (the WHATWG rules: lines end with CRLF, LF or CR;
 * `:` starts a comment; `data:` lines are joined with "\n"; a blank line dispatches).
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id: string | undefined = undefined;
  #retry: number | undefined = undefined;
  #sawCR = false;
  constructor(private readonly onMessage: (message: SseMessage) => void) {}

  push(chunk: string) {
    let text = chunk;
    // A CRLF may be split across chunks.
    if (this.#sawCR && text.startsWith("\n")) text = text.slice(1);
    this.#sawCR = false;
    this.#buffer += text;
    let start = 0;
    for (let i = 0; i < this.#buffer.length; i++) {
      const c = this.#buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      this.#line(this.#buffer.slice(start, i));
      if (c === "\r") {
        if (i + 1 < this.#buffer.length) {
          if (this.#buffer[i + 1] === "\n") i++;
        } else {
          this.#sawCR = true;
        }
      }
      start = i + 1;
    }
    this.#buffer = this.#buffer.slice(start);
  }

  #line(line: string) {
    if (line === "") {
      if (this.#data.length > 0 || this.#event) {
        this.onMessage({
          id: this.#id,
          event: this.#event || "message",
          data: this.#data.join("\n"),
          retry: this.#retry,
        });
      }
      this.#data = [];
      this.#event = "";
      this.#id = undefined;
      this.#retry = undefined;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        break;
      case "event":
        this.#event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.#retry = Number(value);
        break;
      default:
        break;
    }
  }
}

/**
 * A running follower of the feed. `start()` opens it; it then stays open (reconnecting as
 * needed) until `close()`.
 */
export class SessionEvents extends EventEmitter<SessionEventsEvents> {
  readonly url: string;
  /** The id of the last event received (sent as `Last-Event-ID` on reconnection). */
  lastEventId: string | undefined;
  /** True while the stream is open. */
  live = false;
  /**
   * Since when (ms) the follower has seen every event with no gap: set when the first stream
   * opens, and again after a `reset` or a reconnection with nothing to resume from. Null before.
   */
  liveSince: number | null = null;

  #serviceKey: string;
  #fetch: typeof fetch;
  #retryMs: number;
  #maxRetryMs: number;
  #idleTimeoutMs: number;
  #abort: AbortController | null = null;
  #closed = false;
  #running: Promise<void> | null = null;
  #failures = 0;
  #serverRetry: number | undefined;
  #sleepTimer: ReturnType<typeof setTimeout> | null = null;
  #wake: (() => void) | null = null;

  constructor(options: SessionEventsOptions) {
    super();
    if (!options?.url) throw new TypeError("@sessiond/node: events url is required");
    if (!options.serviceKey) throw new TypeError("@sessiond/node: events serviceKey is required");
    this.url = options.url.replace(/\/+$/, "");
    this.#serviceKey = options.serviceKey;
    this.lastEventId = options.lastEventId === undefined ? undefined : String(options.lastEventId);
    this.#retryMs = options.retryMs ?? 500;
    this.#maxRetryMs = options.maxRetryMs ?? 15_000;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  /** Opens the feed (idempotent). */
  start(): this {
    if (!this.#running && !this.#closed) this.#running = this.#loop();
    return this;
  }

  /** Stops following; pending reconnection timers are cancelled. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort();
    if (this.#sleepTimer) clearTimeout(this.#sleepTimer);
    this.#wake?.();
    await this.#running?.catch(() => {});
    this.#running = null;
  }

  async #loop() {
    while (!this.#closed) {
      let error: Error | null = null;
      try {
        await this.#connect();
      } catch (err) {
        error = err instanceof Error ? err : new Error(String(err));
      }
      const wasLive = this.live;
      this.live = false;
      if (this.#closed) break;
      if (wasLive) this.emit("close", error);
      if (error && this.listenerCount("error") > 0) this.emit("error", error);
      this.#failures++;
      const base = this.#serverRetry ?? this.#retryMs;
      const delay = Math.min(this.#maxRetryMs, base * 2 ** Math.min(this.#failures - 1, 10));
      await this.#sleep(delay / 2 + (Math.random() * delay) / 2);
    }
    this.live = false;
  }

  #sleep(ms: number) {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
      this.#sleepTimer.unref?.();
    });
  }

  async #connect() {
    const abort = new AbortController();
    this.#abort = abort;
    const headers: Record<string, string> = {
      accept: "text/event-stream",
      authorization: `Bearer ${this.#serviceKey}`,
    };
    if (this.lastEventId !== undefined) headers["last-event-id"] = this.lastEventId;
    let idle: ReturnType<typeof setTimeout> | null = null;
    const touch = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => abort.abort(new Error("the event feed went silent")), this.#idleTimeoutMs);
      idle.unref?.();
    };
    touch();
    try {
      const res = await this.#fetch(`${this.url}/v1/events`, { headers, signal: abort.signal });
      if (res.status === 400 && this.lastEventId !== undefined) {
        // sessiond does not take this resume point (not an event id): start over from now, and
        // tell consumers that what they derived may be incomplete.
        const text = await res.text().catch(() => "");
        this.lastEventId = undefined;
        this.liveSince = null;
        this.emit("reset");
        throw new Error(`GET /v1/events refused the Last-Event-ID: ${text.slice(0, 200)}`.trim());
      }
      if (res.status !== 200 || !res.body) {
        const text = await res.text().catch(() => "");
        throw new Error(`GET /v1/events answered ${res.status} ${text.slice(0, 200)}`.trim());
      }
      const type = res.headers.get("content-type") ?? "";
      if (!type.startsWith("text/event-stream")) {
        await res.body.cancel().catch(() => {});
        throw new Error(`GET /v1/events answered ${type || "no content type"}, not text/event-stream`);
      }
      this.live = true;
      // Resuming after a known event id leaves no gap; otherwise the feed starts now.
      if (this.lastEventId === undefined || this.liveSince === null) this.liveSince = Date.now();
      this.#failures = 0;
      this.emit("open");
      const parser = new SseParser((message) => this.#dispatch(message));
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        touch();
        parser.push(decoder.decode(chunk, { stream: true }));
        if (this.#closed) break;
      }
      if (!this.#closed) throw new Error("the event feed ended");
    } finally {
      if (idle) clearTimeout(idle);
    }
  }

  #dispatch(message: SseMessage) {
    if (message.retry !== undefined) this.#serverRetry = message.retry;
    if (message.id !== undefined) this.lastEventId = message.id;
    if (message.event === "reset") {
      // Everything derived before is unreliable: consumers drop it; "live" restarts now.
      this.liveSince = Date.now();
      this.emit("reset");
      return;
    }
    let event: SessionEvent;
    try {
      event = JSON.parse(message.data) as SessionEvent;
    } catch {
      if (this.listenerCount("error") > 0) {
        this.emit("error", new Error(`unparseable event data for ${message.event}`));
      }
      return;
    }
    if (!event || typeof event !== "object") return;
    event.type ??= message.event;
    if (event.id === undefined && message.id !== undefined) event.id = Number(message.id);
    this.emit("event", event);
    if (event.type === "session.created" || event.type === "session.ended" || event.type === "user.deleted") {
      this.emit(event.type, event);
    }
  }
}
