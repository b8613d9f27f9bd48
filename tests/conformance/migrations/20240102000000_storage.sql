-- Storage for the conformance suite: a private bucket where each user owns the folder
-- named by their id (the policy Supabase's docs give), and a public bucket anyone reads.
INSERT INTO storage.buckets (id, name, public) VALUES ('user-files', 'user-files', false)
  ON CONFLICT (id) DO NOTHING;
INSERT INTO storage.buckets (id, name, public, allowed_mime_types) VALUES ('avatars', 'avatars', true, ARRAY['image/*'])
  ON CONFLICT (id) DO NOTHING;

CREATE POLICY "own folder: read" ON storage.objects FOR SELECT TO authenticated
  USING (bucket_id = 'user-files' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "own folder: write" ON storage.objects FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'user-files' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "own folder: update" ON storage.objects FOR UPDATE TO authenticated
  USING (bucket_id = 'user-files' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "own folder: delete" ON storage.objects FOR DELETE TO authenticated
  USING (bucket_id = 'user-files' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "avatars: anyone signed in uploads" ON storage.objects FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'avatars');
