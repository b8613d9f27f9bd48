// supasync/react: hooks over a Replica (any ReplicaApi: the browser package's, or a
// native one behind Tauri commands). React is a peer dependency; nothing else is
// added. Every hook reads the replica from <ReplicaProvider>, re-renders only when
// what it returns changed (live queries call back only for a different result), and
// keeps working when the replica moves to another user's database at sign-in.

import { createContext, createElement, useCallback, useContext, useEffect, useState, useSyncExternalStore } from 'react';
import type { ReactNode } from 'react';
import { SupaSyncError } from './types.js';
import type { OutboxEntry, PresenceState, Query, ReplicaApi as Replica, Row, RowView, SelectOptions, SelectResponse, Status, SyncChannel, User } from './types.js';
import { answered, refused, type QueryBuilder } from './query.js';

const ReplicaContext = createContext<Replica | null>(null);

/** Makes `replica` the one the hooks below it use. */
export function ReplicaProvider(props: { replica: Replica; children?: ReactNode }): ReactNode {
  return createElement(ReplicaContext.Provider, { value: props.replica }, props.children);
}

/** The replica of the nearest <ReplicaProvider>. */
export function useReplica(): Replica {
  const r = useContext(ReplicaContext);
  if (!r) throw new SupaSyncError('invalid', 'supasync/react hooks need a <ReplicaProvider replica={db}> above them');
  return r;
}

interface LiveState<T extends Row> {
  key: string;
  rows?: RowView<T>[];
  error?: SupaSyncError;
}

/**
 * The rows of a live query, each with its sync status: `undefined` until the first
 * result, then re-rendered whenever the result changes (any tab's write, or the
 * server's). A failing query throws, for an error boundary to show. A row that did not
 * change is the same object as in the last render, so `React.memo` rows skip it.
 */
export function useLiveQuery<T = Record<string, unknown>>(query: QueryBuilder<T>): SelectResponse<T[]> | undefined;
export function useLiveQuery<T extends Row = Row>(table: string, query?: Query): RowView<T>[] | undefined;
export function useLiveQuery<T extends Row = Row>(table: string | QueryBuilder<T>, query: Query = {}): RowView<T>[] | SelectResponse<T[]> | undefined {
  // One hook or the other: a call site passes a builder or a table name every time.
  if (typeof table !== 'string') return useLiveSelect<T>(table);
  return useLiveRows<T>(table, query);
}

/**
 * The answer of a live `db.from(…)` query (`{ data, error, count, sync }`), as
 * supabase-js shapes it: `undefined` until the first answer, then re-rendered whenever
 * it changes. A refused query comes back with `error` set, not thrown.
 */
function useLiveSelect<T>(builder: QueryBuilder<T>): SelectResponse<T[]> | undefined {
  const db = useReplica();
  const url = builder.url();
  const options = JSON.stringify(builder.selectOptions());
  const key = `${url}\u0000${options}`;
  const [state, setState] = useState<{ key: string; answer?: SelectResponse<T[]> }>({ key });
  // The builder may be a new object on every render: its URL and options say what it asks.
  useEffect(() => {
    let alive = true;
    const stop = db.liveSelect(
      url,
      JSON.parse(options) as SelectOptions,
      (a) => alive && setState({ key, answer: answered<T[]>(a) }),
      (e) => alive && setState({ key, answer: refused<T[]>(e) }),
    );
    return () => {
      alive = false;
      stop();
    };
  }, [db, key, url, options]);
  return state.key === key ? state.answer : undefined;
}

function useLiveRows<T extends Row = Row>(table: string, query: Query = {}): RowView<T>[] | undefined {
  const db = useReplica();
  const key = `${table}\u0000${JSON.stringify(query)}`;
  const [state, setState] = useState<LiveState<T>>({ key });
  useEffect(() => {
    let alive = true;
    const stop = db.live<T>(
      table,
      JSON.parse(key.slice(key.indexOf('\u0000') + 1)) as Query,
      (rows) => alive && setState({ key, rows }),
      (error) => alive && setState({ key, error }),
    );
    return () => {
      alive = false;
      stop();
    };
  }, [db, key, table]);
  if (state.key !== key) return undefined;
  if (state.error) throw state.error;
  return state.rows;
}

