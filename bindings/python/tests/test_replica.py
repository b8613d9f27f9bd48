"""supasync from Python, as an app uses it: two replicas of one user in two
directories, against the dev server (real PostgreSQL)."""
import asyncio

import pytest

import supasync
from conftest import SCHEMA


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


async def replica(server, path):
    return await supasync.open_replica(url=server["SUPABASE_URL"], anon_key=server["SUPABASE_ANON_KEY"], schema=SCHEMA, path=str(path))


def test_offline_writes_with_a_parent_sync_and_restore_on_another_device(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path / "a")
        assert await a.user() is None
        me = await a.sign_in(*user)
        assert me["email"] == user[0]
        await a.pause()  # writes wait, as offline
        c = await a.insert("conversations", {"title": "From Python"})
        m = await a.insert("messages", {"conversation_id": c["local_id"], "role": "user", "content": "hello"})
        assert m["status"] == {"state": "pending"}
        assert (await a.status())["pending"] == 2
        settled = await a.sync(timeout_s=30)
        assert settled["status"]["pending"] == 0
        b = await replica(server, tmp_path / "b")
        await b.sign_in(*user)
        await b.sync(timeout_s=30)
        rows = await b.query("messages", where={"conversation_id": c["local_id"]})
        assert [(r["local_id"], r["row"]["content"], r["status"]["state"]) for r in rows] == [(m["local_id"], "hello", "synced")]
        assert (await b.get("conversations", c["local_id"]))["row"]["title"] == "From Python"
        await a.close()
        await b.close()
        # The directory keeps the user's replica: reopening finds them signed in.
        again = await replica(server, tmp_path / "a")
        assert (await again.user())["email"] == user[0]
        assert len(await again.query("messages")) == 1
        await again.close()

    run(main())


def test_a_refused_write_is_rolled_back_with_its_reason_and_discarded(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path)
        await a.sign_in(*user)
        bad = await a.insert("messages", {"role": "robot", "content": "refused"})
        await a.sync(timeout_s=30)
        rejected = await a.rejected()
        assert [r["local_id"] for r in rejected] == [bad["local_id"]]
        assert "messages_role_check" in rejected[0]["rejected"]
        assert await a.get("messages", bad["local_id"]) is None, "rolled back"
        await a.discard(bad["local_id"])
        assert await a.rejected() == []
        await a.close()

    run(main())


def test_a_live_query_on_b_yields_the_message_written_on_a(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path / "a")
        b = await replica(server, tmp_path / "b")
        await a.sign_in(*user)
        await b.sign_in(*user)
        statuses = b.statuses()
        async for s in statuses:
            if s["phase"] == "live":
                break
        await statuses.aclose()
        live = b.live("messages", order="content")
        first = await live.__anext__()
        assert first == []
        await a.insert("messages", {"role": "user", "content": "live from A"})
        async for rows in live:
            if rows:
                assert [r["row"]["content"] for r in rows] == ["live from A"]
                break
        await live.aclose()
        await a.close()
        await b.close()

    run(main())


def test_statuses_report_pending_then_settled(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path)
        await a.sign_in(*user)
        seen = []
        statuses = a.statuses()
        await a.insert("memories", {"content": "remember this"})
        async for s in statuses:
            seen.append(s["pending"])
            if s["pending"] == 0 and 1 in seen:
                break
        await statuses.aclose()
        assert 1 in seen and seen[-1] == 0
        await a.close()

    run(main())


def test_status_counts_every_write_that_returned_and_the_reopened_replica_at_once(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path)
        await a.sign_in(*user)
        await a.pause()  # writes wait, as offline
        c = await a.insert("conversations", {"title": "counted"})
        assert (await a.status())["pending"] == 1
        await asyncio.gather(*(a.insert("messages", {"conversation_id": c["local_id"], "role": "user", "content": f"m{i}"}) for i in range(5)))
        assert (await a.status())["pending"] == 6
        await a.close()
        # Reopened where the server cannot be reached: the six writes still wait, and the
        # status says so as soon as open returns, with live sync starting (not paused).
        again = await supasync.open_replica(url="http://127.0.0.1:9", anon_key=server["SUPABASE_ANON_KEY"], schema=SCHEMA, path=str(tmp_path))
        st = await again.status()
        assert st["pending"] == 6
        assert st["phase"] != "paused", st
        await again.close()

    run(main())


