// The shapes every supasync JavaScript API shares: rows, statuses, errors, channels,
// and `ReplicaApi`, what a replica offers an app. The browser package implements it on
// the wasm core (index.ts); the Tauri example implements it on commands to the native
// SDK; the React hooks (react.ts) take any ReplicaApi, so one UI runs on both.
import type { QueryBuilder } from './query.js';


/** A row as the app and the server see it. */
export type Row = Record<string, unknown>;

/** Where a row stands with the server. */
export type RowStatus =
  | { state: 'synced' }
  | { state: 'pending' }
  | { state: 'syncing' }
  | { state: 'rejected'; reason: string };

/** A row as queries return it (the shape `supasync query` prints). */
export interface RowView<T extends Row = Row> {
  local_id: string;
  row: T;
  status: RowStatus;
}

/** A local query: equality filters, one order (`col`, `col.asc`, `col.desc`), a limit. */
export interface Query {
  where?: Record<string, unknown>;
  order?: string;
  limit?: number;
}

/** How the replica keeps up: Realtime, polling every N ms, or only on syncNow(). */
export type SyncMode = 'realtime' | 'manual' | { everyMs: number };

/** What live sync is doing. */
export type Phase = 'connecting' | 'catching_up' | 'live' | 'polling' | 'paused' | 'offline';

/** A snapshot for the app's sync indicator. */
export interface Status {
  phase: Phase;
  mode: { mode: 'realtime' } | { mode: 'every'; ms: number } | { mode: 'manual' };
  /** Writes waiting to reach the server. */
  pending: number;
  /** Writes the server refused (see rejected()). */
  rejected: number;
  last_sync: Record<string, unknown>;
  /** The last failure, cleared by the next success. */
  last_error: string | null;
  /** Whether this tab is the one talking to the server. */
  leader: boolean;
  /** While a pull brings many rows (a new device's restore): rows so far of `total`. */
  progress?: { table: string; rows: number; total: number | null; done: boolean };
  /** While a file goes to Storage: how many of its bytes are there. */
  upload?: { bucket: string; path: string; sent: number; size: number; done: boolean };
  /** How this tab shares the replica with the app's other tabs: `shared` (one tab talks
   *  to the server, every tab sees the others' writes at once), or `alone`, with why:
   *  the browser lacks (or fails at) Web Locks or BroadcastChannel, so this tab syncs by
   *  itself and sees other tabs' writes when it pulls them from the server; or the
   *  replica is in memory. */
  tabs: { mode: 'shared' } | { mode: 'alone'; reason: string };
  /** Present once the browser closed this tab's IndexedDB connection under the app
   *  (WebKit does so to background tabs) and it was reopened: how many times, and why
   *  the last connection ended. No write is lost or doubled by it. */
  reopened?: { count: number; reason: string };
}

/** A file as the replica knows it. */
export interface FileView {
  bucket: string;
  path: string;
  size: number;
  content_type: string;
  /** `pending` (waiting to upload), `synced` (in Storage) or `rejected` (see `reason`). */
  status: 'pending' | 'synced' | 'rejected';
  reason: string | null;
  /** The bytes are on this device (readable offline). */
  cached: boolean;
}

/** Files in Supabase Storage, in the same outbox as the rows (`db.files`). */
export interface FilesApi {
  /** Keep `data` as `bucket/path` on this device at once and queue its upload; a row
   * naming it (a column the schema declares in `files`) is pushed only after it. */
  upload(bucket: string, path: string, data: Blob | ArrayBuffer | Uint8Array, o?: { contentType?: string }): Promise<FileView>;
  /** What this device knows of a file, or null. */
  get(bucket: string, path: string): Promise<FileView | null>;
  list(bucket: string): Promise<FileView[]>;
  /** The file's bytes as a Blob: from IndexedDB when kept (offline too), else downloaded and kept. */
  download(bucket: string, path: string): Promise<Blob>;
  /** An object URL an `<img>` can show, offline too (kept until `revokeUrl` or close). */
  url(bucket: string, path: string): Promise<string>;
  revokeUrl(url: string): void;
  /** Remove a file here at once, and from Storage by the next push. */
  remove(bucket: string, path: string): Promise<void>;
}

