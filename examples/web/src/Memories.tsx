import { useLiveQuery, useReplica } from 'supasync/react';
import type { Memory } from './types';

/** What the user marked as important, on every device, newest first (local ids are
 *  UUIDv7: ordered by creation, the same on every device). */
export function Memories() {
  const db = useReplica();
  const rows = useLiveQuery(db.from<Memory & { local_id: string }>('memories').select('*').order('local_id', { ascending: false }))?.data;
  return (
    <section className="panel memories" data-testid="memories">
      <h2>Memories</h2>
      {rows?.length === 0 && <p className="hint">Star a message to remember it.</p>}
      <ul>
        {rows?.map((m) => (
          <li key={m.local_id} data-testid="memory">
            <span>{m.content}</span>
            <button className="link" aria-label="forget" onClick={() => db.delete('memories', m.local_id)}>✕</button>
          </li>
        ))}
      </ul>
    </section>
  );
}
