// The replica behind the UI, on the desktop: the same ReplicaApi as the browser
// package's (so the web example's components and the supasync/react hooks run
// unchanged), implemented on the app's Tauri commands and events
// (src-tauri/src/sync_commands.rs), which call supasync-native. Nothing about sync is
// decided here: every call is one command, every update one event.

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { SupaSyncError } from '../../../crates/sdk-wasm/js/src/types';
import { channelHandle, type ChannelEventJson } from '../../../crates/sdk-wasm/js/src/channel-handle';
import { QueryBuilder } from '../../../crates/sdk-wasm/js/src/query';
import type {
  ErrorKind,
  SelectAnswer,
  SelectOptions,
  HistoryEntry,
  FileView,
  FilesApi,
  OutboxEntry,
  Query,
  ReplicaApi,
  Row,
  RowView,
  Settled,
  Status,
  SyncChannel,
  SyncMode,
  User,
} from '../../../crates/sdk-wasm/js/src/types';

export * from '../../../crates/sdk-wasm/js/src/types';

const wrap = SupaSyncError.from;

async function call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw wrap(e);
  }
}

type RowsEvent = { id: number; rows?: RowView[]; answer?: SelectAnswer; error?: { kind: ErrorKind; message: string; code?: string } };
type ChannelEvent = { id: number; event: ChannelEventJson };

// Every window of the app talks to the one native replica in the app's process.
const SHARED: Status['tabs'] = { mode: 'shared' };
const IDLE: Status = { phase: 'paused', mode: { mode: 'realtime' }, pending: 0, rejected: 0, last_sync: {}, last_error: null, leader: true, tabs: SHARED };

class TauriReplica implements ReplicaApi {
  private user?: User;
  private last: Status = IDLE;
  private nextId = 1;
  private closed = false;
  private readonly statusWatchers = new Set<(s: Status) => void>();
  private readonly userWatchers = new Set<(u: User | undefined) => void>();
  private readonly rows = new Map<number, { callback: (rows: RowView[]) => void; onAnswer?: (a: SelectAnswer) => void; onError?: (e: SupaSyncError) => void }>();
  private readonly channelEvents = new Map<number, (ev: ChannelEvent['event']) => void>();
  private readonly unlisten: Array<() => void> = [];

  readonly auth = {
    signUp: (c: { email: string; password: string }) => this.signedIn(call<User | null>('sign_up', c)),
    signIn: (c: { email: string; password: string }) => this.signedIn(call<User | null>('sign_in', c)),
    signOut: async (o: { wipe?: boolean } = {}) => {
      this.setUser((await call<User | null>('sign_out', { wipe: o.wipe ?? false })) ?? undefined);
    },
    user: (): User | undefined => this.user,
    refreshUser: async () => {
      this.setUser((await call<User | null>('user')) ?? undefined);
      return this.user;
    },
    onChange: (callback: (user: User | undefined) => void): (() => void) => {
      this.userWatchers.add(callback);
      callback(this.user);
      return () => void this.userWatchers.delete(callback);
    },
  };

  /** @internal */
  async start(): Promise<void> {
    this.unlisten.push(
      await listen<Status>('supasync://status', (e) => this.publish({ ...e.payload, leader: true, tabs: SHARED })),
      await listen<User | null>('supasync://user', (e) => this.setUser(e.payload ?? undefined)),
      await listen<RowsEvent>('supasync://rows', (e) => {
        const reg = this.rows.get(e.payload.id);
        if (!reg) return;
        if (e.payload.error) reg.onError?.(wrap(e.payload.error));
        else if (e.payload.answer) reg.onAnswer?.(e.payload.answer);
        else reg.callback(e.payload.rows ?? []);
      }),
      await listen<ChannelEvent>('supasync://channel', (e) => this.channelEvents.get(e.payload.id)?.(e.payload.event)),
    );
    this.setUser((await call<User | null>('user')) ?? undefined);
    this.publish({ ...(await call<Omit<Status, 'leader' | 'tabs'>>('status')), leader: true, tabs: SHARED });
  }

  private async signedIn(p: Promise<User | null>): Promise<User> {
    const u = await p;
    if (!u) throw new SupaSyncError('auth', 'signed in, but no user came back');
    this.setUser(u);
    return u;
  }

  private setUser(u: User | undefined): void {
    if (u?.id === this.user?.id) return;
    this.user = u;
    for (const w of this.userWatchers) w(u);
  }

  private publish(s: Status): void {
    this.last = s;
    for (const w of this.statusWatchers) w(s);
  }

  private check(): void {
    if (this.closed) throw new SupaSyncError('closed', 'the replica is closed');
  }

  insert<T extends Row = Row>(table: string, row: T): Promise<RowView<T>> {
    return call('insert', { table, row });
  }

  update<T extends Row = Row>(table: string, localId: string, fields: Partial<T>): Promise<RowView<T>> {
    return call('update', { table, localId, fields });
  }

  delete(table: string, localId: string): Promise<void> {
    return call('delete', { table, localId });
  }

  call<T extends Row = Row>(table: string, localId: string, fn: string, o: { args?: Record<string, unknown>; effect?: Partial<T> } = {}): Promise<RowView<T>> {
    return call('queue_call', { table, localId, function: fn, args: o.args ?? {}, effect: o.effect ?? {} });
  }

  get<T extends Row = Row>(table: string, localId: string): Promise<RowView<T> | null> {
    return call('get', { table, localId });
  }

  query<T extends Row = Row>(table: string, query: Query = {}): Promise<RowView<T>[]> {
    return call('query', { table, query });
  }

