"""An encrypted replica from Python: nothing of the user's data in the files on disk,
a wrong key is its own error kind, and a plaintext replica with writes waiting is
encrypted, rekeyed, and then syncs them once."""
import asyncio
import os

import pytest

import supasync
from conftest import SCHEMA


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


async def replica(server, path, key=None):
    return await supasync.open_replica(
        url=server["SUPABASE_URL"], anon_key=server["SUPABASE_ANON_KEY"], schema=SCHEMA, path=str(path), encryption_key=key
    )


def disk(path):
    users = path / "users"
    return b"".join((users / f).read_bytes() for f in os.listdir(users))


def test_an_encrypted_replica_shows_nothing_on_disk_and_a_wrong_key_is_refused(server, user, tmp_path):
    key = os.urandom(32)

    async def main():
        a = await replica(server, tmp_path, key)
        await a.sign_in(*user)
        c = await a.insert("conversations", {"title": "Python secrets"})
        await a.insert("messages", {"conversation_id": c["local_id"], "role": "user", "content": "the door code is 4711"})
        await a.sync(timeout_s=30)
        await a.close()
        raw = disk(tmp_path)
        # Whole strings: a needle of a few bytes turns up in megabytes of ciphertext by chance.
        for needle in [b"Python secrets", b"the door code is 4711", user[0].encode(), b"SQLite format 3"]:
            assert needle not in raw, needle
        with pytest.raises(supasync.SupaSyncError) as e:
            await replica(server, tmp_path, os.urandom(32))
        assert e.value.kind == "key"
        with pytest.raises(supasync.SupaSyncError) as e:
            await replica(server, tmp_path, b"short")
        assert e.value.kind == "key" and "32 bytes" in e.value.message
        again = await replica(server, tmp_path, key)
        assert (await again.user())["email"] == user[0]
        assert [r["row"]["title"] for r in await again.query("conversations")] == ["Python secrets"]
        await again.close()

    run(main())


def test_a_plaintext_replica_with_waiting_writes_is_encrypted_rekeyed_and_syncs_them_once(server, user, tmp_path):
    old, new = os.urandom(32), os.urandom(32)

    async def main():
        a = await replica(server, tmp_path / "a")
        await a.sign_in(*user)
        await a.pause()  # writes wait, as offline
        c = await a.insert("conversations", {"title": "waiting through a rekey"})
        await a.insert("messages", {"conversation_id": c["local_id"], "role": "user", "content": "still here"})
        assert (await a.status())["pending"] == 2
        await a.close()
        supasync.rekey_replica(tmp_path / "a", old_key=None, new_key=old)
        supasync.rekey_replica(tmp_path / "a", old_key=old, new_key=new)
        assert b"still here" not in disk(tmp_path / "a")
        a = await replica(server, tmp_path / "a", new)
        settled = await a.sync(timeout_s=30)
        assert settled["status"]["pending"] == 0
        b = await replica(server, tmp_path / "b")
        await b.sign_in(*user)
        await b.sync(timeout_s=30)
        rows = await b.query("messages", where={"conversation_id": c["local_id"]})
        assert [r["row"]["content"] for r in rows] == ["still here"], "once, with its parent"
        await a.close()
        await b.close()

    run(main())
