-- The chat-persistence schema of seed 002: chat sessions with a message count kept by a
-- server trigger, their messages, document metadata with a status, and append-only usage
-- logs (a bigserial key: server-generated ids). RLS per user; every table syncs.

create table public.chat_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users(id) on delete cascade,
  local_id text,
  title text,
  message_count integer not null default 0,
  created_at timestamptz not null default now(),
  unique (user_id, local_id)
);

create table public.chat_messages (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users(id) on delete cascade,
  local_id text,
  session_id uuid not null references public.chat_sessions(id) on delete cascade,
  role text not null check (role in ('user', 'assistant', 'system')),
  content text not null,
  tokens integer,
  created_at timestamptz not null default now(),
  unique (user_id, local_id)
);
create index chat_messages_session_idx on public.chat_messages (session_id);

create table public.documents (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users(id) on delete cascade,
  local_id text,
  filename text not null,
  status text not null default 'uploaded' check (status in ('uploaded', 'processing', 'ready', 'failed')),
  size_bytes bigint,
  created_at timestamptz not null default now(),
  unique (user_id, local_id)
);
create index documents_user_status_idx on public.documents (user_id, status, created_at);

create table public.usage_logs (
  id bigserial primary key,
  user_id uuid not null default auth.uid() references auth.users(id) on delete cascade,
  local_id text,
  service text not null,
  tokens integer not null default 0,
  cost numeric(12, 6) not null default 0,
  created_at timestamptz not null default now(),
  unique (user_id, local_id)
);
create index usage_logs_user_service_idx on public.usage_logs (user_id, service, created_at);

-- The message count is the server's: a trigger keeps it, devices only read it.
create or replace function public.chat_sessions_count_messages() returns trigger
language plpgsql security definer set search_path = public as $$
begin
  if tg_op = 'INSERT' then
    update public.chat_sessions set message_count = message_count + 1 where id = new.session_id;
  elsif tg_op = 'DELETE' then
    update public.chat_sessions set message_count = message_count - 1 where id = old.session_id;
  end if;
  return null;
end
$$;
create trigger chat_messages_count after insert or delete on public.chat_messages
  for each row execute function public.chat_sessions_count_messages();

alter table public.chat_sessions enable row level security;
alter table public.chat_messages enable row level security;
alter table public.documents enable row level security;
alter table public.usage_logs enable row level security;
create policy "own chat sessions" on public.chat_sessions for all
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "own chat messages" on public.chat_messages for all
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "own documents" on public.documents for all
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "own usage logs" on public.usage_logs for all
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

select supasync.enable_sync('public.chat_sessions');
select supasync.enable_sync('public.chat_messages');
select supasync.enable_sync('public.documents');
select supasync.enable_sync('public.usage_logs');
