-- supasync's SQL kit: what an app applies once to its Supabase database (SQL editor or a
-- migration) so that tables can sync. Idempotent: applying it again changes nothing.
-- Works on hosted Supabase (PostgreSQL 15+, no superuser-only features).
--
--   select supasync.enable_sync('public.messages');                 -- owner column user_id
--   select supasync.enable_sync('public.documents', 'owner_id');
--
-- What enable_sync gives a table:
-- * `updated_at timestamptz`, set by the server on every insert and update (the version
--   the SDK shows and the last-write-wins order).
-- * `sync_txid bigint`, the id of the transaction that last wrote the row. A pull first
--   asks `public.supasync_snapshot()` for {xmin, xmax, xip}: every transaction below
--   xmax has finished except those listed in xip. It pages in (sync_txid, primary key)
--   order up to xmax, then moves its cursor to xmax and remembers the xip ids as
--   *pending*; the next pull asks for rows of those ids again. So a long transaction that
--   commits after a pull, with an earlier updated_at, is still pulled (a timestamp
--   cursor would lose it), and an idle or long transaction elsewhere never stalls the
--   pull of everything else (a plain xmin watermark would).
-- * Tombstones: deleting a row records (table, primary key, local_id, owner, sync_txid)
--   in `public.supasync_tombstones`, readable only by the row's owner, so devices that
--   were away learn of deletes. The tombstone table is in the Realtime publication, so a
--   subscription filtered by owner also hears of deletes (Realtime's own DELETE events
--   carry only the key and fail owner filters).
-- * Deleted rows stay deleted: an insert whose (owner, local_id) has a tombstone is
--   skipped (a device retrying an insert whose answer it lost, after another device
--   deleted the row, must not bring it back). The SDK sees the row missing from the
--   answer, finds the tombstone, and lets the delete win.
-- * An index for keyset pulls, and membership of the `supabase_realtime` publication.
-- Requirements: a single-column primary key and an owner column (uuid, compared with
-- auth.uid() by the app's RLS policies).

create schema if not exists supasync;
grant usage on schema supasync to anon, authenticated, service_role;

create table if not exists public.supasync_tombstones (
  id bigserial primary key,
  table_name text not null,
  row_id text not null,
  local_id text,
  owner_id uuid,
  sync_txid bigint not null default (pg_current_xact_id()::text::bigint),
  deleted_at timestamptz not null default now()
);
-- Pulls read one owner's tombstones of one table in (sync_txid, id) order.
create index if not exists supasync_tombstones_by_owner
  on public.supasync_tombstones (owner_id, table_name, sync_txid, id);
-- The resurrection guard looks tombstones up by one key, 'table:owner:local_id', whose
-- index no other can stand in for: a trigger's plan is made once per connection, maybe
-- when the table was empty, and with a choice of indexes it kept a poor one (a scan of
-- every tombstone of the owner for each inserted row). The SDK asks by (table, local_id)
-- after a skipped insert, and by (table, row_id) after an update or delete matched nothing.
create index if not exists supasync_tombstones_by_key
  on public.supasync_tombstones ((table_name || ':' || owner_id::text || ':' || local_id));
create index if not exists supasync_tombstones_by_local_id
  on public.supasync_tombstones (table_name, owner_id, local_id);
create index if not exists supasync_tombstones_by_row_id
  on public.supasync_tombstones (table_name, row_id);
alter table public.supasync_tombstones enable row level security;
drop policy if exists "owners read their tombstones" on public.supasync_tombstones;
create policy "owners read their tombstones" on public.supasync_tombstones
  for select using (owner_id = (select auth.uid()));  -- evaluated once per query
-- Only the delete trigger writes tombstones.
revoke insert, update, delete, truncate on public.supasync_tombstones from anon, authenticated;

-- The safe watermark: every transaction below xmax has finished, except those in xip.
create or replace function public.supasync_snapshot() returns json
language sql stable as $$
  select json_build_object(
    'xmin', pg_snapshot_xmin(s)::text::bigint,
    'xmax', pg_snapshot_xmax(s)::text::bigint,
    'xip', coalesce((select json_agg(x::text::bigint order by x) from pg_snapshot_xip(s) x), '[]'::json))
  from pg_current_snapshot() s
$$;
grant execute on function public.supasync_snapshot() to anon, authenticated, service_role;

create or replace function supasync.stamp_version() returns trigger
language plpgsql as $$
begin
  new.sync_txid := pg_current_xact_id()::text::bigint;
  new.updated_at := now();
  return new;
end
$$;

-- Trigger arguments: the primary-key column and the owner column.
create or replace function supasync.record_tombstone() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  old_row jsonb := to_jsonb(old);
begin
  insert into public.supasync_tombstones (table_name, row_id, local_id, owner_id)
  values (tg_table_name, old_row ->> tg_argv[0], old_row ->> 'local_id',
          nullif(old_row ->> tg_argv[1], '')::uuid);
  return old;
end
$$;

create or replace function supasync.enable_sync(tbl regclass, owner_column text default 'user_id')
returns void language plpgsql as $$
declare
  pk_col text;
  rel text;
  pub oid;
begin
  select a.attname into pk_col
  from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
  where i.indrelid = tbl and i.indisprimary and i.indnatts = 1;
  if pk_col is null then
    raise exception 'supasync.enable_sync(%): the table needs a single-column primary key', tbl;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = tbl and attname = owner_column
                 and attnum > 0 and not attisdropped) then
    raise exception 'supasync.enable_sync(%): owner column "%" does not exist', tbl, owner_column;
  end if;
  select relname into rel from pg_class where oid = tbl;

  execute format('alter table %s add column if not exists sync_txid bigint not null
                  default (pg_current_xact_id()::text::bigint)', tbl);
  execute format('alter table %s add column if not exists updated_at timestamptz not null
                  default now()', tbl);
  execute format('create index if not exists %I on %s (sync_txid, %I)', rel || '_supasync_pull', tbl, pk_col);

  execute format('drop trigger if exists supasync_version on %s', tbl);
  execute format('create trigger supasync_version before insert or update on %s
                  for each row execute function supasync.stamp_version()', tbl);
  execute format('drop trigger if exists supasync_tombstone on %s', tbl);
  execute format('create trigger supasync_tombstone after delete on %s
                  for each row execute function supasync.record_tombstone(%L, %L)', tbl, pk_col, owner_column);

  -- The table's keep-deleted trigger: an insert with the owner and local_id of a
  -- tombstone is skipped (returns null), so a device retrying an insert whose answer it
  -- lost cannot bring back a row deleted meanwhile. First it waits for any delete of
  -- the live row with that owner and local_id that is still running (FOR KEY SHARE
  -- conflicts with the delete's row lock): without that, a retried insert that arrives
  -- while the delete runs finds no tombstone yet, then waits at the unique index for
  -- the delete, and inserts the row again, under a new id, once it commits. Each
  -- statement of the function sees what committed before it (read committed), so the
  -- tombstone check after the wait sees the delete's tombstone. One index probe each
  -- on the table's (owner, local_id) and on the tombstones' (table:owner:local_id);
  -- seq scans are off so that a plan made while a table was small cannot stay a scan.
  execute format($f$
    create or replace function supasync.%I() returns trigger
    language plpgsql security definer set search_path = pg_catalog, public set enable_seqscan = off as $body$
    begin
      if new.local_id is not null then
        perform 1 from %s where %I = new.%I and local_id = new.local_id for key share;
        if exists (
             select 1 from public.supasync_tombstones t
             where (t.table_name || ':' || t.owner_id::text || ':' || t.local_id)
                 -- the table's name as text in the default collation (a name is "C")
                 = ((tg_table_name::text collate "default") || ':' || new.%I::text || ':' || new.local_id)) then
          return null;
        end if;
      end if;
      return new;
    end
    $body$ $f$, 'keep_deleted:' || tbl::oid::text, tbl, owner_column, owner_column, owner_column);
  execute format('drop trigger if exists supasync_keep_deleted on %s', tbl);
  execute format('create trigger supasync_keep_deleted before insert on %s
                  for each row execute function supasync.%I()', tbl, 'keep_deleted:' || tbl::oid::text);

  select oid into pub from pg_publication where pubname = 'supabase_realtime';
  if pub is null then
    create publication supabase_realtime;
    select oid into pub from pg_publication where pubname = 'supabase_realtime';
  end if;
  if not exists (select 1 from pg_publication_rel where prpubid = pub and prrelid = tbl) then
    execute format('alter publication supabase_realtime add table %s', tbl);
  end if;
  if not exists (select 1 from pg_publication_rel where prpubid = pub
                 and prrelid = 'public.supasync_tombstones'::regclass) then
    alter publication supabase_realtime add table public.supasync_tombstones;
  end if;
end
$$;

-- Tombstones older than `keep` can go; a device away for longer must restore in full
-- (the SDK detects this: its cursor is older than the oldest tombstone kept).
create or replace function supasync.purge_tombstones(keep interval default interval '30 days')
returns bigint language sql as $$
  with gone as (delete from public.supasync_tombstones where deleted_at < now() - keep returning 1)
  select count(*) from gone
$$;
