// Virgil on the desktop: the web example's React app, unchanged, on the native SDK.
// `supasync` here is ./tauri-replica.ts (see vite.config.ts), a ReplicaApi on Tauri
// commands; `supasync/react` is the npm package's hooks, which take any ReplicaApi.
import { createRoot } from 'react-dom/client';
import { ReplicaProvider } from 'supasync/react';
import { openReplica, deviceName } from 'supasync';
import { App } from '../../web/src/App';
import '../../web/src/styles.css';

// The web example names a device from `?device=` or localStorage: give it this one's.
localStorage.setItem('virgil:device', await deviceName());
const db = await openReplica();

createRoot(document.getElementById('root')!).render(
  <ReplicaProvider replica={db}>
    <App />
  </ReplicaProvider>,
);
