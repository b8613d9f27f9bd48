-- The multi-device chat schema of seed 004 ("Virgil"): conversations, messages and
-- memories, each with a server id, a client local_id unique per user, and RLS per user
-- (policies compare `(select auth.uid())`, which PostgreSQL evaluates once per query).
--

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users(id) on delete cascade,
  title text,
  message_count integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  local_id text,
  unique (user_id, local_id)
);

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users(id) on delete cascade,
  conversation_id uuid references public.conversations(id) on delete cascade,
  role text not null check (role in ('user', 'assistant', 'system')),
  content text not null,
  "timestamp" timestamptz not null default now(),
  metadata jsonb,
  local_id text,
  updated_at timestamptz not null default now(),
  unique (user_id, local_id)
);
create index messages_conversation_idx on public.messages (conversation_id);

create table public.memories (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users(id) on delete cascade,
  content text not null,
  context text,
  importance_score float not null default 1.0,
  tag text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  local_id text,
  unique (user_id, local_id)
);

alter table public.conversations enable row level security;
alter table public.messages enable row level security;
alter table public.memories enable row level security;

create policy "own conversations" on public.conversations for all
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "own messages" on public.messages for all
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "own memories" on public.memories for all
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

alter publication supabase_realtime add table public.conversations, public.messages, public.memories;

select supasync.enable_sync('public.conversations');
select supasync.enable_sync('public.messages');
select supasync.enable_sync('public.memories');
