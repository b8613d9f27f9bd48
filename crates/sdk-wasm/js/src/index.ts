// supasync for the browser: the public API of the npm package.
//
// A thin layer over the wasm module (crates/sdk-wasm/src/api.rs), which runs the same
// Rust core as the native SDK. What lives here is only what is about the page:
//  - which IndexedDB database holds whose replica (one per project, name and user),
//    and moving to the right one when a user signs in or out;
//  - several tabs of one replica (see tabs.ts): one leads and talks to the server,
//    all write, all see each other's writes;
//  - JavaScript shapes: promises, callbacks, one SupaSyncError class.

import init, { openWasmReplica, deleteDatabase, WasmReplica, WasmChannel, WasmSession } from './wasm/supasync_wasm.js';
import { Tabs } from './tabs.js';
import { channelHandle, type ChannelEventJson } from './channel-handle.js';

export type { Row, RowStatus, RowView, Query, SyncMode, Phase, Status, OutboxEntry, HistoryEntry, Settled, Schema, ErrorKind, User, PresenceState, SyncChannel, ReplicaApi, SelectOptions, SelectAnswer, SelectResponse, SelectReader, RowSync } from './types.js';
export { QueryBuilder } from './query.js';
import { QueryBuilder } from './query.js';
export { SupaSyncError } from './types.js';
import { SupaSyncError } from './types.js';
import type { Row, RowView, Query, SyncMode, Status, OutboxEntry, HistoryEntry, Settled, Schema, User, SyncChannel, ReplicaApi, SelectAnswer, SelectOptions, FileView, FilesApi } from './types.js';

export interface OpenOptions {
  /** The project's URL, e.g. https://xyz.supabase.co */
  url: string;
  anonKey: string;
  schema: Schema | string;
  /** Tells replicas of one project apart (default "default"). */
  name?: string;
  /** Tokens from the app's own auth (supabase-js): `async () => session?.access_token ?? null`. */
  accessToken?: () => Promise<string | null | undefined> | string | null | undefined;
  mode?: SyncMode;
  /** 'indexeddb' (the default in browsers) or 'memory' (tests, SSR, Node). */
  store?: 'indexeddb' | 'memory';
  /** Where the .wasm is, or its bytes, when the default (next to this module) does not fit. */
  wasm?: URL | string | BufferSource | WebAssembly.Module;
  /** Encrypt the replica at rest: 32 bytes of key material, or a WebCrypto key for
   *  HKDF (`crypto.subtle.importKey('raw', bytes, 'HKDF', false, ['deriveKey',
   *  'deriveBits'])`, which may be non-extractable). Each user's database gets its own
   *  keys from it. A plaintext replica is encrypted when first opened with a key; a
   *  wrong key fails with kind `key` and changes nothing. Without it, a tab that finds
   *  its replica encrypted asks the app's other open tabs for the key. A replica in
   *  memory (`store: 'memory'`, or signed out) is not at rest and is not encrypted.
   *  See the README's "Encryption at rest". */
  encryptionKey?: CryptoKey | Uint8Array;
}

const wrap = SupaSyncError.from;

/** How long a tab that finds its replica encrypted, with no key of its own, waits
 *  for another tab to hand it the key. */
const KEY_ASK_MS = 3000;

async function call<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw wrap(e);
  }
}

let wasmReady: Promise<unknown> | undefined;

function loadWasm(source?: OpenOptions['wasm']): Promise<unknown> {
  wasmReady ??= init(source === undefined ? undefined : { module_or_path: source as never });
  return wasmReady;
}

/** The IndexedDB layout this build's store keeps: `SCHEMA_VERSION` in
 *  crates/sdk-wasm/src/store/migrations.rs (scripts/build-npm.sh checks the two agree;
 *  were they not, the store would only lose the head start below). */
const IDB_LAYOUT = 7;

/** A connection to `database` if it exists at this build's layout, opened while the
 *  module compiles; otherwise nothing (the store creates or upgrades it itself: an
 *  upgrade this open would need is aborted, which leaves the database as it was). */
