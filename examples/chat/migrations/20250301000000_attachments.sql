-- Attachments: a message may name a file (`attachment`, its path) in Storage's
-- private `attachments` bucket. Each user uploads into their own folder (the path
-- starts with their user id); a file can be read by its owner and by whoever can read
-- a message naming it (the other members of a shared conversation), so the rule for
-- files follows the rule for messages. Files up to 50 MB.
alter table public.messages add column if not exists attachment text;

insert into storage.buckets (id, name, public, file_size_limit)
  values ('attachments', 'attachments', false, 52428800)
  on conflict (id) do nothing;

create policy "attachments: upload into one's own folder" on storage.objects for insert to authenticated
  with check (bucket_id = 'attachments' and (storage.foldername(name))[1] = auth.uid()::text);
create policy "attachments: read one's own, or one a readable message names" on storage.objects for select to authenticated
  using (bucket_id = 'attachments' and (
    (storage.foldername(name))[1] = auth.uid()::text
    or exists (select 1 from public.messages m where m.attachment = storage.objects.name)));
create policy "attachments: remove one's own" on storage.objects for delete to authenticated
  using (bucket_id = 'attachments' and (storage.foldername(name))[1] = auth.uid()::text);
