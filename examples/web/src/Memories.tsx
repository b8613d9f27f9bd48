import { useLiveQuery, useReplica } from 'supasync/react';
import type { Memory } from './types';

/** What the user marked as important, on every device. */
export function Memories() {
  const db = useReplica();
  const rows = useLiveQuery<Memory>('memories', { order: 'local_id.desc' });
  return (
    <section className="panel memories" data-testid="memories">
      <h2>Memories</h2>
      {rows?.length === 0 && <p className="hint">Star a message to remember it.</p>}
      <ul>
        {rows?.map((m) => (
          <li key={m.local_id} data-testid="memory">
            <span>{m.row.content}</span>
            <button className="link" aria-label="forget" onClick={() => db.delete('memories', m.local_id)}>✕</button>
          </li>
        ))}
      </ul>
    </section>
  );
}
