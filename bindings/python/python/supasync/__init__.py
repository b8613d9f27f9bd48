"""supasync for Python: offline-first sync for Supabase.

A local SQLite replica per user (the CLI's layout: ``path/users/<user>.db``), writes
that show at once and are pushed exactly once, refusals rolled back with the server's
reason, catch-up and live sync over Realtime. The same verbs and shapes as the CLI and
the npm package: a row is ``{"local_id", "row", "status"}``; every failure raises
:class:`SupaSyncError` with a ``kind``.

This module is a thin asyncio layer over the generated uniffi module
(``supasync.supasync_ffi``): dictionaries in and out, async iterators for live queries
and statuses.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
from typing import Any, AsyncIterator, Dict, List, Optional, Union

from . import supasync_ffi as _ffi

# Listeners are called from the library's threads: stop them before the interpreter
# finalizes, or an app that exits with a live query running could crash on the way out.
atexit.register(_ffi.shutdown_callbacks)

__all__ = ["SupaSyncError", "Replica", "Channel", "open_replica", "rekey_replica"]

Row = Dict[str, Any]


class SupaSyncError(Exception):
    """Every failure: ``kind`` (``invalid``, ``store``, ``key``, ``server``, ``auth``,
    ``not_found``, ``timeout``, ``closed``, ``config``) and a message saying why."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def _err(e: BaseException) -> BaseException:
    if isinstance(e, _ffi.SupaSyncError.Failed):
        return SupaSyncError(e.kind, e.detail)
    return e


async def _call(coro):
    try:
        return await coro
    except _ffi.SupaSyncError as e:  # the generated base class
        raise _err(e) from None


def _query(where: Optional[Row], order: Optional[str], limit: Optional[int]) -> str:
    return json.dumps({"where": where, "order": order, "limit": limit})


def _select_options(count: bool, single: bool, maybe_single: bool) -> str:
    if single and maybe_single:
        raise SupaSyncError("invalid", "single and maybe_single exclude each other")
    cardinality = "one" if single else "maybe_one" if maybe_single else "many"
    return json.dumps({"count": count, "cardinality": cardinality})


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as e:
        raise SupaSyncError("invalid", f"{what}: not JSON-serialisable: {e}") from None


class _Queue:
    """Hands values from the library's threads to an asyncio queue."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()

    def put(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more


_END = object()


class _RowsListener(_ffi.RowsListener):
    def __init__(self, q: _Queue):
        self.q = q

    def on_rows(self, rows_json: str) -> None:
        self.q.put(json.loads(rows_json))

    def on_error(self, kind: str, message: str) -> None:
        self.q.put(SupaSyncError(kind, message))

    def on_end(self) -> None:
        self.q.put(_END)


class _StatusListener(_ffi.StatusListener):
    def __init__(self, q: _Queue):
        self.q = q

    def on_status(self, status_json: str) -> None:
        self.q.put(json.loads(status_json))

    def on_end(self) -> None:
        self.q.put(_END)


class _ChannelListener(_ffi.ChannelListener):
    def __init__(self, q: _Queue):
        self.q = q

    def on_event(self, event_json: str) -> None:
        self.q.put(json.loads(event_json))


class _Stream:
    """An async iterator over a subscription; ``aclose()`` (or leaving an ``async
    for`` early, or garbage collection) cancels it."""

    def __init__(self, start):
        self._start = start
        self._sub = None
        self._q: Optional[_Queue] = None
        self._done = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._done:
            raise StopAsyncIteration
        if self._q is None:
            self._q = _Queue()
            self._sub = await _call(self._start(self._q))
        item = await self._q.queue.get()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    async def aclose(self) -> None:
        self._done = True
        if self._sub is not None:
            self._sub.cancel()
            self._sub = None


class Channel:
    """Broadcast (acknowledged) and presence on the replica's Realtime socket."""

    def __init__(self, inner, q: _Queue):
        self._inner = inner
        self._q = q
        self._presence: Dict[str, List[Any]] = {}

    async def send(self, event: str, payload: Any) -> None:
        await _call(self._inner.send(event, _dumps(payload, "payload")))

    async def track(self, payload: Row) -> None:
        await _call(self._inner.track(_dumps(payload, "presence payload")))

    async def untrack(self) -> None:
        await _call(self._inner.untrack())

    def presence(self) -> Dict[str, List[Any]]:
        """Who was present at the last event read from :meth:`events`."""
        return self._presence

    async def events(self) -> AsyncIterator[Dict[str, Any]]:
        """``{"type": "broadcast", "event", "payload"}``, ``{"type": "presence", "state"}``,
        ``{"type": "join" | "leave", "key", "metas"}``, ``{"type": "state", "state"}``."""
        while True:
            ev = await self._q.queue.get()
            if ev.get("type") == "presence":
                self._presence = ev.get("state") or {}
            yield ev

    def leave(self) -> None:
        self._inner.leave()


