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

-- Functions whose rows read like a table's (select, filters, order, counts, embeds).
create function public.todo_stats() returns table (done boolean, n bigint)
  language sql stable as $$ select done, count(*) from public.todos group by done $$;

create function public.messages_of(conv uuid) returns setof public.messages
  language sql stable as $$ select * from public.messages where conversation_id = conv $$;

-- Volatile: must run once per request, also when the caller asks for a count.
create function public.add_notice(body text) returns setof public.notices
  language sql as $$ insert into public.notices (body) values (body) returning * $$;

-- One-to-one: its primary key is also its foreign key.
create table public.conversation_settings (
  conversation_id uuid primary key references public.conversations(id) on delete cascade,
  muted boolean not null default false
);

-- Ranges, for the range operators.
create table public.bookings (
  id serial primary key,
  room text not null,
  during int4range not null
);

-- A second schema, exposed by `--schemas public,personal` in the REST tests (as a
-- project exposes one in its API settings). Its `todos` shadows nothing: the profile
-- header picks the schema.
create schema personal;
grant usage on schema personal to anon, authenticated, service_role;
create table personal.notes (
  id serial primary key,
  user_id uuid not null default auth.uid(),
  body text not null
);
alter table personal.notes enable row level security;
create policy "own notes" on personal.notes for all
  using (user_id = auth.uid()) with check (user_id = auth.uid());
grant all on personal.notes to authenticated;
grant usage, select on sequence personal.notes_id_seq to authenticated;
create table personal.todos (id serial primary key, label text not null);
grant all on personal.todos to authenticated;
grant usage, select on sequence personal.todos_id_seq to authenticated;
create function personal.note_count() returns bigint
  language sql stable as $$ select count(*) from personal.notes $$;
grant execute on function personal.note_count() to authenticated;

-- Many-to-many: todos and labels through a junction table.
create table public.labels (
  id serial primary key,
  name text not null unique
);
create table public.todo_labels (
  todo_id bigint references public.todos(id) on delete cascade,
  label_id int references public.labels(id) on delete cascade,
  primary key (todo_id, label_id)
);
