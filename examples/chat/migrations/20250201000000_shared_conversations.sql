-- Seed 004's shared conversations: the owner of a conversation shares it with another
-- user by email; both then read the conversation and each other's messages, and write
-- messages into it. Synced with supasync as shared rows: the scope `conversation` is
-- membership in `conversation_members`; conversations are shared by their own id, and
-- messages by their conversation. The owner keeps reading their own rows as before.

create table public.conversation_members (
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  added_at timestamptz not null default now(),
  primary key (conversation_id, user_id)
);
create index conversation_members_by_user on public.conversation_members (user_id);

-- The caller's shared conversations. Security definer, so that the policies below can
-- ask it without the membership table's own policy asking itself.
create or replace function public.my_conversation_ids() returns setof uuid
language sql stable security definer set search_path = public as $$
  select conversation_id from public.conversation_members where user_id = (select auth.uid())
$$;

alter table public.conversation_members enable row level security;
create policy "members see who shares" on public.conversation_members for select
  using (conversation_id in (select public.my_conversation_ids()));

create policy "members read shared conversations" on public.conversations for select
  using (id in (select public.my_conversation_ids()));

drop policy "own messages" on public.messages;
create policy "read own and shared messages" on public.messages for select
  using ((select auth.uid()) = user_id or conversation_id in (select public.my_conversation_ids()));
create policy "write own messages into own or shared conversations" on public.messages for insert
  with check ((select auth.uid()) = user_id
              and (conversation_id is null
                   or conversation_id in (select id from public.conversations where user_id = (select auth.uid()))
                   or conversation_id in (select public.my_conversation_ids())));
create policy "change own messages" on public.messages for update
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "delete own messages" on public.messages for delete
  using ((select auth.uid()) = user_id);

-- Share a conversation with the user who has this email (`args.email`); the owner
-- becomes a member too. Queued by apps as a supasync call, so a conversation made
-- offline can be shared offline: the share goes after the conversation's insert.
-- Security definer: it looks the email up in auth.users (which tells the owner whether
-- an account exists for the email, as an invitation form would).
create or replace function public.share_conversation(row_id text, args jsonb) returns public.conversations
language plpgsql security definer set search_path = public as $$
declare
  c public.conversations;
  who uuid;
begin
  select * into c from public.conversations where id = row_id::uuid and user_id = (select auth.uid());
  if not found then
    raise exception 'only the owner of a conversation shares it' using errcode = '42501';
  end if;
  select id into who from auth.users where lower(email) = lower(trim(args ->> 'email'));
  if who is null then
    raise exception 'no user with the email %', args ->> 'email';
  end if;
  if who = c.user_id then
    raise exception 'this conversation is already yours';
  end if;
  insert into public.conversation_members (conversation_id, user_id) values (c.id, c.user_id), (c.id, who)
  on conflict do nothing;
  return c;
end
$$;

-- Stop sharing it with that user (`args.email`).
create or replace function public.unshare_conversation(row_id text, args jsonb) returns public.conversations
language plpgsql security definer set search_path = public as $$
declare
  c public.conversations;
begin
  select * into c from public.conversations where id = row_id::uuid and user_id = (select auth.uid());
  if not found then
    raise exception 'only the owner of a conversation stops sharing it' using errcode = '42501';
  end if;
  delete from public.conversation_members m using auth.users u
  where m.conversation_id = c.id and m.user_id = u.id and lower(u.email) = lower(trim(args ->> 'email'))
    and m.user_id <> c.user_id;
  return c;
end
$$;

select supasync.allow_call('public.share_conversation');
select supasync.allow_call('public.unshare_conversation');
select supasync.define_scope('conversation', 'public.conversation_members', 'conversation_id');
select supasync.share_by('public.conversations', 'conversation', 'id');
select supasync.share_by('public.messages', 'conversation', 'conversation_id');
