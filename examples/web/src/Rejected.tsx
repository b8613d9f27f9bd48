import { useReplica, useRejected } from 'supasync/react';

/** Writes the server refused, with its reason, to retry (after a fix) or discard. */
export function Rejected() {
  const db = useReplica();
  const list = useRejected();
  if (list.length === 0) return null;
  return (
    <section className="panel rejected" data-testid="rejected">
      <h2>Not saved</h2>
      <ul>
        {list.map((e) => (
          <li key={e.seq} data-testid="rejected-write">
            <div className="what">
              {e.op.op === 'call' ? `${e.op.function} on` : e.op.op} in {e.table}
              {(e.op.op === 'insert' || e.op.op === 'update') && <q>{String((e.op.op === 'insert' ? e.op.row : e.op.fields).content ?? (e.op.op === 'insert' ? e.op.row : e.op.fields).title ?? '')}</q>}
            </div>
            <div className="reason" data-testid="reason">{e.rejected}</div>
            <div className="row">
              <button className="secondary" onClick={() => db.retry(e.local_id)}>Retry</button>
              <button className="secondary" onClick={() => db.discard(e.local_id)}>Discard</button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}