  live<T extends Row = Row>(table: string, query: Query, callback: (rows: RowView<T>[]) => void, onError?: (e: SupaSyncError) => void): () => void {
    this.check();
    const id = this.nextId++;
    this.rows.set(id, { callback: callback as (rows: RowView[]) => void, onError });
    call('live_start', { id, table, query }).catch((e: unknown) => {
      this.rows.delete(id);
      onError?.(wrap(e));
    });
    return () => {
      this.rows.delete(id);
      call('live_stop', { id }).catch(() => undefined);
    };
  }

  from<T = Record<string, unknown>>(table: string): QueryBuilder<T> {
    return new QueryBuilder<T>(this, table);
  }

  select(url: string, options: SelectOptions = {}): Promise<SelectAnswer> {
    return call('select', { url, options });
  }

  liveSelect(url: string, options: SelectOptions, callback: (a: SelectAnswer) => void, onError?: (e: SupaSyncError) => void): () => void {
    this.check();
    const id = this.nextId++;
    this.rows.set(id, { callback: () => undefined, onAnswer: callback, onError });
    call('live_select_start', { id, url, options }).catch((e: unknown) => {
      this.rows.delete(id);
      onError?.(wrap(e));
    });
    return () => {
      this.rows.delete(id);
      call('live_stop', { id }).catch(() => undefined);
    };
  }

  async sync(o: { timeoutMs?: number } = {}): Promise<Settled> {
    const settled = await call<Settled>('sync', { timeoutMs: o.timeoutMs ?? 30000 });
    await this.refreshStatus();
    return settled;
  }

  async syncNow(): Promise<void> {
    await call('sync_now');
    await this.refreshStatus();
  }

  private async refreshStatus(): Promise<void> {
    this.publish({ ...(await call<Omit<Status, 'leader' | 'tabs'>>('status')), leader: true, tabs: SHARED });
  }

  status(): Status {
    return this.last;
  }

  onStatus(callback: (s: Status) => void): () => void {
    this.statusWatchers.add(callback);
    callback(this.last);
    return () => void this.statusWatchers.delete(callback);
  }

  rejected(): Promise<OutboxEntry[]> {
    return call('rejected');
  }

  async retry(localId: string): Promise<void> {
    await call('retry', { localId });
    await this.refreshStatus();
  }

  async discard(localId: string): Promise<void> {
    await call('discard', { localId });
    await this.refreshStatus();
  }

  history(o: { limit?: number } = {}): Promise<HistoryEntry[]> {
    return call('history', { limit: o.limit ?? 50 });
  }

  private readonly fileUrls = new Set<string>();

  /** Files, through the app's Rust side (the SQLite replica keeps their bytes). */
  readonly files: FilesApi = {
    upload: async (bucket, path, data, o = {}) => {
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data instanceof Blob ? await data.arrayBuffer() : data);
      const contentType = o.contentType ?? (data instanceof Blob && data.type ? data.type : 'application/octet-stream');
      const f = await call<FileView>('upload_file', { bucket, path, data: Array.from(bytes), contentType });
      await this.refreshStatus();
      return f;
    },
    get: async (bucket, path) => (await call<FileView | null>('file', { bucket, path })) ?? null,
    list: (bucket) => call<FileView[]>('files', { bucket }),
    download: async (bucket, path) => {
      const bytes = await call<ArrayBuffer>('read_file', { bucket, path });
      const known = await call<FileView | null>('file', { bucket, path });
      return new Blob([bytes], { type: known?.content_type ?? 'application/octet-stream' });
    },
    url: async (bucket, path) => {
      const url = URL.createObjectURL(await this.files.download(bucket, path));
      this.fileUrls.add(url);
      return url;
    },
    revokeUrl: (url) => {
      if (this.fileUrls.delete(url)) URL.revokeObjectURL(url);
    },
    remove: async (bucket, path) => {
      await call('remove_file', { bucket, path });
      await this.refreshStatus();
    },
  };

  setMode(mode: SyncMode): void {
    this.check();
    call('set_mode', { mode }).catch(() => undefined);
  }

  pause(): void {
    this.check();
    call('pause').catch(() => undefined);
  }

  resume(): void {
    this.check();
    call('resume').catch(() => undefined);
  }

  channel(name: string, o: { presenceKey?: string } = {}): SyncChannel {
    this.check();
    const id = this.nextId++;
    const joined = call('channel_join', { id, name, presenceKey: o.presenceKey ?? null });
    joined.catch(() => undefined);
    const handle = channelHandle(name, {
      send: async (event, payload) => {
        await joined;
        await call('channel_send', { id, event, payload });
      },
      track: async (payload) => {
        await joined;
        await call('channel_track', { id, payload });
      },
      untrack: async () => {
        await joined;
        await call('channel_untrack', { id });
      },
      leave: () => {
        this.channelEvents.delete(id);
        joined.finally(() => call('channel_leave', { id }).catch(() => undefined));
      },
    });
    this.channelEvents.set(id, (ev) => handle.deliver(ev));
    return handle;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const u of this.unlisten) u();
    for (const id of this.rows.keys()) call('live_stop', { id }).catch(() => undefined);
    this.rows.clear();
  }
}

/** The desktop app's replica (the native one the Rust side opened at start). */
export async function openReplica(): Promise<ReplicaApi> {
  const r = new TauriReplica();
  await r.start();
  return r;
}

/** This device's name among the user's devices (VIRGIL_DEVICE, else "desktop"). */
export function deviceName(): Promise<string> {
  return call('device_name');
}
