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
--
-- Shared data (rows that several users read, decided by the app's own RLS policies):
--
--   select supasync.define_scope('org', 'public.org_members', 'org_id');  -- user column user_id
--   select supasync.enable_sync('public.agents', 'created_by');
--   select supasync.share_by('public.agents', 'org');                     -- its org_id column
--   select supasync.share_by('public.notes', 'org', 'team_org', owner_reads => false);
--
-- * A scope names a membership table: which users (a uuid column) belong to which scope
--   id (its scope column). `share_by` says that a table's rows belong to the scope id in
--   one of their columns. Rows still reach users only through the app's RLS; the scope
--   tells the kit and the SDK who else may read a row's *tombstone*, which rows to fetch
--   when a user joins (their versions are older than the user's cursor), which to drop
--   when a user leaves, and which Realtime filters to listen with.
-- * A tombstone of a shared row is readable by the members of its scope id, and by its
--   owner unless `owner_reads => false` (a table whose rows only members read).
-- * A row whose scope column changes leaves a tombstone of kind 'moved' for the old scope
--   id: members of the old scope who cannot read it where it went drop it.
-- * Membership changes are written to `public.supasync_access` (readable by the user they
--   concern, in the Realtime publication), so a device hears of them live.
-- * `public.supasync_memberships()` tells a signed-in user the shared tables and the
--   scope ids they belong to.
--
-- Writes that must combine on the server (a usage counter many members bump, often
-- offline: last-writer-wins would lose increments) are queued calls of a function:
--
--   create function public.use_agent(row_id text, args jsonb) returns public.agent_library ...
--   select supasync.allow_call('public.use_agent');
--
-- * The SDK sends each queued call once through `public.supasync_call(call_id, fn,
--   row_id, args)`, which runs it as the calling user (RLS applies) and records its id
--   and result in the same transaction. A retry after a lost answer gets the recorded
--   result and runs nothing again: N calls add up to exactly N.
-- * Only functions named by allow_call can be called, with the signature
--   (row_id text, args jsonb); their result (the row they changed, say) replaces the
--   call's optimistic effect on the device. A function should raise when it cannot
--   apply (a row it may not change), so that the device shows the refusal: with the
--   default code (P0001, answered 400) or 42501 (403). Codes the server answers with
--   a 5xx (P0002, for one) are taken for an outage, and the call is retried.

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
-- Shared rows: the tombstone's scope and scope id (members read it), whether the row's
-- owner reads it too, and its kind: 'deleted', or 'moved' (the row left that scope id).
alter table public.supasync_tombstones add column if not exists scope text;
alter table public.supasync_tombstones add column if not exists scope_id text;
alter table public.supasync_tombstones add column if not exists owner_reads boolean not null default true;
alter table public.supasync_tombstones add column if not exists kind text not null default 'deleted';
-- Pulls read one table's tombstones in (sync_txid, id) order, those the policy lets them.
create index if not exists supasync_tombstones_by_table
  on public.supasync_tombstones (table_name, sync_txid, id);
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
-- What the kit knows of each synced table (enable_sync) and shared table (share_by), and
-- the scopes (define_scope). Not exposed to clients.
create table if not exists supasync.synced_tables (
  tbl regclass primary key,
  key_column text not null,
  owner_column text not null
);
create table if not exists supasync.scopes (
  name text primary key,
  members regclass not null,
  scope_column text not null,
  user_column text not null
);
create table if not exists supasync.shared_tables (
  tbl regclass primary key,
  scope text not null references supasync.scopes (name),
  scope_column text not null,
  owner_reads boolean not null default true
);
revoke all on supasync.synced_tables, supasync.scopes, supasync.shared_tables from anon, authenticated;

-- Queued calls: the functions apps may call (allow_call), and the calls made, each
-- with its result, kept for replays of a lost answer.
create table if not exists supasync.callables (
  name text primary key,
  fn regprocedure not null
);
create table if not exists supasync.calls (
  user_id uuid not null,
  call_id text not null,
  result jsonb,
  at timestamptz not null default now(),
  primary key (user_id, call_id)
);
revoke all on supasync.callables, supasync.calls from anon, authenticated;


-- `supasync.my_scope_keys()`: the caller's scope ids, as 'scope:id', one query over each
-- scope's membership table. Generated from supasync.scopes (a union of plain selects,
-- planned like any query) by refresh_scopes, which define_scope calls. Security definer:
-- a membership table's own policies may hide other rows, but a user's own memberships
-- are what decide which tombstones they read.
create or replace function supasync.refresh_scopes() returns void
language plpgsql as $$
declare
  body text := '';
  s record;
begin
  for s in select * from supasync.scopes order by name loop
    body := body || format('select %L || '':'' || m.%I::text from %s m where m.%I = (select auth.uid()) union all ',
                           s.name, s.scope_column, s.members, s.user_column);
  end loop;
  body := body || 'select null::text where false';
  execute format($f$create or replace function supasync.my_scope_keys() returns setof text
                    language sql stable security definer set search_path = pg_catalog, public as %L$f$, body);
  grant execute on function supasync.my_scope_keys() to anon, authenticated, service_role;
end
$$;
select supasync.refresh_scopes();

alter table public.supasync_tombstones enable row level security;
drop policy if exists "owners read their tombstones" on public.supasync_tombstones;
drop policy if exists "readers read tombstones" on public.supasync_tombstones;
-- The owner (unless the table says owners do not read), and the members of a shared
-- row's scope id. The subquery runs once per query (a hashed subplan).
create policy "readers read tombstones" on public.supasync_tombstones
  for select using (
    (owner_reads and owner_id = (select auth.uid()))
    or (scope is not null and (scope || ':' || scope_id) in (select supasync.my_scope_keys())));
-- Only the kit's triggers write tombstones.
revoke insert, update, delete, truncate on public.supasync_tombstones from anon, authenticated;

-- Membership changes, one line per user and scope id granted or revoked, readable by
-- that user. Written by the trigger define_scope puts on the membership table.
create table if not exists public.supasync_access (
  id bigserial primary key,
  user_id uuid not null,
  scope text not null,
  scope_id text not null,
  granted boolean not null,
  sync_txid bigint not null default (pg_current_xact_id()::text::bigint),
  at timestamptz not null default now()
);
create index if not exists supasync_access_by_user on public.supasync_access (user_id, id);
create index if not exists supasync_access_by_txid on public.supasync_access (user_id, sync_txid);
alter table public.supasync_access enable row level security;
drop policy if exists "users read their access changes" on public.supasync_access;
create policy "users read their access changes" on public.supasync_access
  for select using (user_id = (select auth.uid()));
revoke insert, update, delete, truncate on public.supasync_access from anon, authenticated;

-- The safe watermark: every transaction below xmax has finished, except those in xip.
create or replace function public.supasync_snapshot() returns json
language sql stable as $$
  select json_build_object(
    'xmin', pg_snapshot_xmin(s)::text::bigint,
    'xmax', pg_snapshot_xmax(s)::text::bigint,
    'xip', coalesce((select json_agg(x::text::bigint order by x) from pg_snapshot_xip(s) x), '[]'::json),
    -- The tables whose restore can walk each transaction's rows by local id: those with
    -- the index for it (`enable_sync` makes it; a kit older than it did not).
    'by_local_id', coalesce((select json_agg(t.relname::text order by t.relname)
                             from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
                             where t.relnamespace = 'public'::regnamespace
                               and i.relname = left(t.relname || '_supasync_restore', 63)), '[]'::json))
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

-- Trigger arguments: the primary-key column and the owner column; for a shared table
-- also its scope column, the scope and whether owners read its tombstones.
create or replace function supasync.record_tombstone() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  old_row jsonb := to_jsonb(old);
  in_scope text := case when tg_nargs > 2 then old_row ->> tg_argv[2] end;
begin
  insert into public.supasync_tombstones (table_name, row_id, local_id, owner_id, scope, scope_id, owner_reads)
  values (tg_table_name, old_row ->> tg_argv[0], old_row ->> 'local_id',
          nullif(old_row ->> tg_argv[1], '')::uuid,
          case when in_scope is not null then tg_argv[3] end, in_scope,
          tg_nargs <= 2 or tg_argv[4]::boolean);
  return old;
end
$$;

-- A shared row's scope column changed: members of the old scope id who cannot read it
-- where it went must drop it. Arguments: the primary-key column, the scope column, the
-- scope. No local id (the keep-deleted guard must not take it for a delete), no owner.
create or replace function supasync.record_move() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  old_row jsonb := to_jsonb(old);
begin
  if old_row ->> tg_argv[1] is not null then
    insert into public.supasync_tombstones (table_name, row_id, local_id, owner_id, scope, scope_id, owner_reads, kind)
    values (tg_table_name, old_row ->> tg_argv[0], null, null, tg_argv[2], old_row ->> tg_argv[1], false, 'moved');
  end if;
  return null;
end
$$;

-- A membership row inserted, deleted, or moved to another user or scope id. Arguments:
-- the scope, its scope column and user column in the membership table.
create or replace function supasync.record_access() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  o jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) end;
  n jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) end;
  same boolean := o is not null and n is not null
                  and o ->> tg_argv[1] is not distinct from n ->> tg_argv[1]
                  and o ->> tg_argv[2] is not distinct from n ->> tg_argv[2];
