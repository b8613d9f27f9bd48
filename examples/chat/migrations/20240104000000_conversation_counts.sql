-- Seed 004's conversation list shows message counts: the server keeps them, devices
-- only read them (they arrive like any other change of the conversation). Statement
-- triggers with transition tables: a push of 1,000 messages updates each conversation
-- once, not 1,000 times.

create or replace function public.conversations_count_inserted() returns trigger
language plpgsql security definer set search_path = public as $$
begin
  update public.conversations c set message_count = c.message_count + n.count
    from (select conversation_id, count(*) from new_rows where conversation_id is not null group by 1) n
   where c.id = n.conversation_id;
  return null;
end
$$;

create or replace function public.conversations_count_deleted() returns trigger
language plpgsql security definer set search_path = public as $$
begin
  update public.conversations c set message_count = greatest(c.message_count - n.count, 0)
    from (select conversation_id, count(*) from old_rows where conversation_id is not null group by 1) n
   where c.id = n.conversation_id;
  return null;
end
$$;

create trigger messages_count_inserted after insert on public.messages
  referencing new table as new_rows for each statement execute function public.conversations_count_inserted();
create trigger messages_count_deleted after delete on public.messages
  referencing old table as old_rows for each statement execute function public.conversations_count_deleted();

-- Counts of conversations that already have messages.
update public.conversations c set message_count = (select count(*) from public.messages m where m.conversation_id = c.id);
