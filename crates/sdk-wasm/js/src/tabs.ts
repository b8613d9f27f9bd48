// Several tabs, one replica, no SharedWorker.
//
// Every tab opens the same IndexedDB database and writes to it directly: a write is
// durable in the tab that made it before its promise resolves, whichever tab leads,
// online or not. Read-then-write steps are serialised across tabs by the writer Web
// Lock the wasm side takes (crates/sdk-wasm/src/web_lock.rs).
//
// One tab leads: it holds the Web Lock `supasync-lead:<database>` and is the only one
// that pushes, pulls and listens on Realtime. The others wait in the lock's queue;
// when the leader closes or crashes the browser hands the lock to the next at once.
//
// A BroadcastChannel per database carries the rest: every tab announces its changes
// (the leader's include what arrived from the server), so live queries everywhere
// re-run, and the leader pushes what the others wrote; the leader shares its status;
// the others ask it to sync when the app calls sync() or syncNow() there. A leader that
// has heard from no other tab (the usual case: one tab) posts none of its changes or
// statuses, saving each write a cross-process message; every tab says hello once its
// replica is open, and the first message a quiet leader hears makes it announce every
// table once, so a tab that read before then reads again.
//
// Without Web Locks or BroadcastChannel (older engines, some embedded webviews), or
// when they fail, tabs cannot agree on a leader or hear each other: each tab then works
// alone (it leads itself, and sees other tabs' writes when it pulls them back from the
// server), and the status says so (`tabs: { mode: 'alone', reason }`). Two tabs
// pushing the same write stay exactly-once: an insert is keyed by its local id on the
// server (`ignore-duplicates`), an update or delete sets the same values twice.

import type { WasmReplica } from './wasm/supasync_wasm.js';
import type { Status } from './index.js';

type Message =
  | { t: 'changed'; tables: string[]; local: boolean }
  | { t: 'status'; status: Status }
  | { t: 'hello' }
  | { t: 'ask'; id: string; what: 'sync' | 'syncNow'; timeoutMs: number }
  | { t: 'answer'; id: string; ok: boolean; value?: unknown; error?: unknown }
  | { t: 'mode'; mode: unknown }
  | { t: 'pause' }
  | { t: 'resume' }
  | { t: 'key?'; id: string }
  | { t: 'key'; id: string; key: CryptoKey };

interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal; ifAvailable?: boolean }, callback: (lock: unknown) => Promise<void>): Promise<void>;
}

function lockManager(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks;
}

/** How this tab shares its replica with the app's other tabs (see `Status.tabs`). */
export type Sharing = { mode: 'shared' } | { mode: 'alone'; reason: string };

export class Tabs {
  leader = false;
  /** `alone` once Web Locks or BroadcastChannel are found missing or failing. */
  sharing: Sharing = { mode: 'shared' };
  private closed = false;
  private inner?: WasmReplica;
  private readonly bc?: BroadcastChannel;
  private readonly abort = new AbortController();
  private release?: () => void;
  private lastShared?: Status;
  private becameLeader!: () => void;
  /** Resolves when this tab leads (it may be asked before the lock is granted). */
  readonly leading = new Promise<void>((resolve) => (this.becameLeader = resolve));
  private settle!: () => void;
  /** Resolves once it is known whether this tab leads now: it took the free lock (and
   *  leads), or another tab holds it (this one queues for it and follows meanwhile). */
  readonly decided = new Promise<void>((resolve) => (this.settle = resolve));
  private attachTo!: (attached: boolean) => void;
  /** Resolves with true once the replica is open here, false if it closed first. */
  private readonly attached = new Promise<boolean>((resolve) => (this.attachTo = resolve));
  private readonly waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  /** The encryption key this tab's replica is open with, for tabs that ask for it. */
  private key?: CryptoKey;
  /** Whether a message from another tab of this database has arrived here. */
  private heardOthers = false;
  /** A leading tab that has heard no other tab skips its announcements (a post costs
   *  every write a cross-process message, ~60 µs in Chromium); this says one was
   *  skipped, so the first tab it hears from is told to read everything again. */
  private unsaid = false;

