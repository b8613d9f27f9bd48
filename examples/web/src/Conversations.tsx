import { useReplica, useLiveQuery } from 'supasync/react';
import type { Conversation } from './types';

/** The conversation list with the server-kept message counts. */
export function Conversations({ selected, onSelect }: { selected?: string; onSelect: (id: string) => void }) {
  const db = useReplica();
  // Local ids are UUIDv7: newest first by creation, the same order on every device.
  const rows = useLiveQuery<Conversation>('conversations', { order: 'local_id.desc' });

  async function create() {
    const c = await db.insert<Conversation>('conversations', { title: 'New conversation' });
    onSelect(c.local_id);
  }

  return (
    <nav className="conversations">
      <button onClick={create}>+ New conversation</button>
      <ul>
        {rows?.map((c) => (
          <li key={c.local_id} className={c.local_id === selected ? 'selected' : ''} onClick={() => onSelect(c.local_id)} data-testid="conversation">
            <span className="title">{c.row.title || 'Untitled'}</span>
            <span className="count" data-testid="count" title="messages">{c.row.message_count ?? 0}</span>
            {c.status.state !== 'synced' && <span className={`state state-${c.status.state}`} title={c.status.state} />}
          </li>
        ))}
      </ul>
    </nav>
  );
}
