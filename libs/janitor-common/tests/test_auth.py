import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.auth import check_worker, parse_basic
from janitor_common.db.engine import make_async_engine

JANITOR_DB = str(Path(sys.executable).parent / "janitor-db")


def janitor_db(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JANITOR_")}
    env["JANITOR_DATABASE_URL"] = database_url
    return subprocess.run([JANITOR_DB, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(database_url)
    yield engine
    await engine.dispose()


async def test_add_worker_then_auth(database_url: str, engine: AsyncEngine) -> None:
    proc = janitor_db(database_url, "add-worker", "alice", "--link", "https://w/alice", stdin="s3cret pass\n")
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr

    assert await check_worker(engine, "alice", "s3cret pass")
    assert not await check_worker(engine, "alice", "wrong")
    assert not await check_worker(engine, "bob", "s3cret pass")

    listed = janitor_db(database_url, "list-workers")
    assert listed.stdout.splitlines() == ["alice\thttps://w/alice\twrites: anywhere"]
    again = janitor_db(database_url, "add-worker", "alice", stdin="x\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert janitor_db(database_url, "remove-worker", "alice").returncode == 0
    assert not await check_worker(engine, "alice", "s3cret pass")
    gone = janitor_db(database_url, "remove-worker", "alice")
    assert gone.returncode == 1 and "no such worker" in gone.stderr


def test_grant_and_revoke(database_url: str) -> None:
    assert janitor_db(database_url, "add-worker", "dave", stdin="pw\n").returncode == 0
    granted = janitor_db(database_url, "grant", "dave", "--codebase", "a*")
    assert granted.returncode == 0 and "codebases 'a*', campaigns '*'" in granted.stdout
    assert janitor_db(database_url, "grant", "dave", "--codebase", "b*", "--campaign", "lintian-*").returncode == 0
    assert janitor_db(database_url, "grant", "dave", "--codebase", "a*").returncode == 0  # again: no change
    listed = janitor_db(database_url, "list-workers").stdout.splitlines()
    assert listed == ["dave\t-\twrites: codebase=a* campaign=*; codebase=b* campaign=lintian-*"]

    assert janitor_db(database_url, "grant", "nobody").returncode == 1
    bad = janitor_db(database_url, "grant", "dave", "--codebase", "a/b")
    assert bad.returncode == 2 and "invalid codebase pattern" in bad.stderr
    missing = janitor_db(database_url, "revoke", "dave", "--codebase", "c*")
    assert missing.returncode == 1 and "no such grant" in missing.stderr

    one = janitor_db(database_url, "revoke", "dave", "--codebase", "a*")
    assert one.returncode == 0 and "anywhere" not in one.stdout
    assert janitor_db(database_url, "list-workers").stdout.splitlines() == [
        "dave\t-\twrites: codebase=b* campaign=lintian-*"
    ]
    last = janitor_db(database_url, "revoke", "dave", "--all")
    assert last.returncode == 0 and "may write anywhere again" in last.stdout
    assert janitor_db(database_url, "grant", "dave", "--codebase", "x*").returncode == 0
    assert janitor_db(database_url, "remove-worker", "dave").returncode == 0  # its grants go with it
    assert janitor_db(database_url, "add-worker", "dave", stdin="pw\n").returncode == 0
    assert janitor_db(database_url, "list-workers").stdout.splitlines() == ["dave\t-\twrites: anywhere"]


def test_worker_keys(database_url: str, tmp_path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "eve@host", "-f", str(tmp_path / "k")], check=True
    )
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert janitor_db(database_url, "add-worker", "eve", stdin="pw\n").returncode == 0
    added = janitor_db(database_url, "add-worker-key", "eve", str(tmp_path / "k.pub"))
    assert added.returncode == 0 and expected in added.stdout  # the fingerprint ssh-keygen shows
    assert (
        janitor_db(database_url, "add-worker-key", "eve", str(tmp_path / "k.pub")).returncode == 0
    )  # again: kept once
    listed = janitor_db(database_url, "list-workers").stdout.splitlines()
    assert listed == [f"eve\t-\twrites: anywhere\tssh keys: {expected}"]
    (tmp_path / "bad.pub").write_text("ssh-ed25519 not-base64!\n")
    bad = janitor_db(database_url, "add-worker-key", "eve", str(tmp_path / "bad.pub"))
    assert bad.returncode == 2 and "base64" in bad.stderr
    assert janitor_db(database_url, "add-worker-key", "nobody", str(tmp_path / "k.pub")).returncode == 1
    assert janitor_db(database_url, "remove-worker-key", "eve", expected).returncode == 0
    assert janitor_db(database_url, "remove-worker-key", "eve", expected).returncode == 1
    assert janitor_db(database_url, "list-workers").stdout.splitlines() == ["eve\t-\twrites: anywhere"]


def test_add_worker_rejects_empty_password(database_url: str) -> None:
    proc = janitor_db(database_url, "add-worker", "carol", stdin="")
    assert proc.returncode == 2 and "empty password" in proc.stderr


def test_add_codebase(database_url: str) -> None:
    assert janitor_db(database_url, "add-codebase", "foo", "--url", "https://x/foo").returncode == 0
    assert janitor_db(database_url, "add-codebase", "foo").returncode == 1
    bad = janitor_db(database_url, "add-codebase", "../etc")
    assert bad.returncode == 2 and "invalid codebase name" in bad.stderr


def test_unreachable_database_is_one_line() -> None:
    proc = janitor_db("postgresql://nobody@127.0.0.1:1/none", "list-workers")
    assert proc.returncode == 1
    assert proc.stderr.startswith("janitor-db: cannot use the database:") and "Traceback" not in proc.stderr


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_parse_basic() -> None:
    assert parse_basic("Basic " + base64.b64encode(b"a:b:c").decode()) == ("a", "b:c")
    assert parse_basic("Bearer x") is None
    assert parse_basic("Basic " + base64.b64encode(b"nocolon").decode()) is None
    assert parse_basic(None) is None


@pytest.mark.parametrize("name", ["alice", "nobody"])
def test_unknown_and_known_workers_cost_the_same_bcrypt(database_url: str, name: str) -> None:
    """One crypt() call either way, counted by PostgreSQL itself (no timing in a test)."""
    import psycopg

    from janitor_common.auth import _CHECK, _DUMMY_HASH

    assert janitor_db(database_url, "add-worker", "alice", stdin="right\n").returncode == 0
    with psycopg.connect(database_url) as conn:
        conn.execute("SET LOCAL track_functions = 'all'")
        ok = conn.execute(
            str(_CHECK)
            .replace(":password", "%(password)s")
            .replace(":dummy", "%(dummy)s")
            .replace(":name", "%(name)s"),
            {"name": name, "password": "wrong", "dummy": _DUMMY_HASH},
        ).fetchone()
        calls = conn.execute("SELECT pg_stat_get_xact_function_calls('crypt(text, text)'::regprocedure)").fetchone()
    assert ok == (False,)
    assert calls == (1,)


async def test_credentials_postgresql_cannot_store_are_refused_without_a_query(engine: AsyncEngine) -> None:
    await engine.dispose()
    broken = make_async_engine("postgresql://nobody@127.0.0.1:1/none")  # any query would fail
    assert not await check_worker(broken, "demo-worker\x00", "x")
    assert not await check_worker(broken, "demo-worker", "pass\x00word")
    await broken.dispose()
    assert parse_basic("Basic " + base64.b64encode(b"demo-worker\x00:x").decode()) is None
    assert parse_basic("Basic " + base64.b64encode(b"demo:pass\x00").decode()) is None
    assert parse_basic("Basic ZGVtbz\npwYXNz") is None
