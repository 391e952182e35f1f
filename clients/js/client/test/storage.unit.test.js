// Unit tests (no sessiond binary): where the refresh token is kept (src/storage.ts), and a
// bearer-mode session that survives a new client through its storage.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { createClient, localStorageAdapter, memoryStorage } from "@sessiond/client";
import { HINT, hint } from "../dist/esm/storage.js";
import { fakeLocalStorage, fakeSessiond, recordEvents } from "./fakes.js";

const saved = { localStorage: Object.getOwnPropertyDescriptor(globalThis, "localStorage"), document: globalThis.document };
afterEach(() => {
  if (saved.localStorage) Object.defineProperty(globalThis, "localStorage", saved.localStorage);
  else delete globalThis.localStorage;
  if (saved.document === undefined) delete globalThis.document;
});
const useLocalStorage = (store) =>
  Object.defineProperty(globalThis, "localStorage", { value: store, configurable: true, writable: true });

test("memoryStorage: set, get, remove; not shared between tabs; each one its own", async () => {
  const s = memoryStorage();
  const other = memoryStorage();
  assert.equal(await s.get(), null);
  await s.set("rt-1");
  assert.equal(await s.get(), "rt-1");
  assert.equal(await other.get(), null);
  await s.remove();
  assert.equal(await s.get(), null);
  assert.equal(s.shared, false);
});

test("localStorageAdapter: round trip under its key, pending revocations under <key>.revoke, shared", async () => {
  const store = fakeLocalStorage();
  useLocalStorage(store);
  const s = localStorageAdapter("app.rt");
  assert.equal(s.shared, true);
  await s.set("rt-1");
  assert.equal(store.getItem("app.rt"), "rt-1");
  assert.equal(await s.get(), "rt-1");
  await s.pendingRevocation.set("rt-0");
  assert.equal(store.getItem("app.rt.revoke"), "rt-0");
  assert.equal(await s.pendingRevocation.get(), "rt-0");
  await s.remove();
  assert.equal(await s.get(), null);
  assert.equal(store.getItem("app.rt.revoke"), "rt-0");
  // The default key; and a store swapped after creation is the one used.
  const d = localStorageAdapter();
  const later = fakeLocalStorage();
  useLocalStorage(later);
  await d.set("rt-2");
  assert.equal(later.getItem("sessiond.refresh_token"), "rt-2");
  assert.equal(store.getItem("sessiond.refresh_token"), null);
});

test("localStorageAdapter without a localStorage: reads null, writes nothing, throws nothing", async () => {
  useLocalStorage(undefined);
  const s = localStorageAdapter();
  assert.equal(await s.get(), null);
  await s.set("rt");
  await s.remove();
  assert.equal(await s.get(), null);
});

test("the cookie-mode session flag: only in a page with localStorage", () => {
  const store = fakeLocalStorage();
  useLocalStorage(store);
  delete globalThis.document;
  assert.equal(hint(), undefined);
  hint(true);
  assert.equal(store.getItem(HINT), null);
  globalThis.document = {};
  assert.equal(hint(), false);
  hint(true);
  assert.equal(store.getItem(HINT), "1");
  assert.equal(hint(), true);
  hint(false);
  assert.equal(hint(), false);
});

test("bearer mode: the refresh token goes to storage, and a new client restores the session from it", async () => {
  const server = fakeSessiond();
  const storage = memoryStorage();
  const first = createClient({ url: "http://sessiond", mode: "bearer", storage, fetch: server.fetchFor("1"), channel: false });
  await first.ready;
  const user = await first.guest();
  const sessionId = first.sessionId;
  const stored = await storage.get();
  assert.equal(stored, server.sessions.get(sessionId).refresh);
  first.dispose();

  const second = createClient({ url: "http://sessiond", mode: "bearer", storage, fetch: server.fetchFor("2"), channel: false });
  const events = [];
  second.onChange((e) => events.push(e));
  try {
    await second.ready;
    assert.equal(second.sessionId, sessionId);
    assert.deepEqual(second.user, user);
    const presented = server.calls.find((c) => c.label === "2" && c.path === "/v1/token/refresh").body;
    assert.deepEqual(presented, { refresh_token: stored });
    // Rotated: the storage holds the successor.
    assert.notEqual(await storage.get(), stored);
    assert.equal(await storage.get(), server.sessions.get(sessionId).refresh);
    await Promise.resolve();
    assert.equal(events[0].type, "initial_session");
    assert.equal(events[0].sessionId, sessionId);
    // The old token is spent: restoring from it again fails and clears the storage.
    await storage.set(stored);
    const third = createClient({ url: "http://sessiond", mode: "bearer", storage, fetch: server.fetchFor("3"), channel: false });
    await third.ready;
    assert.equal(third.signedIn, false);
    assert.equal(await storage.get(), null);
    third.dispose();
  } finally {
    second.dispose();
  }
});

test("bearer mode with an empty storage: no restore request at start", async () => {
  const server = fakeSessiond();
  const client = createClient({ url: "http://sessiond", mode: "bearer", fetch: server.fetchFor(), channel: false });
  const events = recordEvents(client);
  try {
    await client.ready;
    assert.equal(server.calls.length, 0);
    assert.equal(client.signedIn, false);
    assert.equal(await client.getAccessToken(), null);
    assert.deepEqual(events, []);
  } finally {
    client.dispose();
  }
});