class Replica:
    """One user's replica on this device. Live sync runs while someone is signed in."""

    def __init__(self, inner) -> None:
        self._inner = inner

    async def sign_up(self, email: str, password: str) -> Row:
        return json.loads(await _call(self._inner.sign_up(email, password)))

    async def sign_in(self, email: str, password: str) -> Row:
        return json.loads(await _call(self._inner.sign_in(email, password)))

    async def sign_out(self, wipe: bool = False) -> None:
        await _call(self._inner.sign_out(wipe))

    async def user(self) -> Optional[Row]:
        u = await _call(self._inner.user())
        return None if u is None else json.loads(u)

    async def insert(self, table: str, row: Row) -> Row:
        return json.loads(await _call(self._inner.insert(table, _dumps(row, "row"))))

    async def update(self, table: str, local_id: str, fields: Row) -> Row:
        return json.loads(await _call(self._inner.update(table, local_id, _dumps(fields, "fields"))))

    async def delete(self, table: str, local_id: str) -> None:
        await _call(self._inner.delete(table, local_id))

    async def call(self, table: str, local_id: str, function: str, args: Optional[Row] = None, effect: Optional[Row] = None) -> Row:
        """Queue a call of a server function on a row (one the SQL kit allows, such as a
        usage counter): it runs once on the server, in order with the row's writes;
        ``effect`` shows at once until the server's result replaces it."""
        return json.loads(await _call(self._inner.call(
            table, local_id, function, _dumps({} if args is None else args, "args"), _dumps({} if effect is None else effect, "effect"))))

    async def get(self, table: str, local_id: str) -> Optional[Row]:
        r = await _call(self._inner.get(table, local_id))
        return None if r is None else json.loads(r)

    async def query(self, table: str, where: Optional[Row] = None, order: Optional[str] = None, limit: Optional[int] = None) -> List[Row]:
        return json.loads(await _call(self._inner.query(table, _query(where, order, limit))))

    async def select(self, url: str, count: bool = False, single: bool = False, maybe_single: bool = False) -> Row:
        """A query in PostgREST's URL syntax, answered from the replica, e.g.
        ``await db.select("conversations?select=title,messages(count)&order=title")``.
        Returns ``{"data", "count", "sync"}``: ``data`` as PostgREST shapes it (one object,
        or None, with ``single``/``maybe_single``), ``count`` with ``count=True``, and
        each row's ``local_id`` and sync ``status`` in ``sync``."""
        return json.loads(await _call(self._inner.select(url, _select_options(count, single, maybe_single))))

    def live_select(self, url: str, count: bool = False, single: bool = False, maybe_single: bool = False) -> _Stream:
        """``async for answer in db.live_select(url)``: the answer now, then after every
        change to a table the query reads (embeds included) that alters it."""
        options = _select_options(count, single, maybe_single)
        return _Stream(lambda queue: self._inner.live_select(url, options, _RowsListener(queue)))

    async def sync(self, timeout_s: float = 30) -> Row:
        """Push, then pull, until no write waits (as ``supasync sync``)."""
        return json.loads(await _call(self._inner.sync(int(max(timeout_s, 0) * 1000))))

    async def sync_now(self) -> None:
        await _call(self._inner.sync_now())

    async def status(self) -> Row:
        return json.loads(await _call(self._inner.status()))

    async def rejected(self) -> List[Row]:
        return json.loads(await _call(self._inner.rejected()))

    async def retry(self, local_id: str) -> None:
        await _call(self._inner.retry(local_id))

    async def discard(self, local_id: str) -> None:
        await _call(self._inner.discard(local_id))

    async def history(self, limit: int = 20) -> List[Row]:
        return json.loads(await _call(self._inner.history(limit)))

    async def upload_file(self, bucket: str, path: str, data: bytes, content_type: str = "application/octet-stream") -> Row:
        """Keep ``data`` as ``bucket/path`` here at once and queue its upload; it goes
        before any row that names it. Returns the file (``status``, ``size``, ...)."""
        return json.loads(await _call(self._inner.upload_file(bucket, path, bytes(data), content_type)))

    async def file(self, bucket: str, path: str) -> Optional[Row]:
        """What this device knows of a file, or ``None``."""
        f = await _call(self._inner.file(bucket, path))
        return None if f is None else json.loads(f)

    async def files(self, bucket: str) -> List[Row]:
        return json.loads(await _call(self._inner.files(bucket)))

    async def read_file(self, bucket: str, path: str) -> bytes:
        """The file's bytes: kept here (offline too), else downloaded and kept."""
        return bytes(await _call(self._inner.read_file(bucket, path)))

    async def file_url(self, bucket: str, path: str) -> str:
        """A ``file://`` URL of the file on disk, offline too."""
        return await _call(self._inner.file_url(bucket, path))

    async def remove_file(self, bucket: str, path: str) -> None:
        await _call(self._inner.remove_file(bucket, path))

    async def set_mode(self, mode: Union[str, int]) -> None:
        """``"realtime"``, ``"manual"``, or a polling interval in milliseconds."""
        if isinstance(mode, bool) or not isinstance(mode, (str, int)):
            raise SupaSyncError("invalid", "a sync mode is 'realtime', 'manual' or milliseconds between polls")
        await _call(self._inner.set_mode(mode if isinstance(mode, str) else f"every:{mode}"))

    async def pause(self) -> None:
        await _call(self._inner.pause())

    async def resume(self) -> None:
        await _call(self._inner.resume())

    def live(self, table: str, where: Optional[Row] = None, order: Optional[str] = None, limit: Optional[int] = None) -> _Stream:
        """``async for rows in replica.live(...)``: the rows now, then after every change."""
        q = _query(where, order, limit)
        return _Stream(lambda queue: self._inner.live(table, q, _RowsListener(queue)))

    def statuses(self) -> _Stream:
        """``async for status in replica.statuses()``: now, then on every change."""
        return _Stream(lambda queue: self._inner.statuses(_StatusListener(queue)))

    async def channel(self, name: str, presence_key: Optional[str] = None) -> Channel:
        q = _Queue()
        inner = await _call(self._inner.channel(name, presence_key, _ChannelListener(q)))
        return Channel(inner, q)

    async def close(self) -> None:
        """Stop syncing; live queries end; later calls raise kind ``closed``."""
        await _call(self._inner.close_replica())