def test_bad_input_raises_supasync_errors_with_kinds(server, user, tmp_path):
    async def main():
        with pytest.raises(supasync.SupaSyncError) as e:
            await supasync.open_replica(url="not a url", anon_key="k", schema=SCHEMA)
        assert e.value.kind == "invalid"
        with pytest.raises(supasync.SupaSyncError) as e:
            await supasync.open_replica(url=server["SUPABASE_URL"], anon_key="k", schema={"tables": [{"name": "m", "references": {"c": "nowhere"}}]})
        assert e.value.kind == "invalid" and "nowhere" in e.value.message
        a = await replica(server, tmp_path)
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.sign_in(user[0], "wrong password")
        assert e.value.kind == "auth"
        await a.sign_in(*user)
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.insert("nope", {"a": 1})
        assert e.value.kind == "invalid" and "nope" in e.value.message
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.insert("conversations", {"title": object()})
        assert e.value.kind == "invalid"
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.query("conversations", limit=-1)
        assert e.value.kind == "invalid"
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.retry("no-such-write")
        assert e.value.kind == "not_found"
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.set_mode("sometimes")
        assert e.value.kind == "invalid"
        await a.close()
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.sync_now()
        assert e.value.kind == "closed"

    run(main())


def test_closing_while_a_live_query_runs_ends_it_cleanly(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path)
        await a.sign_in(*user)
        live = a.live("conversations")
        assert await live.__anext__() == []
        await a.close()
        ended = [rows async for rows in live]
        assert ended == [], "the iterator ends, without an error"

    run(main())


async def titles_until(live, want):
    """The live query's next result whose titles are `want` (intermediate results, such
    as a row turning from pending to synced, are read past)."""
    async for rows in live:
        titles = [r["row"]["title"] for r in rows]
        if titles == want:
            return titles
    raise AssertionError(f"the live query ended before showing {want}")


def test_a_live_query_follows_the_replica_to_the_next_user(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path)
        await a.sign_in(*user)
        await a.insert("conversations", {"title": "first user's"})
        live = a.live("conversations")
        await titles_until(live, ["first user's"])
        # Another person signs up on the same device: the same iterator now shows
        # their replica (empty), then their own write; the first user's file stays.
        other = await a.sign_up(f"py-other-{tmp_path.name}@example.com", "correct-horse-battery")
        assert (await a.user())["id"] == other["id"]
        await titles_until(live, [])
        await a.insert("conversations", {"title": "second user's"})
        await titles_until(live, ["second user's"])
        await a.sign_in(*user)
        await titles_until(live, ["first user's"])
        await a.close()
        assert [rows async for rows in live] == []

    run(main())


def _signup(server, email):
    import json
    import urllib.request
    req = urllib.request.Request(
        f"{server['SUPABASE_URL']}/auth/v1/signup",
        data=json.dumps({"email": email, "password": "correct-horse-battery"}).encode(),
        headers={"apikey": server["SUPABASE_ANON_KEY"], "content-type": "application/json"},
    )
    urllib.request.urlopen(req).read()
    return email, "correct-horse-battery"