  /** Asks for the lead at once, before the replica is open (the Web Lock's first
   *  request takes the browser some milliseconds, which then overlap the wasm module's
   *  compile); leading starts once {@link attach} gives the replica. */
  constructor(database: string, private readonly onStatus: (s: Status) => void, private readonly onSharing: (s: Sharing) => void) {
    const locks = lockManager();
    let bc: BroadcastChannel | undefined;
    let missing: string | undefined;
    if (typeof BroadcastChannel === 'undefined') missing = 'this browser has no BroadcastChannel';
    else {
      try {
        bc = new BroadcastChannel(`supasync:${database}`);
      } catch (e) {
        missing = `BroadcastChannel failed: ${describe(e)}`;
      }
    }
    if (!locks) missing ??= 'this browser has no Web Locks (navigator.locks; an insecure context?)';
    if (missing) {
      bc?.close();
      this.workAlone(missing);
      return;
    }
    this.bc = bc;
    if (this.bc) this.bc.onmessage = (e: MessageEvent<Message>) => this.receive(e.data);
    if (!locks) return;
    const name = `supasync-lead:${database}`;
    const hold = async (): Promise<void> => {
      if (!(await this.attached) || this.closed) return this.settle();
      await this.lead();
      this.settle();
      await new Promise<void>((resolve) => (this.release = resolve));
    };
    // First ask for the lock only if it is free, so that opening decides at once; if
    // another tab holds it, queue for it and follow until it is handed over.
    locks
      .request(name, { ifAvailable: true }, async (lock) => {
        if (this.closed) return this.settle();
        if (lock) return hold();
        this.settle();
        locks
          .request(name, { signal: this.abort.signal }, async () => {
            if (!this.closed) await hold();
          })
          .catch((e: unknown) => {
            // Aborted: this tab closed before it led. Anything else: locks fail here.
            if (!this.closed) this.workAlone(`Web Locks failed: ${describe(e)}`);
          });
      })
      .catch((e: unknown) => {
        if (!this.closed) this.workAlone(`Web Locks failed: ${describe(e)}`);
      });
  }

  /** Stop sharing: this tab leads itself from now on (once the replica is open). */
  private workAlone(reason: string): void {
    if (this.sharing.mode === 'alone') return;
    this.sharing = { mode: 'alone', reason };
    this.bc?.close();
    this.onSharing(this.sharing);
    void this.attached.then((ok) => (ok && !this.closed && !this.leader ? this.lead() : undefined)).finally(this.settle);
  }

  /** The replica is open: follow the other tabs' changes, and lead if the lock is ours. */
  attach(inner: WasmReplica): void {
    this.inner = inner;
    inner.onChange((c: { tables: string[]; local: boolean }) => this.tell({ t: 'changed', tables: c.tables, local: c.local }));
    this.attachTo(true);
    this.tell({ t: 'hello' });
  }

  private async lead(): Promise<void> {
    await this.inner?.setNetwork(true);
    this.leader = true;
    // The tab that led before may have stored writes (its push's confirmations, say)
    // and closed before it told anyone: every tab reads its live queries and counts
    // again, from the store, which has them.
    const tables = this.inner?.tableNames() ?? [];
    this.inner?.changedElsewhere(tables, true);
    this.tell({ t: 'changed', tables, local: true });
    this.becameLeader();
  }

  /** Post to the other tabs. A leader that has heard from no other tab keeps its
   *  changes and status to itself until it does (see {@link heard}). */
  tell(m: Message): void {
    if (this.closed || this.sharing.mode === 'alone') return;
    if (this.leader && !this.heardOthers && (m.t === 'changed' || m.t === 'status')) {
      this.unsaid = true;
      return;
    }
    try {
      this.bc?.postMessage(m);
    } catch (e) {
      this.workAlone(`BroadcastChannel failed: ${describe(e)}`);
    }
  }

  /** The leader's status, for the other tabs' indicators. */
  shareStatus(s: Status): void {
    this.lastShared = s;
    this.tell({ t: 'status', status: s });
  }

  /** Another tab spoke. Every tab says `hello` once its replica is open, before it
   *  can have missed anything: a change this leader did not announce was stored before
   *  the hello arrived here, so one announcement of every table now, after it, reaches
   *  that tab's live queries whichever way its reads and this leader's writes raced. */
  private heard(): void {
    if (this.heardOthers) return;
    this.heardOthers = true;
    if (!this.unsaid || !this.inner) return;
    this.unsaid = false;
    this.tell({ t: 'changed', tables: this.inner.tableNames(), local: true });
    if (this.lastShared) this.tell({ t: 'status', status: this.lastShared });
  }

