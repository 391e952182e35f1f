// Session event feed under load (Node >= 20, no dependencies):
//   node bench/events.mjs BASE_URL EVENTS_KEY SERVER_PID [CONSUMERS] [REVOCATIONS]
// Connects CONSUMERS stream consumers to GET /v1/events, then ends REVOCATIONS sessions as
// fast as 32 clients can, and prints: events delivered per second (over all consumers), the
// delay from the logout request to each consumer receiving its session.ended event (p50/p99;
// measured from the moment the request was sent, so an upper bound of commit -> consumer),
// and the server's memory per connected consumer.
const [base, key, pid, consumerArg, revocationArg] = process.argv.slice(2);
const CONSUMERS = Number(consumerArg ?? 1000);
const REVOCATIONS = Number(revocationArg ?? 500);
const rss = async () => {
  const fs = await import("node:fs/promises");
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
};

async function json(path, init) {
  const response = await fetch(base + path, init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

// Sessions to end later (creating them emits session.created events before anyone listens).
const sessions = [];
for (let i = 0; i < REVOCATIONS; i += 32) {
  const batch = Array.from({ length: Math.min(32, REVOCATIONS - i) }, () =>
    json("/v1/guest", { method: "POST" }));
  for (const body of await Promise.all(batch)) sessions.push(body);
}

const sentAt = new Map(); // session id -> time its logout was sent
const delays = [];
let delivered = 0;
let lastDelivery = 0;
let allDelivered;
const done = new Promise((resolve) => { allDelivered = resolve; });

async function consume() {
  const response = await fetch(base + "/v1/events", { headers: { authorization: `Bearer ${key}` } });
  if (!response.ok) throw new Error(`events: ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let connected;
  const ready = new Promise((resolve) => { connected = resolve; });
  (async () => {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith(": connected")) connected();
        const data = block.split("\n").find((l) => l.startsWith("data: "));
        if (!data || !block.includes("event: session.ended")) continue;
        const event = JSON.parse(data.slice(6));
        const sent = sentAt.get(event.session_id);
        if (sent === undefined) continue;
        const now = performance.now();
        delays.push(now - sent);
        lastDelivery = now;
        if (++delivered === CONSUMERS * REVOCATIONS) allDelivered();
      }
    }
  })();
  return ready;
}

const before = await rss();
for (let i = 0; i < CONSUMERS; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, CONSUMERS - i) }, consume));
}
await new Promise((r) => setTimeout(r, 500));
const perConsumer = ((await rss()) - before) / CONSUMERS;

const start = performance.now();
let next = 0;
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < sessions.length) {
    const session = sessions[next++];
    sentAt.set(session.session_id, performance.now());
    await json("/v1/logout", { method: "POST", headers: { authorization: `Bearer ${session.access_token}` } });
  }
}));
const committed = performance.now();
await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);

delays.sort((a, b) => a - b);
const pct = (p) => delays[Math.min(delays.length - 1, Math.floor(delays.length * p))]?.toFixed(1);
const seconds = (lastDelivery - start) / 1000;
console.log(`consumers ${CONSUMERS}, revocations ${REVOCATIONS} (${(REVOCATIONS / ((committed - start) / 1000)).toFixed(0)}/s committed)`);
console.log(`delivered ${delivered}/${CONSUMERS * REVOCATIONS} events, ${(delivered / seconds).toFixed(0)} events/s`);
console.log(`logout -> consumer: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${delays.at(-1)?.toFixed(1)} ms`);
console.log(`server memory per consumer: ${(perConsumer / 1024).toFixed(1)} KiB`);
process.exit(0);
