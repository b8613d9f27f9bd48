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

if ('serviceWorker' in navigator && import.meta.env.PROD) keepOfflineShell();

/** The app shell offline (public/sw.js). Its install downloads every file of the build;
 *  when that fails (the network dropped, a file did not come), the browser drops the
 *  worker and would try again only on the next load. So it is tried again here, when
 *  the browser is back online or after a pause that doubles up to a minute: the next
 *  start without a network still finds the app. */
function keepOfflineShell(pause = 2000) {
  let again = false;
  const retry = () => {
    if (again) return;
    again = true;
    const next = () => keepOfflineShell(Math.min(pause * 2, 60000));
    const timer = setTimeout(() => { removeEventListener('online', onOnline); next(); }, pause);
    const onOnline = () => { clearTimeout(timer); next(); };
    addEventListener('online', onOnline, { once: true });
  };
  navigator.serviceWorker.register('/sw.js').then((reg) => {
    if (reg.active) return;
    const worker = reg.installing ?? reg.waiting;
    // Nothing installing, waiting or active: the install failed before this ran (a
    // busy page hears back from `register` late).
    if (!worker) return retry();
    const check = () => { if (worker.state === 'redundant' && !reg.active) retry(); };
    worker.addEventListener('statechange', check);
    check();
  }, (e) => {
    console.warn('no offline shell yet:', e);
    retry();
  });
}

createRoot(document.getElementById('root')!).render(
  <ReplicaProvider replica={db}>
    <App />
  </ReplicaProvider>,
);