function preopen(database: string): Promise<IDBDatabase | undefined> {
  return new Promise((resolve) => {
    let req: IDBOpenDBRequest;
    try {
      req = indexedDB.open(database, IDB_LAYOUT);
    } catch {
      return resolve(undefined);
    }
    req.onupgradeneeded = () => req.transaction?.abort();
    req.onsuccess = () => {
      const db = req.result;
      // Until the store takes it over: never hold up another tab's upgrade.
      db.onversionchange = () => db.close();
      resolve(db);
    };
    req.onerror = (e) => {
      e.preventDefault();
      resolve(undefined);
    };
    req.onblocked = () => resolve(undefined);
  });
}

function sameSyncTimes(a: Status['last_sync'], b: Status['last_sync']): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function projectKey(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    throw new SupaSyncError('invalid', `url: not a URL: ${url}`);
  }
}

function jwtSubject(token: string): string | undefined {
  try {
    const part = token.split('.')[1] ?? '';
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

function storage(): Storage | undefined {
  try {
    return typeof localStorage === 'undefined' ? undefined : localStorage;
  } catch {
    return undefined;
  }
}

/** The sharing of a replica kept in memory: no other tab can see it. */
/** How long inserts must pause before the counts are read again (see recountSoon). */
const RECOUNT_AFTER_MS = 30;

const IN_MEMORY = { mode: 'alone', reason: 'the replica is kept in memory' } as const;

/** A live query, started again on the new user's replica after a sign-in. */
interface LiveReg {
  begin: (inner: WasmReplica) => () => void;
  stop?: () => void;
}

/** One user's replica in this page. */
export class Replica implements ReplicaApi {
  private inner!: WasmReplica;
  private tabs?: Tabs;
  private closed = false;
  private readonly lives = new Set<LiveReg>();
  private readonly channels = new Set<{ rebind(): void }>();
  private readonly statusWatchers = new Set<(s: Status) => void>();
  private readonly userWatchers = new Set<(u: User | undefined) => void>();
  private last: Status;
  private stopInnerStatus?: () => void;
  /** Count reads (see recount): asked for, covered by the last read, the read under way. */
  private countsAsked = 0;
  private countsRead = 0;
  private counting?: Promise<Omit<Status, 'leader'>>;
  private recountTimer?: ReturnType<typeof setTimeout>;
  /** When the last insert was counted without a read (see recountSoon). */
  private lastInsertAt = 0;
  private user?: User;
  /** Times this tab's IndexedDB connection was reopened after the browser closed it. */
  private reopened?: { count: number; reason: string };

  /** Sign up, in and out (the built-in Auth client; with `accessToken`, supabase-js does this). */
  readonly auth = {
    signUp: (c: { email: string; password: string }) => this.signInWith((r) => r.signUp(c.email, c.password)),
    signIn: (c: { email: string; password: string }) => this.signInWith((r) => r.signIn(c.email, c.password)),
    signOut: (o: { wipe?: boolean } = {}) => this.signOut(o.wipe ?? false),
    /** The signed-in user, if any. */
    user: (): User | undefined => this.user,
    /** With `accessToken`: ask it again and move to the user it names (after the app signed in or out). */
    refreshUser: () => call(() => this.followToken()),
    /** Call `callback` with the user now and whenever it changes; returns stop(). */
    onChange: (callback: (user: User | undefined) => void): (() => void) => {
      this.userWatchers.add(callback);
      callback(this.user);
      return () => void this.userWatchers.delete(callback);
    },
  };

  /** Object URLs handed out by `files.url`, revoked at close. */
  private readonly fileUrls = new Set<string>();

  /** Files in Supabase Storage, in the same outbox as the rows. */
  readonly files: FilesApi = {
    upload: (bucket: string, path: string, data: Blob | ArrayBuffer | Uint8Array, o: { contentType?: string } = {}) =>
      call(async () => {
        this.check();
        const bytes = data instanceof Uint8Array ? data : new Uint8Array(data instanceof Blob ? await data.arrayBuffer() : data);
        const type = o.contentType ?? (data instanceof Blob && data.type ? data.type : 'application/octet-stream');
        return this.written(this.inner.uploadFile(bucket, path, bytes, type) as Promise<FileView>);
      }),
    get: (bucket: string, path: string) =>
      call(async () => {
        this.check();
        return ((await this.inner.file(bucket, path)) as FileView | undefined) ?? null;
      }),
    list: (bucket: string) =>
      call(() => {
        this.check();
        return this.inner.files(bucket) as Promise<FileView[]>;
      }),
    download: (bucket: string, path: string) =>
      call(async () => {
        this.check();
        const bytes = (await this.inner.readFile(bucket, path)) as Uint8Array;
        const known = (await this.inner.file(bucket, path)) as FileView | undefined;
        return new Blob([bytes as BlobPart], { type: known?.content_type ?? 'application/octet-stream' });
      }),
    url: async (bucket: string, path: string) => {
      const url = URL.createObjectURL(await this.files.download(bucket, path));
      this.fileUrls.add(url);
      return url;
    },
    revokeUrl: (url: string) => {
      if (this.fileUrls.delete(url)) URL.revokeObjectURL(url);
    },
    remove: (bucket: string, path: string) =>
      call(() => {
        this.check();
        return this.written(this.inner.removeFile(bucket, path) as Promise<void>);
      }),
  };

  private constructor(private readonly opts: OpenOptions, private readonly key: string, private readonly replicaName: string) {
    this.last = { phase: 'paused', mode: { mode: 'realtime' }, pending: 0, rejected: 0, last_sync: {}, last_error: null, leader: false, tabs: IN_MEMORY };
  }

  /** @internal */
  static async open(opts: OpenOptions): Promise<Replica> {
    if (!opts || typeof opts !== 'object') throw new SupaSyncError('invalid', 'openReplica needs options: { url, anonKey, schema }');
    if (typeof opts.url !== 'string') throw new SupaSyncError('invalid', 'openReplica needs `url`, the project URL');
    if (typeof opts.anonKey !== 'string') throw new SupaSyncError('invalid', 'openReplica needs `anonKey`, the project anon key');
    const wantIdb = (opts.store ?? 'indexeddb') === 'indexeddb';
    if (wantIdb && typeof indexedDB === 'undefined') {
      throw new SupaSyncError(
        'unsupported',
        "IndexedDB is not available here (Node, or a sandboxed frame): pass { store: 'memory' } for an in-memory replica",
      );
    }
    // The module compiles while the user is found and the database and the lead are
    // asked for (see switchTo).
    const wasm = call(() => loadWasm(opts.wasm));
    wasm.catch(() => undefined);
    const r = new Replica(opts, projectKey(opts.url), opts.name ?? 'default');
    await r.switchTo(await r.initialUser(), undefined, wasm);
    r.watchNetwork();
    return r;
  }

  /** When the browser says the network is back, the leading tab syncs at once rather
   *  than at its next retry (which backs off up to 30 s while offline). */
  private watchNetwork(): void {
    const target = globalThis as { addEventListener?: (type: string, f: () => void) => void; removeEventListener?: (type: string, f: () => void) => void };
    if (!target.addEventListener) return;
    const online = () => {
      if (!this.closed && (this.tabs ? this.tabs.leader : true)) this.inner.syncNow().catch(() => undefined);
    };
    target.addEventListener('online', online);
    this.unwatchNetwork = () => target.removeEventListener?.('online', online);
  }

  private unwatchNetwork?: () => void;

  private keyMaterial?: Promise<CryptoKey | undefined>;

  /** The app's key material as a non-extractable HKDF key (imported once: the bytes
   *  are not kept), or undefined when the replica is not encrypted. */
  private encryptionKey(): Promise<CryptoKey | undefined> {
    this.keyMaterial ??= call(async () => {
      const k = this.opts.encryptionKey;
      if (k === undefined || k === null) return undefined;
      if (!(k instanceof Uint8Array)) return k;
      if (k.length !== 32) throw new SupaSyncError('key', `encryptionKey must be 32 bytes, not ${k.length}`);
      if (!globalThis.crypto?.subtle) throw new SupaSyncError('key', 'this page has no WebCrypto (crypto.subtle needs a secure context: https or localhost), so the replica cannot be encrypted');
      return crypto.subtle.importKey('raw', k as BufferSource, 'HKDF', false, ['deriveKey', 'deriveBits']);
    });
    return this.keyMaterial;
  }

  private get persistent(): boolean {
    return (this.opts.store ?? 'indexeddb') === 'indexeddb';
  }

  private activeUserKey(): string {
    return `supasync:${this.key}:${this.replicaName}:user`;
  }

  /** The IndexedDB database of one user's replica. */
  databaseFor(userId: string): string {
    return `supasync:${this.key}:${this.replicaName}:${userId}`;
  }

  private async initialUser(): Promise<string | undefined> {
    if (this.opts.accessToken) {
      const t = await this.opts.accessToken();
      return t ? jwtSubject(t) : undefined;
    }
    return storage()?.getItem(this.activeUserKey()) ?? undefined;
  }

  /** Open the replica of `userId` (or a signed-out one in memory) and move everything to it. */
  private async switchTo(userId: string | undefined, session?: WasmSession, wasm?: Promise<unknown>): Promise<void> {
    const database = this.persistent && userId ? this.databaseFor(userId) : undefined;
    if (this.inner && this.inner.database === database && database) return;
    const old = this.inner;
    const oldTabs = this.tabs;
    this.stopInnerStatus?.();
    for (const l of this.lives) l.stop?.();
    oldTabs?.close();
    old?.close();
    const schema = typeof this.opts.schema === 'string' ? this.opts.schema : JSON.stringify(this.opts.schema);
    // Head starts, while the module compiles: the browser takes some milliseconds to
    // answer a page's first Web Lock request and to open its first database.
    const tabs = database
      ? new Tabs(
          database,
          (status) => this.publishPhase(status),
          () => this.publish(this.last),
        )
      : undefined;
    const connection = database ? preopen(database) : undefined;
    let inner: WasmReplica;
    let key: CryptoKey | undefined;
    const open = async (first: boolean) =>
      openWasmReplica({
        url: this.opts.url,
        anonKey: this.opts.anonKey,
        schema,
        database,
        connection: first ? await connection : undefined,
        accessToken: this.opts.accessToken,
        mode: this.opts.mode,
        // Tabs sharing a database decide who talks to the server.
        network: database === undefined,
        encryptionKey: key,
        userId,
      });
    try {
      key = database ? await this.encryptionKey() : undefined;
      await wasm;
      try {
        inner = await call(() => open(true));
      } catch (e) {
        // Encrypted, and this tab was given no key: another open tab may have it.
        if (!(e instanceof SupaSyncError && e.kind === 'key' && !key && tabs)) throw e;
        key = await tabs.askKey(KEY_ASK_MS);
        if (!key) throw new SupaSyncError('key', `${e.message}; no other open tab of this app had the key`);
        inner = await call(() => open(false));
      }
    } catch (e) {
      tabs?.close();
      (await connection)?.close();
      throw e;
    }
    if (key) tabs?.shareKey(key);
    if (session) await call(() => inner.adoptSession(session));
    this.inner = inner;
    const s: WasmSession | undefined = await call(() => inner.session());
    const before = this.user?.id;
    this.user = s ? { id: s.userId, email: s.email ?? null } : undefined;
    if (before !== this.user?.id) for (const w of this.userWatchers) w(this.user);
    if (this.persistent && !this.opts.accessToken) {
      const st = storage();
      if (this.user) st?.setItem(this.activeUserKey(), this.user.id);
      else st?.removeItem(this.activeUserKey());
    }
    this.tabs = tabs;
    this.reopened = undefined;
    inner.onReopened((r: { count: number; reason: string }) => {
      if (this.inner !== inner) return;
      this.reopened = r;
      this.publish(this.last);
    });
    tabs?.attach(inner);
    this.stopInnerStatus = inner.onStatus((s: Omit<Status, 'leader'>) => {
      if (!this.tabs || this.tabs.leader) this.publishPhase({ ...s, leader: this.tabs ? this.tabs.leader : true });
      if (this.tabs?.leader) this.tabs.shareStatus({ ...s, leader: false });
    });
    for (const l of this.lives) this.startLive(l);
    if (old) for (const c of this.channels) c.rebind();
    // Once open resolves, the status describes this replica: whether this tab leads is
    // decided, and the counts are the store's (read while the lead is decided).
    const counts = this.recount();
    await tabs?.decided;
    await counts;
    const leading = tabs ? tabs.leader : true;
    const now = inner.phaseNow() as Pick<Status, 'phase' | 'mode' | 'last_error'>;
    this.publish({ ...this.last, mode: now.mode, phase: leading ? now.phase : this.last.phase, last_error: leading ? now.last_error : this.last.last_error, leader: leading });
    // A tab that takes over the lead shows itself as leader at once, without the
    // previous leader's restore progress and upload (its own live sync reports them).
    if (tabs && !leading)
      void tabs.leading.then(() => {
        if (this.tabs !== tabs || this.inner !== inner || this.closed) return;
        const { progress: _progress, upload: _upload, ...rest } = this.last;
        const now = inner.phaseNow() as Pick<Status, 'phase' | 'mode' | 'last_error'>;
        this.publish({ ...rest, phase: now.phase, mode: now.mode, last_error: now.last_error, leader: true });
      });
  }

  /** Read the status from the store now (after a write, sync(), retry(), discard()):
   *  the phase as live sync has it where this tab leads, and the counts, from one read. */
  private async refreshStatus(): Promise<void> {
    const s = await this.recount();
    const leading = this.tabs ? this.tabs.leader : true;
    const phase = leading ? s.phase : this.last.phase;
    this.publish({ ...this.last, phase, mode: s.mode, last_error: leading ? s.last_error : this.last.last_error, leader: leading });
  }

  /** The counts (pending, rejected, last sync) as the store holds them now: every write
   *  whose promise resolved before this call is in them. Reads run one at a time, and
   *  only a read that began after every call so far publishes its counts (one that ran
   *  while a write was counted may lack it), so counts never go back to an earlier
   *  state (a status from live sync or another tab, computed before a write, may arrive
   *  after it: only its phase is taken, and the counts are read again). Resolves with
   *  the status read that covered this call. */
  private async recount(): Promise<Omit<Status, 'leader'>> {
    const want = ++this.countsAsked;
    for (;;) {
      if (!this.counting) {
        const covers = this.countsAsked;
        const inner = this.inner;
        this.counting = (async () => {
          const s = (await inner.status()) as Omit<Status, 'leader'>;
          if (covers === this.countsAsked) {
            this.countsRead = Math.max(this.countsRead, covers);
            if (inner === this.inner) this.publish({ ...this.last, pending: s.pending, rejected: s.rejected, last_sync: s.last_sync });
          }
          return s;
        })().finally(() => (this.counting = undefined));
      }
      const s = await this.counting;
      if (this.countsRead >= want) return s;
    }
  }

  /** A status from live sync or the leading tab: its phase now, its counts read again
   *  unless they are the ones shown (then they cannot take the counts back: and a
   *  change from the server, which changes no count, costs no second read). */
  private publishPhase(s: Status): void {
    const same = s.pending === this.last.pending && s.rejected === this.last.rejected && sameSyncTimes(s.last_sync, this.last.last_sync);
    this.publish({ ...s, pending: this.last.pending, rejected: this.last.rejected, last_sync: this.last.last_sync });
    if (!same && !this.closed) this.recount().catch(() => undefined);
  }

  private publish(s: Status): void {
    // What only this tab knows: how it shares the replica, its own IndexedDB connection.
    s = { ...s, tabs: this.tabs ? this.tabs.sharing : IN_MEMORY };
    if (this.reopened) s.reopened = this.reopened;
    else delete s.reopened;
    this.last = s;
    for (const w of this.statusWatchers) w(s);
  }

  /** An insert is counted as soon as it is stored, without a read: under a new local id
   *  it always adds exactly one waiting write. The store's own count follows, read once
   *  the inserts pause (see recountSoon). Keeps an insert as fast as the store's write
   *  alone. */
  private counted(): void {
    this.publish({ ...this.last, pending: this.last.pending + 1 });
    this.recountSoon();
  }

  /** Read the counts when no insert came for a moment: a burst of inserts costs one
   *  read, not one each, and no read transaction stands in the next insert's way (an
   *  IndexedDB write waits for reads of the same stores begun before it). The counts
   *  shown meanwhile are exact already; the read only confirms them. */
  private recountSoon(): void {
    // One timer for a burst, not one re-armed per insert (clearing and setting a
    // browser timer costs an insert tens of microseconds): it notes the last insert's
    // time, and when it fires early it waits out the rest of the pause.
    this.lastInsertAt = performance.now();
    if (this.recountTimer !== undefined) return;
    const wait = (ms: number): void => {
      this.recountTimer = setTimeout(() => {
        const quiet = performance.now() - this.lastInsertAt;
        if (quiet < RECOUNT_AFTER_MS) return wait(RECOUNT_AFTER_MS - quiet);
        this.recountTimer = undefined;
        if (!this.closed) this.recount().catch(() => undefined);
      }, ms);
    };
    wait(RECOUNT_AFTER_MS);
  }

  /** An update, call or delete resolves once the status counts it (read-your-writes):
   *  the core says how the write changed the count of waiting writes (coalesced into
   *  a waiting one: not at all; a new entry: one more; an unsent insert cancelled: one
   *  fewer), so no read is needed, as for an insert; where it cannot say (a cancelled
   *  row's children rejected with it), the counts are read. */
  private async countedWrite<T>(write: Promise<{ view: T; waiting: number | null }>): Promise<T> {
    const inner = this.inner;
    const { view, waiting } = await write;
    if (waiting === null) await this.recount();
    else if (inner === this.inner) {
      if (waiting !== 0) this.publish({ ...this.last, pending: Math.max(0, this.last.pending + waiting) });
      this.recountSoon();
    }
    return view;
  }

  /** A write resolves once the status counts it (read-your-writes). */
  private async written<T>(write: Promise<T>): Promise<T> {
    const v = await write;
    await this.recount();
    return v;
  }

  private async signInWith(f: (r: WasmReplica) => Promise<WasmSession>): Promise<User> {
    this.check();
    const session: WasmSession = await call(() => f(this.inner));
    await this.switchTo(session.userId, session);
    return { id: session.userId, email: session.email ?? null };
  }

  private async signOut(wipe: boolean): Promise<void> {
    this.check();
    const database = this.inner.database;
    await call(() => this.inner.signOut(wipe));
    await this.switchTo(undefined);
    if (wipe && database) await call(() => deleteDatabase(database));
  }

  private async followToken(): Promise<User | undefined> {
    this.check();
    const id = await this.initialUser();
    await this.switchTo(id);
    return this.user;
  }

  private check(): void {
    if (this.closed) throw new SupaSyncError('closed', 'the replica is closed');
  }

  /** Write a new row locally (at once, durable); it is pushed when possible. */
  insert<T extends Row = Row>(table: string, row: T): Promise<RowView<T>> {
    return call(() => {
      this.check();
      const inner = this.inner;
      return inner.insert(table, row).then((v: RowView<T>) => {
        if (inner === this.inner) this.counted();
        return v;
      });
    });
  }

  /** Change some fields of a row (by local id). */
  update<T extends Row = Row>(table: string, localId: string, fields: Partial<T>): Promise<RowView<T>> {
    return call(() => {
      this.check();
      return this.countedWrite<RowView<T>>(this.inner.update(table, localId, fields));
    });
  }

  delete(table: string, localId: string): Promise<void> {
    return call(() => {
      this.check();
      return this.countedWrite<null>(this.inner.delete(table, localId)).then(() => undefined);
    });
  }

  /** Queue a call of a server function on a row (one the SQL kit allows, such as a
   * usage counter): it runs once on the server, in order with the row's writes;
   * `effect` shows at once until the server's result replaces it. */
  call<T extends Row = Row>(table: string, localId: string, fn: string, o: { args?: Record<string, unknown>; effect?: Partial<T> } = {}): Promise<RowView<T>> {
    return call(() => {
      this.check();
      return this.countedWrite<RowView<T>>(this.inner.call(table, localId, fn, o.args ?? {}, o.effect ?? {}));
    });
  }

  get<T extends Row = Row>(table: string, localId: string): Promise<RowView<T> | null> {
    return call(async () => {
      this.check();
      return ((await this.inner.get(table, localId)) as RowView<T> | undefined) ?? null;
    });
  }

  query<T extends Row = Row>(table: string, query: Query = {}): Promise<RowView<T>[]> {
    return call(() => {
      this.check();
      return this.inner.query(table, query);
    });
  }

  /** Call `callback` with the query's rows now and whenever they change; returns stop().
   *  Rows that did not change are the same objects as in the last call: read-only. */
  live<T extends Row = Row>(table: string, query: Query, callback: (rows: RowView<T>[]) => void, onError?: (e: SupaSyncError) => void): () => void {
    this.check();
    const reg: LiveReg = {
      begin: (inner) => inner.live(table, query, callback as (rows: RowView[]) => void, (e: unknown) => onError?.(wrap(e))),
    };
    this.startLive(reg);
    this.lives.add(reg);
    return () => {
      reg.stop?.();
      this.lives.delete(reg);
    };
  }

  private startLive(reg: LiveReg): void {
    try {
      reg.stop = reg.begin(this.inner);
    } catch (e) {
      throw wrap(e);
    }
  }

  /** supabase-js's query builder, answered from the replica:
   * `await db.from('messages').select('*, conversations(title)').eq('role', 'user')`
   * resolves to `{ data, error, count, sync }`; `.live(callback)` keeps answering. */
  from<T = Record<string, unknown>>(table: string): QueryBuilder<T> {
    return new QueryBuilder<T>(this, table);
  }

  /** A query in PostgREST's URL syntax (`conversations?select=title,messages(count)`). */
  select(url: string, options: SelectOptions = {}): Promise<SelectAnswer> {
    return call(() => {
      this.check();
      return this.inner.select(url, options) as Promise<SelectAnswer>;
    });
  }

  /** `select`, live: `callback` with the answer now and whenever it changes; returns stop(). */
  liveSelect(url: string, options: SelectOptions, callback: (a: SelectAnswer) => void, onError?: (e: SupaSyncError) => void): () => void {
    this.check();
    const reg: LiveReg = {
      begin: (inner) => inner.liveSelect(url, options, callback, (e: unknown) => onError?.(wrap(e))),
    };
    this.startLive(reg);
    this.lives.add(reg);
    return () => {
      reg.stop?.();
      this.lives.delete(reg);
    };
  }

  /** Push, then pull, until no write waits or `timeoutMs` passes (as `supasync sync`). */
  sync(o: { timeoutMs?: number } = {}): Promise<Settled> {
    return call(async () => {
      this.check();
      const timeout = o.timeoutMs ?? 30000;
      const settled: Settled =
        this.tabs && !this.tabs.leader ? ((await this.tabs.askLeader('sync', timeout)) as Settled) : await this.inner.sync(timeout);
      await this.refreshStatus();
      return settled;
    });
  }

  /** Push and pull once, now. */
  syncNow(): Promise<void> {
    return call(async () => {
      this.check();
      if (this.tabs && !this.tabs.leader) await this.tabs.askLeader('syncNow', 30000);
      else await this.inner.syncNow();
      await this.refreshStatus();
    });
  }

  /** The latest status (see onStatus). */
  status(): Status {
    return this.last;
  }

  /** Call `callback` with the status now and on every change; returns stop(). */
  onStatus(callback: (s: Status) => void): () => void {
    this.statusWatchers.add(callback);
    callback(this.last);
    return () => this.statusWatchers.delete(callback);
  }

  /** Writes the server refused, each with its reason. */
  rejected(): Promise<OutboxEntry[]> {
    return call(() => {
      this.check();
      return this.inner.rejected();
    });
  }

  /** Queue a refused write again (after fixing what the reason says). */
  retry(localId: string): Promise<void> {
    return call(async () => {
      this.check();
      await this.inner.retry(localId);
      await this.refreshStatus();
    });
  }

  /** Drop a refused write; the row goes back to the server's version. */
  discard(localId: string): Promise<void> {
    return call(async () => {
      this.check();
      await this.inner.discard(localId);
      await this.refreshStatus();
    });
  }

  history(o: { limit?: number } = {}): Promise<HistoryEntry[]> {
    return call(() => {
      this.check();
      return this.inner.history(o.limit ?? 50);
    });
  }

  setMode(mode: SyncMode): void {
    this.check();
    try {
      this.inner.setMode(mode);
    } catch (e) {
      throw wrap(e);
    }
    this.tabs?.tell({ t: 'mode', mode });
  }

  pause(): void {
    this.check();
    this.inner.pause();
    this.tabs?.tell({ t: 'pause' });
  }

  resume(): void {
    this.check();
    this.inner.resume();
    this.tabs?.tell({ t: 'resume' });
  }

  /** A broadcast (acknowledged) and presence channel, e.g. `typing:<conversation>`.
   *  It follows the replica to another user's database at sign-in (rejoined, with
   *  this client's presence tracked again). */
  channel(name: string, o: { presenceKey?: string } = {}): SyncChannel {
    this.check();
    let tracked: Record<string, unknown> | undefined;
    let ch!: WasmChannel;
    const handle = channelHandle(name, {
      send: (event, payload) => call(() => ch.send(event, payload)),
      track: (payload) => {
        tracked = payload;
        return call(() => ch.track(payload));
      },
      untrack: () => {
        tracked = undefined;
        return call(() => ch.untrack());
      },
      leave: () => {
        this.channels.delete(rebindable);
        ch.leave();
      },
    });
    const bind = (): void => {
      try {
        ch = this.inner.channel(name, o.presenceKey);
      } catch (e) {
        throw wrap(e);
      }
      ch.listen((ev: ChannelEventJson) => handle.deliver(ev));
      if (tracked) ch.track(tracked).catch(() => undefined);
    };
    const rebindable = { rebind: bind };
    bind();
    this.channels.add(rebindable);
    return handle;
  }

  /** Whether this tab talks to the server for the replica (one tab per replica does). */
  get isLeader(): boolean {
    return this.tabs ? this.tabs.leader : true;
  }

  /** Stop syncing and release the replica; later calls throw a 'closed' SupaSyncError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.recountTimer !== undefined) clearTimeout(this.recountTimer);
    this.unwatchNetwork?.();
    this.stopInnerStatus?.();
    for (const l of this.lives) l.stop?.();
    this.lives.clear();
    this.statusWatchers.clear();
    for (const url of this.fileUrls) URL.revokeObjectURL(url);
    this.fileUrls.clear();
    this.tabs?.close();
    this.inner.close();
  }
}

/** Open the replica of the signed-in user (or a signed-out one until someone signs in). */
export function openReplica(options: OpenOptions): Promise<Replica> {
  return Replica.open(options);
}
