import { useReplica, useLiveQuery } from 'supasync/react';
import type { Conversation } from './types';

/** A conversation as the list asks for it: with how many messages the replica holds. */
type Listed = Conversation & { local_id: string; messages: { count: number }[] };

/** The conversation list, each with its message count, in one query answered by the
 *  replica (`messages(count)`): a message written offline counts at once, one the
 *  server refuses leaves the count when it is rolled back. */
export function Conversations({ selected, onSelect }: { selected?: string; onSelect: (id: string) => void }) {
  const db = useReplica();
  // Local ids are UUIDv7: newest first by creation, the same order on every device.
  const answer = useLiveQuery(db.from<Listed>('conversations').select('*, messages(count)').order('local_id', { ascending: false }));
  const states = new Map(answer?.sync.map((s) => [s.local_id, s.status.state]));

  async function create() {
    const c = await db.insert<Conversation>('conversations', { title: 'New conversation' });
    onSelect(c.local_id);
  }

  return (
    <nav className="conversations">
      <button onClick={create}>+ New conversation</button>
      <ul>
        {answer?.data?.map((c) => {
          const state = states.get(c.local_id) ?? 'synced';
          return (
            <li key={c.local_id} className={c.local_id === selected ? 'selected' : ''} onClick={() => onSelect(c.local_id)} data-testid="conversation">
              <span className="title">{c.title || 'Untitled'}</span>
              <span className="count" data-testid="count" title="messages">{c.messages[0]?.count ?? 0}</span>
              {state !== 'synced' && <span className={`state state-${state}`} title={state} />}
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
