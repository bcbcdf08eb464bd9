"""The whole suite: PostgreSQL, Redis and the three services as separate processes.

Everything is started the way an operator would: migrations and the worker
account through ``janitor-db``, the services through their console scripts
reading one ``janitor.conf``. The test then plays the runner: it records
runs and builds in the database, puts real packages and ``.changes`` in the
artifact store, and publishes ``result`` messages.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from janitor_dev.debbuild import build_upload
from janitor_dev.suite import Suite, running_suite
from janitor_dev.testing import console_script

WORKER, PASSWORD = "runner-1", "s3cret pass"


@pytest.fixture(scope="module")
def suite() -> Iterator[Suite]:
    with running_suite("janitor-suite-", env={"JANITOR_CATCHUP_INTERVAL": "2"}) as suite:
        suite.cli([console_script("janitor-db"), "add-worker", WORKER], stdin=PASSWORD + "\n")
        with psycopg.connect(suite.database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO codebase (name) VALUES ('foo')")
        yield suite


def add_run(
    suite: Suite, run_id: str, campaign: str, version: str, revision: str, *, change_set: str | None = None
) -> None:
    """What the runner records for a successful Debian build, and the artifacts it stores."""
    build_upload(suite.artifacts / run_id, "foo", version, distribution=campaign)
    with psycopg.connect(suite.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO change_set (id, campaign) VALUES (%s, %s)", (change_set or run_id, campaign))
        conn.execute(
            "INSERT INTO run (id, codebase, suite, result_code, revision, main_branch_revision, change_set,"
            " finish_time) VALUES (%s, 'foo', %s, 'success', %s, 'rev-base', %s, now())",
            (run_id, campaign, revision, change_set or run_id),
        )
        conn.execute(
            "INSERT INTO debian_build (run_id, version, distribution, source, binary_packages)"
            " VALUES (%s, %s, %s, 'foo', %s)",
            (run_id, version, campaign, ["foo"]),
        )


def result(run_id: str, campaign: str, revision: str) -> dict[str, object]:
    return {
        "log_id": run_id,
        "code": "success",
        "codebase": "foo",
        "campaign": campaign,
        "revision": revision,
        "main_branch_revision": "rev-base",
        "change_set": run_id,
        "target": {"name": "debian", "details": {"build_distribution": campaign}},
    }


def uploaded(suite: Suite, version: str) -> bool:
    return {f"foo_{version}_source.changes", f"foo_{version}_all.changes"} <= {p.name for p in suite.incoming.iterdir()}


def test_everything_is_ready(suite: Suite) -> None:
    assert suite.ready() == {"bzr-store": 200, "differ": 200, "auto-upload": 200}


def test_worker_push_and_anonymous_branch(suite: Suite, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRZ_", "BZR_"))}
    env.update(BRZ_HOME=str(tmp_path), BRZ_EMAIL="Runner <runner@example.com>", BRZ_PLUGIN_PATH="-site:-user")

    def brz(*args: str, cwd: Path = tmp_path) -> str:
        done = subprocess.run(
            [console_script("brz"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"brz {args}: {done.stderr}"
        return done.stdout

    brz("init", "-q", "work")
    (tmp_path / "work" / "README").write_text("hello\n")
    brz("add", "-q", "README", cwd=tmp_path / "work")
    brz("commit", "-q", "-m", "first", cwd=tmp_path / "work")
    host = suite.public_url.removeprefix("http://")
    brz(
        "push",
        "-q",
        f"bzr+http://{WORKER}:{PASSWORD.replace(' ', '%20')}@{host}/bzr/foo/lintian-fixes/main",
        cwd=tmp_path / "work",
    )
    brz("branch", "-q", f"bzr+http://{host}/bzr/foo/lintian-fixes/main", "copy")
    assert (tmp_path / "copy" / "README").read_text() == "hello\n"
    assert brz("log", "--line", "copy") == brz("log", "--line", "work")
    listing = httpx.get(f"{suite.urls['bzr-store']}/", headers={"Accept": "application/json"})
    assert listing.json() == ["foo"]


def test_result_is_precached_and_uploaded(suite: Suite) -> None:
    add_run(suite, "control-1", "unchanged", "1.0", "rev-base")
    add_run(suite, "changed-1", "lintian-fixes", "1.0+jan1", "rev-1")
    assert suite.publish(result("changed-1", "lintian-fixes", "rev-1")) == 2  # differ and auto-upload

    def precached() -> bool:
        return all((suite.cache / f"{tool}_control-1_changed-1" / "raw").exists() for tool in ("debdiff", "diffoscope"))

    suite.wait_until(precached, 120, "differ precached the pair")
    suite.wait_until(lambda: uploaded(suite, "1.0+jan1"), 60, "auto-upload uploaded the build")
    verify = subprocess.run(
        ["gpg", "--verify", str(suite.incoming / "foo_1.0+jan1_source.changes")],
        env={**os.environ, "GNUPGHOME": str(suite.base / "gnupg")},
        capture_output=True,
    )
    assert verify.returncode == 0
    # The control run's build is not for this distribution: not uploaded.
    assert not uploaded(suite, "1.0")
    diff = httpx.get(f"{suite.urls['differ']}/debdiff/control-1/changed-1", headers={"Accept": "text/plain"})
    assert diff.status_code == 200 and "1.0+jan1" in diff.text


def test_redis_and_postgres_restarts(suite: Suite) -> None:
    all_ok = {"bzr-store": 200, "differ": 200, "auto-upload": 200}
    all_down = {"bzr-store": 503, "differ": 503, "auto-upload": 503}

    suite.redis.stop()
    # bzr-store does not use Redis: it stays ready.
    without_redis = {"bzr-store": 200, "differ": 503, "auto-upload": 503}
    suite.wait_until(lambda: suite.ready() == without_redis, 30, "/ready 503 without Redis where it is used")
    suite.redis.start()
    suite.wait_until(lambda: suite.ready() == all_ok, 30, "/ready 200 with Redis back")
    # The listeners are back: a message now is acted on.
    add_run(suite, "changed-2", "lintian-fixes", "1.0+jan2", "rev-2")
    suite.wait_until(lambda: suite.publish(result("changed-2", "lintian-fixes", "rev-2")) == 2, 30, "resubscribed")
    suite.wait_until(lambda: uploaded(suite, "1.0+jan2"), 60, "upload after Redis came back")

    # A build recorded just before the database goes away; its message comes while it is away.
    add_run(suite, "changed-3", "lintian-fixes", "1.0+jan3", "rev-3")
    suite.pg.stop()
    suite.wait_until(lambda: suite.ready() == all_down, 30, "/ready 503 without PostgreSQL")
    # Requests that need the database answer 503 with the reason, never 500.
    for url, headers in (
        (f"{suite.urls['differ']}/debdiff/no-such-run/other-run", {"Accept": "text/plain"}),
        (f"{suite.urls['differ']}/diffoscope/no-such-run/other-run", {"Accept": "application/json"}),
        (f"{suite.urls['auto-upload']}/uploads", {}),
    ):
        down = httpx.get(url, headers=headers, timeout=30)
        assert down.status_code == 503, (url, down.status_code, down.text)
        assert "database unavailable" in down.text and down.headers["retry-after"] == "5"
    token = base64.b64encode(b"never-cached:password").decode()
    push = httpx.post(
        f"{suite.public_url}/bzr/foo/.bzr/smart",
        content=b"bzr message 3 (bzr 1.6)\n",
        headers={"Authorization": f"Basic {token}"},
        timeout=30,
    )
    assert push.status_code == 503 and "database unavailable" in push.text
    suite.publish(result("changed-3", "lintian-fixes", "rev-3"))
    time.sleep(1)
    suite.pg.start()
    suite.wait_until(lambda: suite.ready() == all_ok, 30, "/ready 200 with PostgreSQL back")
    suite.wait_until(lambda: uploaded(suite, "1.0+jan3"), 60, "no upload lost across the outage")

    def ledger() -> list[tuple[str, str]]:
        with psycopg.connect(suite.database_url) as conn:
            return conn.execute(
                "SELECT run_id, state FROM auto_upload WHERE run_id IN ('changed-2', 'changed-3')"
                " ORDER BY run_id, changes_filename"
            ).fetchall()

    # This test's own builds (it passes alone as well as after the others).
    expected = [(f"changed-{i}", "uploaded") for i in (2, 2, 3, 3)]
    suite.wait_until(lambda: ledger() == expected, 30, f"ledger {expected}")
