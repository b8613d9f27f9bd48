// db.from(table): supabase-js's query builder, answered from the replica.
//
// Porting a screen from Supabase should mean changing `supabase.from(…)` to
// `db.from(…)`. The builder writes PostgREST's query string exactly as postgrest-js
// does, and the Rust core parses it with the same parser the dev server uses, so the
// builder, a URL given to `db.select(url)`, and every other platform mean one thing.
// Awaited, it resolves like supabase-js (`{ data, error, count }`, never a rejected
// promise for a refused query), plus `sync`: each row's local id and sync status.

import { SupaSyncError } from './types.js';
import type { SelectAnswer, SelectOptions, SelectReader, SelectResponse } from './types.js';

type Value = string | number | boolean | null;

/** A value in a list or a logic tree: quoted when it holds what those split on. */
function listItem(v: Value): string {
  const s = String(v);
  return /[,()":]/.test(s) || s.trim() !== s ? `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : s;
}

/** A query of one table, built as with supabase-js. */
export class QueryBuilder<T = Record<string, unknown>> implements PromiseLike<SelectResponse<T[]>> {
  private columns = '*';
  private readonly params: [string, string][] = [];
  private options: SelectOptions = {};
  private head = false;

  constructor(
    private readonly db: SelectReader,
    readonly table: string,
  ) {}

  /**
   * The columns and embeds (`'id, title, messages(count)'`); `{ count: 'exact' }` also
   * counts, and `head: true` answers the count alone (`data` is null), as supabase-js.
   */
  select(columns = '*', o: { count?: 'exact'; head?: boolean } = {}): this {
    let quoted = false;
    this.columns = [...columns]
      .filter((c) => {
        if (c === '"') quoted = !quoted;
        return quoted || !/\s/.test(c);
      })
      .join('');
    if (o.count) this.options = { ...this.options, count: true };
    this.head = o.head === true;
    return this;
  }

  /** Any filter, as PostgREST spells it: `filter('title', 'ilike', '*trip*')`. */
  filter(column: string, op: string, value: Value): this {
    this.params.push([column, `${op}.${value}`]);
    return this;
  }
  not(column: string, op: string, value: Value): this {
    return this.filter(column, `not.${op}`, value);
  }
  eq(column: string, value: Value): this {
    return this.filter(column, 'eq', value);
  }
  neq(column: string, value: Value): this {
    return this.filter(column, 'neq', value);
  }
  gt(column: string, value: Value): this {
    return this.filter(column, 'gt', value);
  }
  gte(column: string, value: Value): this {
    return this.filter(column, 'gte', value);
  }
  lt(column: string, value: Value): this {
    return this.filter(column, 'lt', value);
  }
  lte(column: string, value: Value): this {
    return this.filter(column, 'lte', value);
  }
  like(column: string, pattern: string): this {
    return this.filter(column, 'like', pattern);
  }
  ilike(column: string, pattern: string): this {
    return this.filter(column, 'ilike', pattern);
  }
  is(column: string, value: null | boolean): this {
    return this.filter(column, 'is', value === null ? 'null' : String(value));
  }
  in(column: string, values: Value[]): this {
    return this.filter(column, 'in', `(${values.map(listItem).join(',')})`);
  }
  /** JSON containment: the column holds `value`. */
  contains(column: string, value: unknown): this {
    return this.filter(column, 'cs', Array.isArray(value) ? `{${value.map((v) => listItem(v as Value)).join(',')}}` : JSON.stringify(value));
  }
  /** JSON containment: `value` holds the column. */
  containedBy(column: string, value: unknown): this {
    return this.filter(column, 'cd', Array.isArray(value) ? `{${value.map((v) => listItem(v as Value)).join(',')}}` : JSON.stringify(value));
  }
  /** Every column equal to the value given for it. */
  match(query: Record<string, Value>): this {
    for (const [k, v] of Object.entries(query)) this.eq(k, v);
    return this;
  }
  /** `or('role.eq.user,content.ilike.*hi*')`; `referencedTable` filters an embed's rows. */
  or(filters: string, o: { referencedTable?: string } = {}): this {
    this.params.push([o.referencedTable ? `${o.referencedTable}.or` : 'or', `(${filters})`]);
    return this;
  }
  /** Called again, it adds a term. `referencedTable` orders an embed's rows. */
  order(column: string, o: { ascending?: boolean; nullsFirst?: boolean; referencedTable?: string } = {}): this {
    const key = o.referencedTable ? `${o.referencedTable}.order` : 'order';
    let term = `${column}.${o.ascending === false ? 'desc' : 'asc'}`;
    if (o.nullsFirst !== undefined) term += o.nullsFirst ? '.nullsfirst' : '.nullslast';
    const at = this.params.find(([k]) => k === key);
    if (at) at[1] += `,${term}`;
    else this.params.push([key, term]);
    return this;
  }
  limit(n: number, o: { referencedTable?: string } = {}): this {
    return this.page(o.referencedTable, undefined, n);
  }
  /** Rows `from` to `to`, both included, counted from 0. */
  range(from: number, to: number, o: { referencedTable?: string } = {}): this {
    return this.page(o.referencedTable, from, to - from + 1);
  }
  private page(table: string | undefined, offset: number | undefined, limit: number): this {
    const prefix = table ? `${table}.` : '';
    for (const k of [`${prefix}limit`, ...(offset === undefined ? [] : [`${prefix}offset`])]) {
      const i = this.params.findIndex(([p]) => p === k);
      if (i >= 0) this.params.splice(i, 1);
    }
    if (offset !== undefined) this.params.push([`${prefix}offset`, String(offset)]);
    this.params.push([`${prefix}limit`, String(limit)]);
    return this;
  }
  /** Exactly one row: `data` is that object, else `error` (PGRST116). */
  single(): PromiseLike<SelectResponse<T>> & { live(cb: (r: SelectResponse<T>) => void): () => void } {
    this.options = { ...this.options, cardinality: 'one' };
    return this as unknown as PromiseLike<SelectResponse<T>> & { live(cb: (r: SelectResponse<T>) => void): () => void };
  }
  /** At most one row: `data` is that object or null. */
  maybeSingle(): PromiseLike<SelectResponse<T | null>> & { live(cb: (r: SelectResponse<T | null>) => void): () => void } {
    this.options = { ...this.options, cardinality: 'maybe_one' };
    return this as unknown as PromiseLike<SelectResponse<T | null>> & { live(cb: (r: SelectResponse<T | null>) => void): () => void };
  }

  /** The query as PostgREST's URL takes it after `/rest/v1/`. */
  url(): string {
    // `head`: no rows are built at all (the count still covers every row).
    const params = this.head ? [...this.params.filter(([k]) => k !== 'limit' && k !== 'offset'), ['limit', '0']] : this.params;
    const q = new URLSearchParams([['select', this.columns], ...params]);
    return `${this.table}?${q.toString()}`;
  }

  /** The options PostgREST takes as headers (count, one object). */
  selectOptions(): SelectOptions {
    return { ...this.options };
  }

  then<R1 = SelectResponse<T[]>, R2 = never>(
    onfulfilled?: ((value: SelectResponse<T[]>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): PromiseLike<R1 | R2> {
    const run = this.db.select(this.url(), this.options).then(
      (a) => answered<T[]>(a, this.head),
      (e: unknown) => refused<T[]>(e),
    );
    return run.then(onfulfilled, onrejected);
  }

  /** `callback` with the answer now and whenever it changes; returns stop(). Rows
   *  that did not change are the same objects as in the last answer: read-only. */
  live(callback: (r: SelectResponse<T[]>) => void): () => void {
    try {
      return this.db.liveSelect(
        this.url(),
        this.options,
        (a) => callback(answered<T[]>(a, this.head)),
        (e) => callback(refused<T[]>(e)),
      );
    } catch (e) {
      callback(refused<T[]>(e));
      return () => undefined;
    }
  }
}

/** An answer as supabase-js resolves it (`head`: the count alone, data null). */
export function answered<D>(a: SelectAnswer, head = false): SelectResponse<D> {
  if (head) return { data: null as D, error: null, count: a.count, sync: [] };
  return { data: a.data as D, error: null, count: a.count, sync: a.sync };
}

/** A refusal as supabase-js resolves it (`error` set, never thrown). */
export function refused<D>(e: unknown): SelectResponse<D> {
  return { data: null, error: SupaSyncError.from(e), count: null, sync: [] };
}
