"""The dev server (real PostgreSQL) with the chat schema, once per test session."""
import json
import os
import pathlib
import subprocess
import time
import urllib.request
import uuid

import socket

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "examples/chat/schema.json").read_text())


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("SUPASYNC_DEV_BIN", str(ROOT / "target/debug/supasync-dev"))
    proc = subprocess.Popen(
        [binary, "--port", str(free_port()), "--migrations", str(ROOT / "examples/chat/migrations")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    env = {}
    deadline = time.time() + 60
    while "DATABASE_URL" not in env:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"supasync-dev did not start: {proc.stderr.read()}")
        if "=" in line:
            k, v = line.strip().split("=", 1)
            env[k] = v
        if time.time() > deadline:
            raise RuntimeError("supasync-dev did not start in time")
    yield env
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def user(server):
    """A fresh account: (email, password)."""
    email = f"py-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct-horse-battery"
    req = urllib.request.Request(
        f"{server['SUPABASE_URL']}/auth/v1/signup",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"apikey": server["SUPABASE_ANON_KEY"], "content-type": "application/json"},
    )
    urllib.request.urlopen(req).read()
    return email, password
