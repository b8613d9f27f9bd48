"""Issue 28's next step, measured in Python's sqlite3 (no supasync code): how the order a
restore writes rows in decides whether rows per second stay flat as the replica grows.

The store's layout (a WITHOUT ROWID `rows` table keyed by local id, 8 KiB pages, WAL,
an index on server ids), pages of 1,000 rows in one transaction each. Local ids in
creation order (as UUIDv7 are), server ids random UUIDs (the chat schema's `messages`).
Three ways:
- walk by server id, index kept during the fill (what a restore of a table written in
  one server transaction does today: the rows' B-tree is written at random places);
- walk by local id, index during the fill (the index is the random one);
- walk by local id, index built once the fill is done (both written in order).

    python3 bench/experiments/fill_order.py 10000 100000 400000
"""
import os
import sqlite3
import sys
import time
import uuid


def run(n, walk, deferred, path='/tmp/supasync-fill-order.db'):
    for s in ('', '-wal', '-shm'):
        if os.path.exists(path + s):
            os.remove(path + s)
    c = sqlite3.connect(path)
    for p in ('page_size=8192', 'journal_mode=wal', 'synchronous=normal', 'wal_autocheckpoint=2048'):
        c.execute('pragma ' + p)
    c.execute('create table rows (tbl text not null, local_id text not null, server_id text, data text not null,'
              ' primary key (tbl, local_id)) without rowid')
    index = 'create index rows_by_server_id on rows (tbl, server_id) where server_id is not null'
    if not deferred:
        c.execute(index)
    pairs = [(str(uuid.uuid4()), '%012d' % g) for g in range(n)]
    pairs.sort(key=(lambda p: p[0]) if walk == 'server' else (lambda p: p[1]))
    doc = 'x' * 420
    start = time.time()
    for i in range(0, n, 1000):
        with c:
            c.executemany("insert into rows values ('messages', ?, ?, ?)", [(k, s, doc) for s, k in pairs[i:i + 1000]])
    if deferred:
        with c:
            c.execute(index)
    c.close()
    return round(n / (time.time() - start))


if __name__ == '__main__':
    for n in [int(x) for x in sys.argv[1:]] or [10000, 100000]:
        for walk, deferred in [('server', False), ('local', False), ('local', True)]:
            rate = run(n, walk, deferred)
            print(f"{n:>8} walk by {walk:6} index {'after' if deferred else 'during'}: {rate:>7} rows/s", flush=True)