begin
  if same then
    return null;
  end if;
  if o ->> tg_argv[1] is not null and o ->> tg_argv[2] is not null then
    insert into public.supasync_access (user_id, scope, scope_id, granted)
    values ((o ->> tg_argv[2])::uuid, tg_argv[0], o ->> tg_argv[1], false);
  end if;
  if n ->> tg_argv[1] is not null and n ->> tg_argv[2] is not null then
    insert into public.supasync_access (user_id, scope, scope_id, granted)
    values ((n ->> tg_argv[2])::uuid, tg_argv[0], n ->> tg_argv[1], true);
  end if;
  return null;
end
$$;

-- The tombstone trigger of a synced table, with its scope if it is shared (enable_sync
-- and share_by both call this, in either order).
create or replace function supasync.install_tombstone_trigger(tbl regclass) returns void
language plpgsql as $$
declare
  t supasync.synced_tables;
  sh supasync.shared_tables;
begin
  select * into t from supasync.synced_tables where synced_tables.tbl = install_tombstone_trigger.tbl;
  select * into sh from supasync.shared_tables where shared_tables.tbl = install_tombstone_trigger.tbl;
  execute format('drop trigger if exists supasync_tombstone on %s', tbl);
  execute format('drop trigger if exists supasync_moved on %s', tbl);
  if sh.tbl is null then
    execute format('create trigger supasync_tombstone after delete on %s
                    for each row execute function supasync.record_tombstone(%L, %L)', tbl, t.key_column, t.owner_column);
  else
    execute format('create trigger supasync_tombstone after delete on %s
                    for each row execute function supasync.record_tombstone(%L, %L, %L, %L, %L)',
                   tbl, t.key_column, t.owner_column, sh.scope_column, sh.scope, sh.owner_reads);
    execute format('create trigger supasync_moved after update of %I on %s
                    for each row when (old.%I is distinct from new.%I)
                    execute function supasync.record_move(%L, %L, %L)',
                   sh.scope_column, tbl, sh.scope_column, sh.scope_column, t.key_column, sh.scope_column, sh.scope);
  end if;
end
$$;

create or replace function supasync.enable_sync(tbl regclass, owner_column text default 'user_id')
returns void language plpgsql as $$
declare
  pk_col text;
  rel text;
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
  -- A restore walks each transaction's rows by local id (rows made on the server, with
  -- none, last): the order a device's store keeps rows in, so that a restore of a
  -- million rows written in one transaction appends to the store's B-trees instead of
  -- writing all over them (the SDK's `sync::pull::page`).
  if exists (select 1 from pg_attribute where attrelid = tbl and attname = 'local_id' and attnum > 0 and not attisdropped) then
    execute format('create index if not exists %I on %s (sync_txid, local_id, %I)', rel || '_supasync_restore', tbl, pk_col);
  end if;

  execute format('drop trigger if exists supasync_version on %s', tbl);
  execute format('create trigger supasync_version before insert or update on %s
                  for each row execute function supasync.stamp_version()', tbl);
  insert into supasync.synced_tables (tbl, key_column, owner_column) values (tbl, pk_col, owner_column)
  on conflict on constraint synced_tables_pkey do update set key_column = excluded.key_column, owner_column = excluded.owner_column;
  perform supasync.install_tombstone_trigger(tbl);

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

  perform supasync.publish(tbl);
  perform supasync.publish('public.supasync_tombstones');
end
$$;

-- A kit applied again over an older one: tables enabled before the restore index
-- existed get it now (on a large table this builds an index; apply the kit when
-- writes can wait for it).
do $$
declare
  t supasync.synced_tables;
begin
  for t in select * from supasync.synced_tables loop
    if exists (select 1 from pg_attribute where attrelid = t.tbl and attname = 'local_id' and attnum > 0 and not attisdropped) then
      execute format('create index if not exists %I on %s (sync_txid, local_id, %I)',
                     (select relname from pg_class where oid = t.tbl) || '_supasync_restore', t.tbl, t.key_column);
    end if;
  end loop;
end
$$;

-- Tombstones older than `keep` can go; a device away for longer must restore in full
-- (the SDK detects this: its cursor is older than the oldest tombstone kept).
-- Access lines go with them: a device away for longer restores in full anyway.
create or replace function supasync.purge_tombstones(keep interval default interval '30 days')
returns bigint language sql as $$
  with gone as (delete from public.supasync_tombstones where deleted_at < now() - keep returning 1),
       access as (delete from public.supasync_access where at < now() - keep returning 1),
       calls as (delete from supasync.calls where at < now() - keep returning 1)
  select count(*) from gone
$$;

-- The publication, with a table added once.
create or replace function supasync.publish(tbl regclass) returns void
language plpgsql as $$
declare
  pub oid;
begin
  select oid into pub from pg_publication where pubname = 'supabase_realtime';
  if pub is null then
    create publication supabase_realtime;
    select oid into pub from pg_publication where pubname = 'supabase_realtime';
  end if;
  if not exists (select 1 from pg_publication_rel where prpubid = pub and prrelid = tbl) then
    execute format('alter publication supabase_realtime add table %s', tbl);
  end if;
end
$$;

-- A scope: `members` says which users (`user_column`, a uuid) belong to which scope id
-- (`scope_column`). Declaring it again replaces it.
create or replace function supasync.define_scope(scope_name text, members regclass, scope_column text,
                                                 user_column text default 'user_id')
returns void language plpgsql as $$
declare
  user_type regtype;
begin
  if scope_name is null or scope_name !~ '^[A-Za-z_][A-Za-z0-9_]*$' then
    raise exception 'supasync.define_scope(%): a scope name is a letter or underscore, then letters, digits or underscores', scope_name;
  end if;
  if not exists (select 1 from pg_attribute where attrelid = members and attname = scope_column
                 and attnum > 0 and not attisdropped) then
    raise exception 'supasync.define_scope(%): scope column "%" does not exist in %', scope_name, scope_column, members;
  end if;
  select atttypid::regtype into user_type from pg_attribute
  where attrelid = members and attname = user_column and attnum > 0 and not attisdropped;
  if user_type is null then
    raise exception 'supasync.define_scope(%): user column "%" does not exist in %', scope_name, user_column, members;
  end if;
  if user_type <> 'uuid'::regtype then
    raise exception 'supasync.define_scope(%): user column "%" of % is %, not uuid (it is compared with auth.uid())',
      scope_name, user_column, members, user_type;
  end if;
  insert into supasync.scopes (name, members, scope_column, user_column)
  values (scope_name, define_scope.members, define_scope.scope_column, define_scope.user_column)
  on conflict (name) do update set members = excluded.members, scope_column = excluded.scope_column,
                                   user_column = excluded.user_column;
  execute format('drop trigger if exists %I on %s', 'supasync_access:' || scope_name, members);
  execute format('create trigger %I after insert or update or delete on %s
                  for each row execute function supasync.record_access(%L, %L, %L)',
                 'supasync_access:' || scope_name, members, scope_name, scope_column, user_column);
  perform supasync.refresh_scopes();
  perform supasync.publish('public.supasync_access');
end
$$;

-- A synced table's rows belong to the scope id in `scope_column` (by default the
-- scope's own column name). `owner_reads => false`: the row's owner reads its tombstone
-- only as a member (the table's policies let only members read its rows).
create or replace function supasync.share_by(tbl regclass, scope_name text, scope_column text default null,
                                             owner_reads boolean default true)
returns void language plpgsql as $$
declare
  s supasync.scopes;
  t supasync.synced_tables;
  col text;
begin
  select * into s from supasync.scopes where name = scope_name;
  if s.name is null then
    raise exception 'supasync.share_by(%): no scope named "%"; declare it first with supasync.define_scope', tbl, scope_name;
  end if;
  select * into t from supasync.synced_tables where synced_tables.tbl = share_by.tbl;
  if t.tbl is null then
    raise exception 'supasync.share_by(%): the table does not sync; run supasync.enable_sync(''%'') first', tbl, tbl;
  end if;
  col := coalesce(share_by.scope_column, s.scope_column);
  if not exists (select 1 from pg_attribute where attrelid = tbl and attname = col and attnum > 0 and not attisdropped) then
    raise exception 'supasync.share_by(%): scope column "%" does not exist', tbl, col;
  end if;
  insert into supasync.shared_tables (tbl, scope, scope_column, owner_reads)
  values (tbl, scope_name, col, share_by.owner_reads)
  on conflict on constraint shared_tables_pkey do update
    set scope = excluded.scope, scope_column = excluded.scope_column, owner_reads = excluded.owner_reads;
  perform supasync.install_tombstone_trigger(tbl);
  -- A member who joins fetches the scope id's rows below their cursor, in pull order.
  if col <> t.key_column then
    execute format('create index if not exists %I on %s (%I, sync_txid, %I)',
                   (select relname from pg_class where oid = tbl) || '_supasync_scope', tbl, col, t.key_column);
  end if;
end
$$;

-- Let apps queue calls of `fn`, a function (row_id text, args jsonb).
create or replace function supasync.allow_call(fn text) returns void
language plpgsql as $$
declare
  f regprocedure := to_regprocedure(fn || '(text, jsonb)');
begin
  if f is null then
    raise exception 'supasync.allow_call(%): no function %(row_id text, args jsonb)', fn, fn;
  end if;
  insert into supasync.callables (name, fn)
  values ((select proname from pg_proc where oid = f), f)
  on conflict (name) do update set fn = excluded.fn;
end
$$;

-- The bookkeeping of supasync_call, as the kit's owner (the calls table is not the
-- users'): the function a name allows, and the start and end of a call.
create or replace function supasync.callable(fn text) returns regprocedure
language sql stable security definer set search_path = pg_catalog as $$
  select c.fn from supasync.callables c where c.name = callable.fn
$$;
create or replace function supasync.call_begin(call_id text, out fresh boolean, out result jsonb)
language plpgsql security definer set search_path = pg_catalog as $$
begin
  insert into supasync.calls (user_id, call_id) values (auth.uid(), call_begin.call_id)
  on conflict on constraint calls_pkey do nothing;
  fresh := found;
  if not fresh then
    select c.result into result from supasync.calls c where c.user_id = auth.uid() and c.call_id = call_begin.call_id;
  end if;
end
$$;
create or replace function supasync.call_end(call_id text, result jsonb) returns void
language sql security definer set search_path = pg_catalog as $$
  update supasync.calls c set result = call_end.result where c.user_id = auth.uid() and c.call_id = call_end.call_id
$$;
grant execute on function supasync.callable(text), supasync.call_begin(text), supasync.call_end(text, jsonb)
  to authenticated, service_role;

-- One queued call, exactly once per (user, call_id): runs `fn` as the caller, or, for a
-- call already made (its answer lost), returns what it returned then. The function is
-- named by its catalog entry (allow_call), never by the request's text.
create or replace function public.supasync_call(call_id text, fn text, row_id text, args jsonb default '{}')
returns jsonb language plpgsql as $$
declare
  f regprocedure;
  started record;
  res jsonb;
begin
  if auth.uid() is null then
    raise exception 'supasync_call: sign in first' using errcode = '42501';
  end if;
  f := supasync.callable(fn);
  if f is null then
    raise exception 'supasync_call: "%" is not a function apps may call (run select supasync.allow_call(''public.%''))', fn, fn
      using errcode = '42883';
  end if;
  select * into started from supasync.call_begin(call_id);
  if not started.fresh then
    return started.result;
  end if;
  execute format('select to_jsonb(%s($1, $2))', f::regproc) into res using row_id, args;
  perform supasync.call_end(call_id, res);
  return res;
end
$$;
grant execute on function public.supasync_call(text, text, text, jsonb) to authenticated, service_role;

-- For a signed-in user: the shared tables (name → scope, scope column, whether owners
-- read) and the scope ids they belong to (scope → ids); `access_from`, the snapshot
-- this answer saw; and, given `changed_since` (an earlier answer's access_from), the
-- scope ids ('scope:id') whose membership changed after it (by transactions that
-- snapshot did not see). A pull asks at its start and its end: a membership
-- granted and revoked while it ran changed what RLS let its pages through.
drop function if exists public.supasync_memberships();
create or replace function public.supasync_memberships(changed_since text default null) returns json
language sql stable security definer set search_path = pg_catalog, public as $$
  select json_build_object(
    'tables', coalesce((select json_object_agg(c.relname, json_build_object(
                          'scope', t.scope, 'column', t.scope_column, 'owner_reads', t.owner_reads))
                        from supasync.shared_tables t join pg_class c on c.oid = t.tbl), '{}'::json),
    'scopes', coalesce((select json_object_agg(s.name, coalesce(
                          (select json_agg(substr(k, length(s.name) + 2) order by k)
                           from supasync.my_scope_keys() k where left(k, length(s.name) + 1) = s.name || ':'),
                          '[]'::json))
                        from supasync.scopes s), '{}'::json),
    'access_from', pg_current_snapshot()::text,
    'changed', coalesce((select json_agg(distinct a.scope || ':' || a.scope_id)
                         from public.supasync_access a
                         where changed_since is not null and a.user_id = (select auth.uid())
                           and a.sync_txid >= pg_snapshot_xmin(changed_since::pg_snapshot)::text::bigint
                           and not pg_visible_in_snapshot(a.sync_txid::text::xid8, changed_since::pg_snapshot)),
                        '[]'::json))
$$;
grant execute on function public.supasync_memberships(text) to authenticated, service_role;
