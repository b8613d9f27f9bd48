"""An app that exits without closing its replica, with a live query and a status
stream running and writes just made, exits cleanly: the library stops calling into
Python before the interpreter finalizes (it used to abort with "exception not
rethrown" about one exit in three)."""
import json
import subprocess
import sys
import textwrap

from conftest import SCHEMA

PROGRAM = textwrap.dedent(
    """
    import asyncio, sys, json
    import supasync

    async def main(url, key, path, schema, email):
        r = await supasync.open_replica(url=url, anon_key=key, schema=json.loads(schema), path=path)
        await r.sign_up(email, "correct-horse-battery")
        live = r.live("conversations")
        statuses = r.statuses()
        await live.__anext__()
        await statuses.__anext__()
        for i in range(5):
            await r.insert("conversations", {"title": f"left open {i}"})
        print("leaving without close", flush=True)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_exiting_without_close_does_not_crash(server, tmp_path):
    for run in range(6):
        out = subprocess.run(
            [sys.executable, "-c", PROGRAM, server["SUPABASE_URL"], server["SUPABASE_ANON_KEY"], str(tmp_path / str(run)),
             json.dumps(SCHEMA), f"exit-{run}-{tmp_path.name}@example.com"],
            capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, f"run {run}: exit {out.returncode}: {out.stderr[-2000:]}"
        assert "leaving without close" in out.stdout
