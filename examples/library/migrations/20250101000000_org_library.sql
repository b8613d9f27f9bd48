-- Seed 000's organisation library: agents and prompts that one member creates and
-- every member of the organisation sees, edits, deletes and uses, with usage counters
-- that members bump, often offline. Synced with supasync as shared rows:
-- the scope `org` is membership in `org_members`, and both libraries are shared by
-- their `org_id` (members only: an author who leaves no longer reads them).

create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  created_at timestamptz not null default now()
);

create table public.org_members (
  org_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member' check (role in ('owner', 'admin', 'member')),
  primary key (org_id, user_id)
);
create index org_members_by_user on public.org_members (user_id);

-- The caller's organisations. Security definer, so that the policies below can ask
-- it without the membership table's own policy asking itself.
create or replace function public.my_org_ids() returns setof uuid
language sql stable security definer set search_path = public as $$
  select org_id from public.org_members where user_id = (select auth.uid())
$$;

alter table public.organizations enable row level security;
alter table public.org_members enable row level security;
create policy "members see their organisations" on public.organizations for select
  using (id in (select public.my_org_ids()));
create policy "members see each other" on public.org_members for select
  using (org_id in (select public.my_org_ids()));

-- Organisations are made, and members added and removed, by these functions: the
-- caller must be an owner or admin of the organisation (owners of a new one).
create or replace function public.create_organization(name text) returns uuid
language plpgsql security definer set search_path = public as $$
declare
  org uuid;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in first' using errcode = '42501';
  end if;
  insert into public.organizations (name) values (create_organization.name) returning id into org;
  insert into public.org_members (org_id, user_id, role) values (org, (select auth.uid()), 'owner');
  return org;
end
$$;

create or replace function public.add_member(org uuid, email text, role text default 'member') returns uuid
language plpgsql security definer set search_path = public as $$
declare
  who uuid;
begin
  if not exists (select 1 from public.org_members m where m.org_id = org and m.user_id = (select auth.uid())
                 and m.role in ('owner', 'admin')) then
    raise exception 'only an owner or admin of the organisation adds members' using errcode = '42501';
  end if;
  select id into who from auth.users u where lower(u.email) = lower(add_member.email);
  if who is null then
    raise exception 'no user with the email %', email;
  end if;
  insert into public.org_members (org_id, user_id, role) values (org, who, add_member.role)
  on conflict (org_id, user_id) do update set role = excluded.role;
  return who;
end
$$;

create or replace function public.remove_member(org uuid, member uuid) returns void
language plpgsql security definer set search_path = public as $$
begin
  if member <> (select auth.uid()) and not exists (
       select 1 from public.org_members m where m.org_id = org and m.user_id = (select auth.uid())
       and m.role in ('owner', 'admin')) then
    raise exception 'only an owner or admin of the organisation removes members' using errcode = '42501';
  end if;
  delete from public.org_members where org_id = org and user_id = member;
end
$$;

create table public.agent_library (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  created_by uuid not null default auth.uid() references auth.users (id),
  local_id text,
  name text not null check (length(trim(name)) > 0),
  description text,
  instructions text,
  category text,
  usage_count integer not null default 0,
  last_used_at timestamptz,
  created_at timestamptz not null default now(),
  unique (created_by, local_id)
);

create table public.prompt_library (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  created_by uuid not null default auth.uid() references auth.users (id),
  local_id text,
  title text not null,
  prompt_text text not null,
  variables jsonb not null default '[]',
  category text,
  usage_count integer not null default 0,
  last_used_at timestamptz,
  created_at timestamptz not null default now(),
  unique (created_by, local_id)
);

alter table public.agent_library enable row level security;
alter table public.prompt_library enable row level security;
-- Members read, edit and delete every row of their organisations; a row's author is
-- the member who added it (an edit by another member keeps it).
create policy "members read agents" on public.agent_library for select using (org_id in (select public.my_org_ids()));
create policy "members add agents" on public.agent_library for insert
  with check (org_id in (select public.my_org_ids()) and created_by = (select auth.uid()));
create policy "members edit agents" on public.agent_library for update
  using (org_id in (select public.my_org_ids())) with check (org_id in (select public.my_org_ids()));
create policy "members delete agents" on public.agent_library for delete using (org_id in (select public.my_org_ids()));
create policy "members read prompts" on public.prompt_library for select using (org_id in (select public.my_org_ids()));
create policy "members add prompts" on public.prompt_library for insert
  with check (org_id in (select public.my_org_ids()) and created_by = (select auth.uid()));
create policy "members edit prompts" on public.prompt_library for update
  using (org_id in (select public.my_org_ids())) with check (org_id in (select public.my_org_ids()));
create policy "members delete prompts" on public.prompt_library for delete using (org_id in (select public.my_org_ids()));

select supasync.define_scope('org', 'public.org_members', 'org_id');
select supasync.enable_sync('public.agent_library', 'created_by');
select supasync.share_by('public.agent_library', 'org', owner_reads => false);
select supasync.enable_sync('public.prompt_library', 'created_by');
select supasync.share_by('public.prompt_library', 'org', owner_reads => false);

-- Usage counters: members bump them through queued calls (supasync.allow_call), so
-- that increments made offline on many devices add up instead of overwriting each
-- other. Each returns the row it changed, which replaces the device's optimistic count.
create or replace function public.use_agent(row_id text, args jsonb) returns public.agent_library
language plpgsql as $$
declare
  r public.agent_library;
begin
  update public.agent_library
  set usage_count = usage_count + greatest(coalesce((args ->> 'by')::int, 1), 1), last_used_at = now()
  where id = row_id::uuid returning * into r;
  if not found then
    raise exception 'no agent % that this user may use', row_id using errcode = '42501';
  end if;
  return r;
end
$$;

create or replace function public.use_prompt(row_id text, args jsonb) returns public.prompt_library
language plpgsql as $$
declare
  r public.prompt_library;
begin
  update public.prompt_library
  set usage_count = usage_count + greatest(coalesce((args ->> 'by')::int, 1), 1), last_used_at = now()
  where id = row_id::uuid returning * into r;
  if not found then
    raise exception 'no prompt % that this user may use', row_id using errcode = '42501';
  end if;
  return r;
end
$$;

select supasync.allow_call('public.use_agent');
select supasync.allow_call('public.use_prompt');
