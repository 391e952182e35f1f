/**
 * @sessiond/react: a provider for one `SessiondClient` and a `useSession()` hook that re-renders
 * on its changes (sign-in, refresh, sign-out, also in other tabs).
 */
import { createContext, createElement, useContext, useSyncExternalStore, type ReactNode } from "react";
import type { ChangeType, SessiondClient, User } from "@sessiond/client";

/** What `useSession()` returns. */
export interface Session {
  /** `loading` until the client's start-up restore is over. */
  status: "loading" | "signed_in" | "signed_out";
  user: User | null;
  sessionId: string | null;
  /** The last change (`initial_session`, `restore_failed`, `signed_in`…), null while loading. */
  event: ChangeType | null;
}

interface Store {
  get(): Session;
  subscribe(listener: () => void): () => void;
}

const LOADING: Session = { status: "loading", user: null, sessionId: null, event: null };
const stores = new WeakMap<SessiondClient, Store>();

/** One snapshot per client, replaced on each of its changes (as useSyncExternalStore needs). */
function storeOf(client: SessiondClient): Store {
  let store = stores.get(client);
  if (!store) {
    let session = LOADING;
    const listeners = new Set<() => void>();
    client.onChange(({ type, user, sessionId }) => {
      session = { status: user ? "signed_in" : "signed_out", user, sessionId, event: type };
      for (const listener of [...listeners]) listener();
    });
    store = {
      get: () => session,
      subscribe: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    stores.set(client, store);
  }
  return store;
}

const Context = createContext<SessiondClient | null>(null);

/** Makes `client` available to `useSession()` and `useSessiond()` below it. */
export function SessiondProvider(props: { client: SessiondClient; children?: ReactNode }) {
  storeOf(props.client);
  return createElement(Context.Provider, { value: props.client }, props.children);
}

/** The provider's client (to sign in and out, fetch, open sockets). */
export function useSessiond(): SessiondClient {
  const client = useContext(Context);
  if (!client) throw new Error("@sessiond/react: no <SessiondProvider client={…}> above this component");
  return client;
}

/** The session, re-rendering on every change. */
export function useSession(): Session {
  const store = storeOf(useSessiond());
  return useSyncExternalStore(store.subscribe, store.get, () => LOADING);
}
