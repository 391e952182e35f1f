/**
 * Follows sessiond's session event feed (`GET /v1/events`, Server-Sent Events, service key with
 * scope `events`): parses `id:`/`event:`/`data:`, resumes after a lost connection with
 * `Last-Event-ID`, reconnects with backoff, and reports a `reset` (the resume point is older
 * than sessiond's retention: whatever was derived from the feed must be dropped).
 */
import { EventEmitter } from "node:events";

export type SessionEventType = "session.created" | "session.ended" | "user.deleted" | "key.retired";

/** The event types this follower emits under their own name; any other type only as `event`. */
const KNOWN_TYPES: ReadonlySet<string> = new Set<SessionEventType>([
  "session.created", "session.ended", "user.deleted", "key.retired",
]);

/** Events read per request when replaying a backlog with the poll form. */
const PAGE = 1000;

/** One event of the feed (the SSE `data:` JSON). */
export interface SessionEvent {
  /** The event id (an integer; the SSE `id:` is the same number as text). */
  id: number;
  type: SessionEventType | string;
  at: string;
  /** Null for events that concern no user (`key.retired`). */
  user_id: string | null;
  session_id: string | null;
  /**
   * For `session.ended`: logout, revoked, token_revoked, refresh_token_reused, password_changed,
   * password_reset, admin, user_deleted, user_disabled, evicted.
   */
  reason: string | null;
  /** For `key.retired`: the signing key (`kid`) that no longer verifies anything. */
  kid?: string;
}

/**
 * Why the feed cannot be followed with this service key: sessiond answered 401 (unknown or
 * revoked key) or 403 (the key lacks the `events` scope). `ready()` rejects with it; the
 * follower keeps retrying (slowly) in case the key is fixed while running.
 */
export interface FeedRefusedError extends Error {
  name: "FeedRefusedError";
  code: "feed_refused";
  status: 401 | 403;
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
  /** A signing key was retired (`sessiond keys retire`): tokens it signed must no longer verify. */
  "key.retired": [SessionEvent];
  /** The resume point was too old: drop what you derived from earlier events. */
  reset: [];
  /**
   * The follower is live (again): the stream is open and every event since the resume point
   * (`Last-Event-ID`) has been delivered. `live` is true from here until it drops.
   */
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
 *
 * After a lost connection it first replays what it missed (the poll form,
 * `GET /v1/events?after=<last id>`, page by page) and only then opens the stream again and
 * counts itself live: while it is catching up, `live` is false and nothing relies on it.
 */
export class SessionEvents extends EventEmitter<SessionEventsEvents> {
  readonly url: string;
  /** The id of the last event received (sent as `Last-Event-ID` on reconnection). */
  lastEventId: string | undefined;
  /** True while the stream is open and the backlog since the resume point has been replayed. */
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
  #retryAfterMs: number | undefined;
  #sleepTimer: ReturnType<typeof setTimeout> | null = null;
  #wake: (() => void) | null = null;
  #refused: FeedRefusedError | null = null;
  #waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

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

