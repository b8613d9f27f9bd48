-- The conformance schema: per-user rows under RLS, a composite unique key for
-- idempotent upserts, parent/child tables for embedding, a public table, RPCs.

create table public.todos (
  id bigserial primary key,
  user_id uuid not null default auth.uid() references auth.users(id),
  task text not null check (length(task) > 0),
  done boolean not null default false,
  priority int,
  tags text[],
  meta jsonb,
  created_at timestamptz not null default now()
);
alter table public.todos enable row level security;
create policy "own todos" on public.todos for all
  using (user_id = auth.uid()) with check (user_id = auth.uid());

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid(),
  title text not null,
  updated_at timestamptz not null default now()
);
alter table public.conversations enable row level security;
create policy "own conversations" on public.conversations for all
  using (user_id = auth.uid()) with check (user_id = auth.uid());

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid(),
  local_id text not null,
  conversation_id uuid references public.conversations(id) on delete cascade,
  body text not null,
  updated_at timestamptz not null default now(),
  unique (user_id, local_id)
);
alter table public.messages enable row level security;
create policy "own messages" on public.messages for all
  using (user_id = auth.uid()) with check (user_id = auth.uid());

create table public.notices (
  id serial primary key,
  body text not null,
  level int not null default 0
);

alter publication supabase_realtime add table public.todos, public.messages, public.notices;

create function public.add_numbers(a int, b int) returns int
  language sql immutable as $$ select a + b $$;

create function public.my_todo_count() returns bigint
  language sql stable as $$ select count(*) from public.todos $$;

create function public.todos_done(is_done boolean) returns setof public.todos
  language sql stable as $$ select * from public.todos where done = is_done order by id $$;

create function public.fail_with(msg text) returns void
  language plpgsql as $$ begin raise exception '%', msg; end $$;