async def open_replica(
    *,
    url: str,
    anon_key: str,
    schema: Union[Row, str, "os.PathLike[str]"],
    path: Optional[Union[str, "os.PathLike[str]"]] = None,
    encryption_key: Optional[bytes] = None,
) -> Replica:
    """Open the replica of the user signed in on this device (``path`` is the replica
    directory; without one it lives in memory). ``schema`` is the CLI's JSON schema: a
    dict, JSON text, or the path of a JSON file.

    With ``encryption_key`` (32 bytes, kept in the system's keyring) every user's store
    in ``path`` is encrypted at rest; plaintext stores there are encrypted as they open,
    pending writes kept. A key that does not open them raises kind ``key``."""
    if isinstance(schema, dict):
        schema_json = json.dumps(schema)
    elif isinstance(schema, os.PathLike) or (isinstance(schema, str) and not schema.lstrip().startswith("{")):
        try:
            with open(schema, encoding="utf-8") as f:
                schema_json = f.read()
        except OSError as e:
            raise SupaSyncError("config", f"schema: {e}") from None
    else:
        schema_json = schema
    if encryption_key is None:
        inner = await _call(_ffi.open_replica(url, anon_key, schema_json, None if path is None else os.fspath(path)))
    elif path is None:
        raise SupaSyncError("invalid", "an encryption key needs a replica directory (path): a replica in memory is never on disk")
    else:
        inner = await _call(_ffi.open_encrypted_replica(url, anon_key, schema_json, os.fspath(path), bytes(encryption_key)))
    return Replica(inner)


def rekey_replica(path: Union[str, "os.PathLike[str]"], *, old_key: Optional[bytes], new_key: bytes) -> None:
    """Encrypt the closed replica in ``path`` with ``new_key`` (every user's store), from
    ``old_key`` (``None``: it is plaintext). Pending writes stay pending. Run it again
    with the same keys if it stopped half way."""
    try:
        _ffi.rekey_replica(os.fspath(path), None if old_key is None else bytes(old_key), bytes(new_key))
    except _ffi.SupaSyncError as e:
        raise _err(e) from None
