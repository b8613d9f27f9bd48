// Virgil, the multi-device chat of seed 004, on supasync. The whole sync set-up is the
// openReplica call below; everything else is an ordinary React app using the hooks.
import { createRoot } from 'react-dom/client';
import { openReplica } from 'supasync';
import { ReplicaProvider } from 'supasync/react';
import schema from '../../chat/schema.json';
import { App } from './App';
import './styles.css';

const url = import.meta.env.VITE_SUPABASE_URL as string;
const anonKey = import.meta.env.VITE_SUPABASE_ANON_KEY as string;

// The SDK's own auth (sign up / sign in below). An app that already signs in with
// supabase-js passes its token instead, and the SDK keeps none:
//
//   const supabase = createClient(url, anonKey);
//   const db = await openReplica({ url, anonKey, schema,
//     accessToken: async () => (await supabase.auth.getSession()).data.session?.access_token ?? null });
//   supabase.auth.onAuthStateChange(() => db.auth.refreshUser());
const db = await openReplica({ url, anonKey, schema });

if ('serviceWorker' in navigator && import.meta.env.PROD) {
  navigator.serviceWorker.register('/sw.js').catch((e) => console.warn('no offline shell:', e));
}

createRoot(document.getElementById('root')!).render(
  <ReplicaProvider replica={db}>
    <App />
  </ReplicaProvider>,
);
