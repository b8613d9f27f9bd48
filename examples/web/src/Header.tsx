import { useEffect } from 'react';
import type { User } from 'supasync';
import { useChannel, usePresence, useReplica, useSyncStatus } from 'supasync/react';

const PHASES: Record<string, string> = {
  live: 'Connected',
  catching_up: 'Catching up',
  connecting: 'Connecting',
  offline: 'Offline',
  polling: 'Polling',
  paused: 'Paused',
};

/** Seed 004's sync indicator: connected / offline / catching up, and what waits. */
function SyncIndicator() {
  const s = useSyncStatus();
  return (
    <div className={`sync sync-${s.phase}`} data-testid="sync" title={s.last_error ?? ''}>
      <span className="dot" />
      <span data-testid="phase">{PHASES[s.phase] ?? s.phase}</span>
      {s.progress && (
        <span className="pending" data-testid="progress">
          {s.progress.rows.toLocaleString()}
          {s.progress.total ? ` / ${s.progress.total.toLocaleString()}` : ''} {s.progress.table}
        </span>
      )}
      {s.pending > 0 && <span className="pending" data-testid="pending">{s.pending} waiting</span>}
    </div>
  );
}

/** Which of the user's devices are online right now (Realtime presence). */
function Devices({ user, device }: { user: User; device: string }) {
  const channel = useChannel(`devices:${user.id}`, { presenceKey: device });
  const present = usePresence(channel);
  useEffect(() => {
    channel?.track({ device, since: new Date().toISOString() }).catch(() => undefined);
  }, [channel, device]);
  const names = Object.keys(present).sort();
  return (
    <div className="devices" data-testid="devices">
      {names.map((n) => (
        <span key={n} className={n === device ? 'device me' : 'device'}>{n}</span>
      ))}
    </div>
  );
}

export function Header({ user, device }: { user: User; device: string }) {
  const db = useReplica();
  return (
    <header className="header">
      <strong className="brand">Virgil</strong>
      <SyncIndicator />
      <Devices user={user} device={device} />
      <span className="spacer" />
      <span className="email">{user.email}</span>
      <button className="secondary" onClick={() => db.auth.signOut()}>Sign out</button>
    </header>
  );
}