/** A write waiting in the outbox (or refused: then `rejected` says why). */
export interface OutboxEntry {
  seq: number;
  table: string;
  local_id: string;
  op:
    | { op: 'insert'; row: Row }
    | { op: 'update'; fields: Row }
    | { op: 'delete' }
    | { op: 'call'; call_id: string; function: string; args: Record<string, unknown>; effect: Row };
  created_at_ms: number;
  attempts: number;
  last_error: string | null;
  in_flight: boolean;
  rejected: string | null;
  known_unsent: boolean;
}

/** One line of the sync history. */
export interface HistoryEntry {
  id: number;
  at_ms: number;
  kind: string;
  table: string | null;
  rows: number;
  duration_ms: number;
  error: string | null;
  detail: unknown;
}

/** What `sync()` did. */
export interface Settled {
  rounds: Array<{ push: unknown; pull: unknown; error: string | null; waited_ms: number }>;
  status: { signed_in: string | null; pending: number; rejected: number; oldest_pending_ms: number | null; last_sync: Record<string, unknown> };
}

/** The tables to sync, as the CLI's JSON schema file. Omitted fields take the
 * defaults: key `id`, local id `local_id`, owner `user_id`, version `updated_at`. */
export interface Schema {
  tables: Array<{
    name: string;
    key?: string;
    local_id?: string;
    owner?: string;
    version?: string;
    /** column → the synced table it references */
    references?: Record<string, string>;
    indexes?: string[];
    /** The column holding a shared row's scope id (`supasync.share_by` in the SQL kit):
     * rows every member of that scope id reads, fetched when the user joins it and
     * dropped when they leave. */
    shared_by?: string;
    /** column → the Storage bucket whose file the column names (by path): a row is
     * pushed only once the file it names is stored. */
    files?: Record<string, string>;
  }>;
}

/** `key`: an encryption key that does not open the replica (another key, another
 *  user's, none for an encrypted one, or not a key at all). */
export type ErrorKind = 'invalid' | 'store' | 'server' | 'auth' | 'not_found' | 'timeout' | 'closed' | 'unsupported' | 'key';

/** Every failure, with the same kinds as the CLI's JSON errors. */
export class SupaSyncError extends Error {
  readonly kind: ErrorKind;
  /** A refused local query: PostgREST's code (`PGRST200`, `42703`, …), details and hint. */
  readonly code?: string;
  readonly details?: string;
  readonly hint?: string;
  constructor(kind: ErrorKind, message: string, o: { code?: string; details?: string; hint?: string } = {}) {
    super(message);
    this.name = 'SupaSyncError';
    this.kind = kind;
    if (o.code !== undefined) this.code = o.code;
    if (o.details !== undefined) this.details = o.details;
    if (o.hint !== undefined) this.hint = o.hint;
  }

  /** The error as a SupaSyncError: the SDKs' `{kind, message}` objects keep their
   *  kind; anything else is a `store` failure with its message. */
  static from(e: unknown): SupaSyncError {
    if (e instanceof SupaSyncError) return e;
    if (e && typeof e === 'object' && 'kind' in e && 'message' in e) {
      const o = e as { kind: ErrorKind; message: string; code?: string; details?: string; hint?: string };
      return new SupaSyncError(o.kind, o.message, o);
    }
    return new SupaSyncError('store', e instanceof Error ? e.message : String(e));
  }
}

export interface User {
  id: string;
  email: string | null;
}

/** Who is present on a channel: presence key → the payloads tracked under it. */
export type PresenceState = Record<string, unknown[]>;

/** A broadcast and presence channel (acknowledged broadcasts). */
export interface SyncChannel {
  readonly name: string;
  /** Broadcast to the other subscribers; resolves when the server acknowledged it. */
  send(event: string, payload: unknown): Promise<void>;
  /** Call `callback` for every broadcast received; returns stop(). */
  onBroadcast(callback: (event: string, payload: unknown) => void): () => void;
  /** Announce this client's presence (replaces an earlier track). */
  track(payload: Record<string, unknown>): Promise<void>;
  untrack(): Promise<void>;
  /** Call `callback` with who is present, now and on every change; returns stop(). */
  onPresence(callback: (state: PresenceState) => void): () => void;
  /** The latest presence picture. */
  presence(): PresenceState;
  leave(): void;
}

