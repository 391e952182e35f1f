// Unit tests (no sessiond binary): what tabs tell each other (src/tabs.ts), with two clients on a
// fake BroadcastChannel and one fake cookie jar, as two tabs of one browser.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { createClient } from "@sessiond/client";
import { channelName, parseMessage } from "../dist/esm/tabs.js";
import { FakeChannel, fakeSessiond, recordEvents, settle } from "./fakes.js";

let restoreChannel;
beforeEach(() => {
  restoreChannel = FakeChannel.install();
});
afterEach(() => restoreChannel());

/** Two tabs of one browser (cookie mode: the jar is the fake sessiond's, shared by both). */
function twoTabs() {
  const server = fakeSessiond({ mode: "cookie" });
  const tab = (label) => {
    const client = createClient({ url: "http://sessiond", fetch: server.fetchFor(label), restore: false });
    return { client, events: recordEvents(client) };
  };
  return { server, a: tab("a"), b: tab("b") };
}

test("parseMessage: exactly our two messages, nothing else posted on the channel", () => {
  const signedIn = { type: "signed_in", sessionId: "s-1", guest: true };
  const signedOut = { type: "signed_out", sessionId: null, reason: "logout" };
  assert.deepEqual(parseMessage(signedIn), signedIn);
  assert.deepEqual(parseMessage(signedOut), signedOut);
  for (const other of [
    null, "signed_in", 42, {},
    { ...signedIn, accessToken: "at" },
    { type: "signed_in", sessionId: 1, guest: true },
    { type: "signed_in", sessionId: "s", guest: "yes" },
    { type: "signed_out", sessionId: "s", reason: 1 },
    { type: "refreshed", sessionId: "s", guest: true },
  ]) {
    assert.equal(parseMessage(other), null, JSON.stringify(other));
  }
});

test("channelName: the option wins; else shared sessions get sessiond:<url>, unshared ones none", () => {
  assert.equal(channelName("mine", "http://s", true), "mine");
  assert.equal(channelName(false, "http://s", true), false);
  assert.equal(channelName(undefined, "http://s", true), "sessiond:http://s");
  assert.equal(channelName(undefined, "http://s", false), false);
});

test("a sign-in in one tab: the other refreshes once for its own token, no token crosses the channel", async () => {
  const { server, a, b } = twoTabs();
  try {
    await Promise.all([a.client.ready, b.client.ready]);
    await a.client.guest();
    // B hears of it and refreshes; after that its access token needs no further request.
    await b.client.whenSignedIn();
    const token = await b.client.getAccessToken();
    await settle();
    assert.equal(b.client.sessionId, a.client.sessionId);
    assert.equal(server.count("/v1/token/refresh", "b"), 1);
    assert.equal(server.count("/v1/token/refresh", "a"), 0);
    assert.equal(token, b.client.getSession().accessToken);
    assert.notEqual(token, a.client.getSession().accessToken);
    assert.deepEqual(b.events.map((e) => [e.type, e.remote]), [["signed_in", true]]);
    // A did not hear back from B's refresh (B was following, so it says nothing).
    assert.deepEqual(a.events.map((e) => e.type), ["signed_in"]);
    const said = FakeChannel.posted.map((m) => m.data);
    assert.deepEqual(said, [{ type: "signed_in", sessionId: a.client.sessionId, guest: true }]);
    assert.ok(!JSON.stringify(said).includes("at-"), "an access token went over the channel");
    assert.equal(FakeChannel.posted[0].name, "sessiond:http://sessiond");
  } finally {
    a.client.dispose();
    b.client.dispose();
  }
});

test("a sign-out in one tab signs the other out without a request of its own", async () => {
  const { server, a, b } = twoTabs();
  try {
    await a.client.guest();
    await b.client.whenSignedIn();
    await settle();
    const sessionId = a.client.sessionId;
    const before = server.calls.filter((c) => c.label === "b").length;
    await a.client.signOut();
    await settle();
    assert.equal(b.client.signedIn, false);
    assert.deepEqual(b.events.at(-1), { type: "signed_out", user: null, sessionId, remote: true, reason: "logout" });
    assert.equal(server.calls.filter((c) => c.label === "b").length, before);
    assert.equal(server.sessions.get(sessionId).revoked, true);
  } finally {
    a.client.dispose();
    b.client.dispose();
  }
});

test("a sign-out for another session, or a message that is not ours, leaves a tab signed in", async () => {
  const { a, b } = twoTabs();
  const stranger = new FakeChannel("sessiond:http://sessiond");
  try {
    await a.client.guest();
    await b.client.whenSignedIn();
    stranger.postMessage({ type: "signed_out", sessionId: "s-other", reason: "logout" });
    stranger.postMessage({ type: "signed_out", sessionId: null, reason: "logout", extra: true });
    await settle();
    assert.equal(a.client.signedIn, true);
    assert.equal(b.client.signedIn, true);
    // The same message without the extra field and for every session is obeyed.
    stranger.postMessage({ type: "signed_out", sessionId: null, reason: "logout" });
    await settle();
    assert.equal(a.client.signedIn, false);
    assert.equal(b.client.signedIn, false);
  } finally {
    stranger.close();
    a.client.dispose();
    b.client.dispose();
  }
});

test("a disposed client closes its channel and hears nothing more", async () => {
  const { a, b } = twoTabs();
  b.client.dispose();
  try {
    await a.client.guest();
    await settle();
    assert.equal(b.client.signedIn, false);
    assert.deepEqual(b.events, []);
  } finally {
    a.client.dispose();
  }
});