def test_a_conversation_shared_by_email_reaches_the_other_user_and_leaves_when_unshared(server, user, tmp_path):
    import uuid
    guest = _signup(server, f"py-guest-{uuid.uuid4().hex[:10]}@example.com")

    async def main():
        a = await replica(server, tmp_path / "owner")
        b = await replica(server, tmp_path / "guest")
        await a.sign_in(*user)
        await b.sign_in(*guest)
        await a.pause()  # offline: the share is queued after the conversation's insert
        c = await a.insert("conversations", {"title": "Shared from Python"})
        await a.insert("messages", {"conversation_id": c["local_id"], "role": "user", "content": "from the owner"})
        shared = await a.call("conversations", c["local_id"], "share_conversation", args={"email": guest[0]})
        assert shared["status"] == {"state": "pending"}
        assert (await a.sync(timeout_s=30))["status"]["pending"] == 0
        await b.sync(timeout_s=30)
        assert [r["row"]["title"] for r in await b.query("conversations")] == ["Shared from Python"]
        assert [r["row"]["content"] for r in await b.query("messages")] == ["from the owner"]
        # Refused by the server: shown with its reason, never dropped.
        await a.call("conversations", c["local_id"], "share_conversation", args={"email": "nobody@example.com"})
        await a.sync(timeout_s=30)
        rejected = await a.rejected()
        assert len(rejected) == 1 and "no user with the email nobody@example.com" in rejected[0]["rejected"]
        await a.discard(c["local_id"])
        await a.call("conversations", c["local_id"], "unshare_conversation", args={"email": guest[0]})
        await a.sync(timeout_s=30)
        await b.sync(timeout_s=30)
        assert await b.query("conversations") == []
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.call("conversations", c["local_id"], "share_conversation", args=[1])
        assert e.value.kind == "invalid"
        await a.close()
        await b.close()

    run(main())


def test_queries_in_postgrest_syntax_answer_from_the_replica_and_live(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path)
        await a.sign_in(*user)
        await a.pause()
        c = await a.insert("conversations", {"title": "Lisbon"})
        stream = a.live_select(f"messages?select=content,conversations(title)&conversation_id=eq.{c['local_id']}&order=content", count=True)
        first = await stream.__anext__()
        assert (first["data"], first["count"]) == ([], 0)
        await a.insert("messages", {"conversation_id": c["local_id"], "role": "user", "content": "Flights"})
        nxt = await stream.__anext__()
        assert nxt["data"] == [{"content": "Flights", "conversations": {"title": "Lisbon"}}]
        assert nxt["sync"][0]["status"] == {"state": "pending"}
        one = await a.select("conversations?select=title,messages(count)&title=eq.Lisbon", single=True)
        assert one["data"] == {"title": "Lisbon", "messages": [{"count": 1}]}
        with pytest.raises(supasync.SupaSyncError) as e:
            await a.select("conversations?select=*,memories(*)")
        assert e.value.kind == "invalid" and "PGRST200" in str(e.value)
        await stream.aclose()
        await a.close()

    run(main())


def test_a_file_uploaded_offline_goes_before_its_message_and_reaches_the_other_device(server, user, tmp_path):
    async def main():
        a = await replica(server, tmp_path / "a")
        me = await a.sign_in(*user)
        await a.pause()  # offline: nothing leaves
        path = f"{me['id']}/photo.png"
        data = bytes(range(256)) * 100
        f = await a.upload_file("attachments", path, data, "image/png")
        assert (f["status"], f["size"], f["cached"]) == ("pending", 25600, True)
        assert await a.read_file("attachments", path) == data  # from the device
        c = await a.insert("conversations", {"title": "Photos"})
        await a.insert("messages", {"conversation_id": c["local_id"], "role": "user", "content": "look", "attachment": path})
        assert (await a.status())["pending"] == 3
        await a.sync(timeout_s=30)
        assert (await a.file("attachments", path))["status"] == "synced"
        b = await replica(server, tmp_path / "b")
        await b.sign_in(*user)
        await b.sync(timeout_s=30)
        [m] = await b.query("messages", where={"conversation_id": c["local_id"]})
        assert await b.read_file("attachments", m["row"]["attachment"]) == data
        url = await b.file_url("attachments", path)
        assert url.startswith("file://")
        with open(url[len("file://"):], "rb") as fh:
            assert fh.read() == data
        with pytest.raises(supasync.SupaSyncError) as bad:
            await b.upload_file("attachments", "../escape", b"x")
        assert bad.value.kind == "invalid"
        await b.remove_file("attachments", path)
        await b.sync(timeout_s=30)
        assert await b.file("attachments", path) is None
        await a.close()
        await b.close()

    run(main())