/** The sync indicator's data: phase (connecting, catching_up, live, offline…), pending and rejected counts. */
export function useSyncStatus(): Status {
  const db = useReplica();
  const subscribe = useCallback((changed: () => void) => db.onStatus(() => changed()), [db]);
  return useSyncExternalStore(subscribe, () => db.status(), () => db.status());
}

/** Writes the server refused, each with its reason (`rejected`); refreshed as the status changes. */
export function useRejected(): OutboxEntry[] {
  const db = useReplica();
  const status = useSyncStatus();
  const [list, setList] = useState<OutboxEntry[]>([]);
  useEffect(() => {
    let alive = true;
    db.rejected().then(
      (r) => alive && setList(r),
      () => undefined,
    );
    return () => {
      alive = false;
    };
  }, [db, status.rejected, status.pending]);
  return list;
}

/** The signed-in user (undefined when signed out). */
export function useUser(): User | undefined {
  const db = useReplica();
  const subscribe = useCallback((changed: () => void) => db.auth.onChange(() => changed()), [db]);
  return useSyncExternalStore(subscribe, () => db.auth.user(), () => db.auth.user());
}

/** A broadcast and presence channel for as long as the component is mounted. */
export function useChannel(name: string, options: { presenceKey?: string } = {}): SyncChannel | undefined {
  const db = useReplica();
  const [channel, setChannel] = useState<SyncChannel>();
  const presenceKey = options.presenceKey;
  useEffect(() => {
    const c = db.channel(name, presenceKey === undefined ? {} : { presenceKey });
    setChannel(c);
    return () => {
      c.leave();
      setChannel(undefined);
    };
  }, [db, name, presenceKey]);
  return channel;
}

/** Who is present on `channel` (presence key → tracked payloads), kept current. */
export function usePresence(channel: SyncChannel | undefined): PresenceState {
  const [state, setState] = useState<PresenceState>({});
  useEffect(() => (channel ? channel.onPresence(setState) : undefined), [channel]);
  return state;
}

/** Call `callback` for every broadcast on `channel` while mounted (the latest callback is used). */
export function useBroadcast(channel: SyncChannel | undefined, callback: (event: string, payload: unknown) => void): void {
  const [ref] = useState<{ current: typeof callback }>(() => ({ current: callback }));
  ref.current = callback;
  useEffect(() => (channel ? channel.onBroadcast((e, p) => ref.current(e, p)) : undefined), [channel, ref]);
}

/** An object URL for a file of the replica (`<img src>`), offline too: from IndexedDB
 * when kept, else downloaded; `undefined` while it loads or when it cannot be had (the
 * error is the second value). Revoked when the file changes or the component unmounts. */
export function useFileUrl(bucket: string, path: string | null | undefined): [string | undefined, SupaSyncError | undefined] {
  const db = useReplica();
  const [state, setState] = useState<[string | undefined, SupaSyncError | undefined]>([undefined, undefined]);
  useEffect(() => {
    if (!path) {
      setState([undefined, undefined]);
      return;
    }
    let alive = true;
    let made: string | undefined;
    db.files.url(bucket, path).then(
      (url) => {
        made = url;
        if (alive) setState([url, undefined]);
        else db.files.revokeUrl(url);
      },
      (e: unknown) => alive && setState([undefined, e instanceof SupaSyncError ? e : new SupaSyncError('unsupported', String(e))]),
    );
    return () => {
      alive = false;
      if (made) db.files.revokeUrl(made);
    };
  }, [db, bucket, path]);
  return state;
}