/** What a replica offers an app, whichever SDK underneath (browser or native). */
/** What PostgREST takes as headers: `count: 'exact'`, and one object (`single`, `maybeSingle`). */
export interface SelectOptions {
  count?: boolean;
  cardinality?: 'many' | 'one' | 'maybe_one';
}

/** A sync state per row of an answer: the row's local id and status. */
export interface RowSync {
  local_id: string;
  status: RowStatus;
}

/** A local query's answer: `data` in PostgREST's shape. */
export interface SelectAnswer {
  data: unknown;
  count: number | null;
  sync: RowSync[];
}

/** An awaited `db.from(…)…`, as supabase-js resolves: `error` instead of a rejection. */
export interface SelectResponse<D> {
  data: D | null;
  error: SupaSyncError | null;
  count: number | null;
  sync: RowSync[];
}

/** What `db.from(…)` needs of a replica: queries in PostgREST's URL syntax. */
export interface SelectReader {
  /** A query in PostgREST's URL syntax (`messages?select=*,conversations(title)&role=eq.user`). */
  select(url: string, options?: SelectOptions): Promise<SelectAnswer>;
  /** `select`, live: `callback` now and whenever the answer changes; returns stop(). */
  liveSelect(url: string, options: SelectOptions, callback: (a: SelectAnswer) => void, onError?: (e: SupaSyncError) => void): () => void;
}

export interface ReplicaApi extends SelectReader {
  /** supabase-js's builder over the replica: `db.from('messages').select('*, conversations(title)').eq('role', 'user')`. */
  from<T = Record<string, unknown>>(table: string): QueryBuilder<T>;
  readonly auth: {
    signUp(c: { email: string; password: string }): Promise<User>;
    signIn(c: { email: string; password: string }): Promise<User>;
    signOut(o?: { wipe?: boolean }): Promise<void>;
    /** The signed-in user, if any. */
    user(): User | undefined;
    /** Ask the app's token source again and move to the user it names. */
    refreshUser(): Promise<User | undefined>;
    /** Call `callback` with the user now and whenever it changes; returns stop(). */
    onChange(callback: (user: User | undefined) => void): () => void;
  };
  insert<T extends Row = Row>(table: string, row: T): Promise<RowView<T>>;
  update<T extends Row = Row>(table: string, localId: string, fields: Partial<T>): Promise<RowView<T>>;
  delete(table: string, localId: string): Promise<void>;
  /** Queue a call of a server function on a row (one the SQL kit allows, such as a
   * usage counter): it runs once on the server, in order with the row's writes;
   * `effect` shows at once until the server's result replaces it. */
  call<T extends Row = Row>(table: string, localId: string, fn: string, o?: { args?: Record<string, unknown>; effect?: Partial<T> }): Promise<RowView<T>>;
  get<T extends Row = Row>(table: string, localId: string): Promise<RowView<T> | null>;
  query<T extends Row = Row>(table: string, query?: Query): Promise<RowView<T>[]>;
  /** Call `callback` with the query's rows now and whenever they change; returns stop(). */
  live<T extends Row = Row>(table: string, query: Query, callback: (rows: RowView<T>[]) => void, onError?: (e: SupaSyncError) => void): () => void;
  sync(o?: { timeoutMs?: number }): Promise<Settled>;
  syncNow(): Promise<void>;
  status(): Status;
  onStatus(callback: (s: Status) => void): () => void;
  rejected(): Promise<OutboxEntry[]>;
  retry(localId: string): Promise<void>;
  discard(localId: string): Promise<void>;
  history(o?: { limit?: number }): Promise<HistoryEntry[]>;
  setMode(mode: SyncMode): void;
  pause(): void;
  resume(): void;
  channel(name: string, o?: { presenceKey?: string }): SyncChannel;
  /** Files in Storage, in the same outbox as the rows. */
  readonly files: FilesApi;
  close(): Promise<void>;
}