  /**
   * Resolves once the follower is live (at once if it is now). Rejects with a
   * {@link FeedRefusedError} when sessiond refuses the service key (401, or 403: no `events`
   * scope), and when the follower is closed first. Meant for start-up:
   * `await feed.ready()` before serving.
   */
  ready(): Promise<void> {
    if (this.live) return Promise.resolve();
    if (this.#refused) return Promise.reject(this.#refused);
    if (this.#closed) return Promise.reject(new Error("@sessiond/node: the event feed was closed"));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** The refusal of the service key, while sessiond refuses it (null once the feed is live). */
  get refused(): FeedRefusedError | null {
    return this.#refused;
  }

  #settle(error: Error | null) {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (error) w.reject(error);
      else w.resolve();
    }
  }

  /** Stops following; pending reconnection timers are cancelled. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#settle(new Error("@sessiond/node: the event feed was closed"));
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
      let delay = Math.min(this.#maxRetryMs, base * 2 ** Math.min(this.#failures - 1, 10));
      // A refused key is a deployment error: retry at the slowest pace, not in a tight loop.
      if (this.#refused) delay = this.#maxRetryMs;
      delay = delay / 2 + (Math.random() * delay) / 2;
      // 429 (too many streams for this key) and 503 say when to come back.
      if (this.#retryAfterMs !== undefined) delay = Math.max(delay, this.#retryAfterMs);
      this.#retryAfterMs = undefined;
      await this.#sleep(delay);
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
    let idle: ReturnType<typeof setTimeout> | null = null;
    const touch = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => abort.abort(new Error("the event feed went silent")), this.#idleTimeoutMs);
      idle.unref?.();
    };
    touch();
    try {
      // Catch up first: the follower is live only once everything it missed is delivered.
      if (this.lastEventId !== undefined) await this.#replay(abort.signal, touch);
      if (this.#closed) return;
      const headers: Record<string, string> = {
        accept: "text/event-stream",
        authorization: `Bearer ${this.#serviceKey}`,
      };
      if (this.lastEventId !== undefined) headers["last-event-id"] = this.lastEventId;
      const res = await this.#fetch(`${this.url}/v1/events`, { headers, signal: abort.signal });
      if (res.status === 400 && this.lastEventId !== undefined) {
        await res.text().catch(() => "");
        this.#startOver();
        throw new Error("GET /v1/events refused the Last-Event-ID");
      }
      if (res.status !== 200 || !res.body) throw await this.#failure(res, "GET /v1/events");
      const type = res.headers.get("content-type") ?? "";
      if (!type.startsWith("text/event-stream")) {
        await res.body.cancel().catch(() => {});
        throw new Error(`GET /v1/events answered ${type || "no content type"}, not text/event-stream`);
      }
      this.live = true;
      this.#refused = null;
      // Resuming after a known event id leaves no gap; otherwise the feed starts now.
      if (this.lastEventId === undefined || this.liveSince === null) this.liveSince = Date.now();
      this.#failures = 0;
      this.emit("open");
      this.#settle(null);
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

  /**
   * Delivers the events after `lastEventId` with the poll form (`GET /v1/events?after=…`), page
   * by page, until a page is not full.
   */
  async #replay(signal: AbortSignal, touch: () => void) {
    while (!this.#closed && this.lastEventId !== undefined) {
      const query = new URLSearchParams({ after: this.lastEventId, limit: String(PAGE) });
      const res = await this.#fetch(`${this.url}/v1/events?${query}`, {
        headers: { accept: "application/json", authorization: `Bearer ${this.#serviceKey}` },
        signal,
      });
      touch();
      if (res.status === 400) {
        // Not an event id sessiond takes: start over from now (a reset).
        await res.text().catch(() => "");
        this.#startOver();
        return;
      }
      if (res.status !== 200) throw await this.#failure(res, "GET /v1/events?after=");
      const body = (await res.json()) as { events?: unknown[]; next?: number | string; reset?: boolean };
      const events = Array.isArray(body.events) ? body.events : [];
      if (body.reset) {
        // The resume point is no longer retained: consumers drop what they derived.
        this.lastEventId = body.next === undefined ? undefined : String(body.next);
        this.liveSince = null;
        this.emit("reset");
      }
      for (const event of events) {
        if (this.#closed) return;
        const e = event as Partial<SessionEvent> | null;
        if (!e || typeof e !== "object" || e.id === undefined) continue;
        this.lastEventId = String(e.id);
        this.#deliver(e, String(e.type ?? ""), String(e.id));
      }
      if (events.length < PAGE) return;
    }
  }

  /** The resume point is not usable: continue from now, after a `reset`. */
  #startOver() {
    this.lastEventId = undefined;
    this.liveSince = null;
    this.emit("reset");
  }

  /** The error for a failed answer; a refused service key also fails `ready()`. */
  async #failure(res: Response, what: string): Promise<Error> {
    const text = (await res.text().catch(() => "")).slice(0, 200);
    const retryAfter = Number(res.headers.get("retry-after"));
    if (Number.isFinite(retryAfter) && retryAfter > 0) this.#retryAfterMs = Math.min(retryAfter, 300) * 1000;
    if (res.status === 401 || res.status === 403) {
      const why = res.status === 403
        ? "the service key lacks the `events` scope (create one with `sessiond service-keys create NAME " +
          "--scope introspect --scope events`)"
        : "sessiond does not accept the service key (unknown or revoked)";
      const err = Object.assign(new Error(`${what} answered ${res.status}: ${why}. ${text}`.trim()), {
        name: "FeedRefusedError" as const,
        code: "feed_refused" as const,
        status: res.status as 401 | 403,
      });
      this.#refused = err;
      this.#settle(err);
      return err;
    }
    return new Error(`${what} answered ${res.status} ${text}`.trim());
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
    let event: unknown;
    try {
      event = JSON.parse(message.data);
    } catch {
      // A type this version does not know may carry anything: skip it quietly.
      if (KNOWN_TYPES.has(message.event) && this.listenerCount("error") > 0) {
        this.emit("error", new Error(`unparseable event data for ${message.event}`));
      }
      return;
    }
    this.#deliver(event as Partial<SessionEvent>, message.event, message.id);
  }

  /** Emits one event: as `event`, and under its type when this version knows the type. */
  #deliver(data: Partial<SessionEvent> | null, type: string, id: string | undefined) {
    if (!data || typeof data !== "object" || Array.isArray(data)) return;
    const event = data as SessionEvent;
    event.type ??= type;
    if (event.id === undefined && id !== undefined) event.id = Number(id);
    event.user_id ??= null;
    event.session_id ??= null;
    event.reason ??= null;
    this.emit("event", event);
    if (KNOWN_TYPES.has(event.type)) this.emit(event.type as SessionEventType, event);
  }
}