  private receive(m: Message): void {
    if (this.sharing.mode === 'alone') return;
    this.heard();
    // The key handshake runs before the asking tab's replica is open.
    if (m.t === 'key?') {
      if (this.key && this.inner && !this.closed) this.tell({ t: 'key', id: m.id, key: this.key });
      return;
    }
    if (m.t === 'key') {
      this.waiting.get(m.id)?.resolve(m.key);
      this.waiting.delete(m.id);
      return;
    }
    // Before the replica is open here there is nothing to follow, and this tab cannot
    // lead (answers to its own questions are all it could wait for, and it asks none).
    const inner = this.inner;
    if (this.closed || !inner) return;
    switch (m.t) {
      case 'changed':
        inner.changedElsewhere(m.tables, m.local);
        break;
      case 'status':
        if (!this.leader) this.onStatus({ ...m.status, leader: false });
        break;
      case 'hello':
        if (this.leader && this.lastShared) this.tell({ t: 'status', status: this.lastShared });
        break;
      case 'ask':
        if (this.leader) void this.answer(m.id, m.what, m.timeoutMs);
        break;
      case 'answer': {
        const w = this.waiting.get(m.id);
        if (!w) break;
        this.waiting.delete(m.id);
        if (m.ok) w.resolve(m.value);
        else w.reject(m.error);
        break;
      }
      case 'mode':
        inner.setMode(m.mode);
        break;
      case 'pause':
        inner.pause();
        break;
      case 'resume':
        inner.resume();
        break;
    }
  }

  private async answer(id: string, what: 'sync' | 'syncNow', timeoutMs: number): Promise<void> {
    const inner = this.inner as WasmReplica;
    try {
      const value = what === 'sync' ? await inner.sync(timeoutMs) : await inner.syncNow();
      this.tell({ t: 'answer', id, ok: true, value });
    } catch (error) {
      this.tell({ t: 'answer', id, ok: false, error });
    }
  }

  /** Have the leading tab run `what` (this one, if it comes to lead first); fails
   *  with a timeout if no tab answers in time. */
  async askLeader(what: 'sync' | 'syncNow', timeoutMs: number): Promise<unknown> {
    const id = crypto.randomUUID();
    const asked = this.ask(id, what, timeoutMs);
    const first = await Promise.race([asked.then((v) => ({ v })), this.leading.then(() => undefined)]);
    if (first) return first.v;
    this.waiting.delete(id);
    const inner = this.inner as WasmReplica;
    return what === 'sync' ? inner.sync(timeoutMs) : inner.syncNow();
  }

  private ask(id: string, what: 'sync' | 'syncNow', timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.waiting.delete(id)) reject({ kind: 'timeout', message: `no tab answered ${what} within ${timeoutMs + 2000} ms` });
      }, timeoutMs + 2000);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.tell({ t: 'ask', id, what, timeoutMs });
    });
  }

  /** Hand `key` to tabs of this database that open without one (see {@link askKey}). */
  shareKey(key: CryptoKey): void {
    this.key = key;
  }

  /** The encryption key from another open tab of this database (a CryptoKey crosses
   *  BroadcastChannel as itself, non-extractable as it was), or undefined if none
   *  answers within `timeoutMs`. */
  askKey(timeoutMs: number): Promise<CryptoKey | undefined> {
    if (this.sharing.mode === 'alone' || !this.bc) return Promise.resolve(undefined);
    const id = crypto.randomUUID();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (k) => {
          clearTimeout(timer);
          resolve(k as CryptoKey);
        },
        reject: () => {
          clearTimeout(timer);
          resolve(undefined);
        },
      });
      this.tell({ t: 'key?', id });
    });
  }

  close(): void {
    this.closed = true;
    this.attachTo(false);
    this.abort.abort();
    this.release?.();
    this.bc?.close();
    for (const w of this.waiting.values()) w.reject({ kind: 'closed', message: 'the replica is closed' });
    this.waiting.clear();
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
