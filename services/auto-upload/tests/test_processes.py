"""The service as real processes: SIGKILL mid-run, SIGTERM, two replicas; every upload exactly once.

Uploads go over HTTP to :class:`UploadServer`, which counts each .changes
that arrives; that count (not the ledger) is the proof.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import psycopg
import pytest

from janitor_dev.debbuild import build_upload
from janitor_dev.devstack import free_port
from janitor_dev.testing import ServiceProcess, console_script, service_env, wait_until

from .conftest import Keyring, Target, UploadServer, add_build

BUILDS = 50


def start_service(
    name: str,
    database_url: str,
    redis_url: str,
    target: Target,
    keyring: Keyring,
    tmp_path: Path,
    **extra_env: str,
) -> ServiceProcess:
    """The service with its default lease (30 s), as deployed, unless ``extra_env`` says otherwise."""
    port = free_port()
    argv = [
        console_script("janitor-auto-upload"),
        "serve",
        "--port",
        str(port),
        "--dput-host",
        "web",
        "--dput-config",
        str(target.config),
        "--debsign-keyid",
        keyring.fingerprint,
        "--state-dir",
        str(target.state),
        "--source-only",
        "--log-level",
        "INFO",
    ]
    env = service_env(
        JANITOR_DATABASE_URL=database_url,
        JANITOR_REDIS_URL=redis_url,
        JANITOR_ARTIFACT_LOCATION=str(target.artifacts),
        JANITOR_UPLOAD_CONCURRENCY="3",
        JANITOR_CATCHUP_INTERVAL="1",
        JANITOR_RETRY_BASE_SECONDS="0.2",
        GNUPGHOME=str(keyring.home),
    )
    env.update(extra_env)
    proc = ServiceProcess(argv, env, f"http://127.0.0.1:{port}/health", tmp_path / f"{name}.log")
    proc.start()
    return proc


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the tools run in sessions of their own, so a group kill misses them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def signal_all(proc: ServiceProcess, sig: int) -> None:
    """Send ``sig`` to the service and everything it started (freeze or thaw a whole container)."""
    assert proc.proc is not None
    for pid in [proc.proc.pid, *descendants(proc.proc.pid)]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def state_files(target: Target) -> list[Path]:
    return [p for p in target.state.rglob("*") if p.is_file()] if target.state.exists() else []


def kill_all(proc: ServiceProcess) -> int:
    """SIGKILL the service and everything it started, as when its container is killed."""
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGSTOP)  # no new children while we look
    victims = descendants(proc.proc.pid)
    for pid in [proc.proc.pid, *victims]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.proc.wait()
    return len(victims)


def prepare_builds(database_url: str, target: Target, prefix: str) -> set[str]:
    expected = set()
    for i in range(BUILDS):
        build_upload(target.artifacts / f"{prefix}-{i}", f"{prefix}{i}", "1.0", binary=False)
        add_build(database_url, f"{prefix}-{i}", f"{prefix}{i}", "1.0")
        expected.add(f"{prefix}{i}_1.0_source.changes")
    return expected


def upload_counted(server: UploadServer, name: str, count: int) -> bool:
    return server.uploads() == {name: count}


def ledger_states(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        rows: list[tuple[str, str]] = conn.execute("SELECT run_id, state FROM auto_upload").fetchall()
        return dict(rows)


def hold_one_finished_upload(
    database_url: str, service: ServiceProcess, upload_server: UploadServer
) -> tuple[psycopg.Connection, str]:
    """Lock the row of an upload dput is sending, so dput finishes but the ledger cannot hear of it.

    The lock is taken while dput waits at the target, after the holder has
    confirmed its lease (which it could not do through our lock).
    """
    assert service.proc is not None
    upload_server.hold()
    wait_until(lambda: upload_server.parked >= 1, 60, "an upload parked at the target")
    run_id = None
    for pid in descendants(service.proc.pid):
        try:
            if b"dput" in Path(f"/proc/{pid}/cmdline").read_bytes():
                run_id = os.path.basename(os.readlink(f"/proc/{pid}/cwd"))
                break
        except OSError:
            continue
    assert run_id is not None, "a dput is running"
    conn = psycopg.connect(database_url)
    deadline = time.monotonic() + 30
    while True:
        try:
            row = conn.execute("SELECT state FROM auto_upload WHERE run_id = %s FOR UPDATE NOWAIT", (run_id,))
            assert row.fetchone() == ("uploading",)
            break
        except psycopg.errors.LockNotAvailable:  # a lease renewal, for a moment
            conn.rollback()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    upload_server.release(refuse=False)  # the parked uploads complete
    return conn, run_id


@pytest.mark.timeout(300)
def test_sigkill_mid_run_then_restart_uploads_each_exactly_once(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, upload_server: UploadServer, tmp_path: Path
) -> None:
    expected = prepare_builds(database_url, target, "k")
    first = start_service("first", database_url, redis_url, target, keyring, tmp_path)
    try:
        lock, held_run = hold_one_finished_upload(database_url, first, upload_server)
        held_log = target.state / held_run / f"{held_run.replace('-', '')}_1.0_source.web.upload"
        # dput finished (its log is written); the worker now waits on our lock to record it.
        wait_until(held_log.exists, 60, f"dput log for {held_run}")
        # Park arriving .changes so no dput is between "target has it" and "log written" at the kill.
        upload_server.hold()
        time.sleep(0.5)
        killed = kill_all(first)
    finally:
        first.kill()
    upload_server.release(refuse=True)
    lock.rollback()
    lock.close()

    states = ledger_states(database_url)
    done_before = len(upload_server.uploads())
    assert 0 < done_before < BUILDS, "the kill came in the middle of the run"
    assert states[held_run] == "uploading", "the held row's claim belonged to the killed process"
    assert killed >= 1, "tools were running when the kill came"
    assert upload_server.uploads()[held_run.replace("-", "") + "_1.0_source.changes"] == 1

    # Restarted at once, with the default 30 s lease: the dead process's claims
    # are taken up again when their leases lapse, well within a minute.
    second = start_service("second", database_url, redis_url, target, keyring, tmp_path)
    try:
        wait_until(lambda: set(upload_server.uploads()) == expected, 60, "all 50 uploaded within 60 s of the restart")
        wait_until(lambda: set(ledger_states(database_url).values()) == {"uploaded"}, 30, "ledger all uploaded")
        wait_until(lambda: state_files(target) == [], 30, "work directories removed once uploaded")
    finally:
        second.stop()
    assert upload_server.uploads() == dict.fromkeys(expected, 1)
    with psycopg.connect(database_url) as conn:
        (error, output) = conn.execute(  # type: ignore[misc]
            "SELECT last_error, output FROM auto_upload WHERE run_id = %s", (held_run,)
        ).fetchone()
        errors = conn.execute("SELECT count(*) FROM auto_upload WHERE last_error IS NOT NULL").fetchone()
    assert error is None and output.startswith("dput log found after a restart")
    assert errors == (0,), "successful uploads carry no error"


@pytest.mark.timeout(300)
def test_two_replicas_upload_each_exactly_once(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, upload_server: UploadServer, tmp_path: Path
) -> None:
    replicas = [start_service(f"replica-{i}", database_url, redis_url, target, keyring, tmp_path) for i in range(2)]
    try:
        expected = prepare_builds(database_url, target, "r")
        wait_until(lambda: set(upload_server.uploads()) == expected, 120, "all 50 uploaded")
        wait_until(lambda: set(ledger_states(database_url).values()) == {"uploaded"}, 30, "ledger all uploaded")
        wait_until(lambda: state_files(target) == [], 30, "work directories removed once uploaded")
        time.sleep(2)  # another catch-up round: still nothing uploaded twice
    finally:
        for replica in replicas:
            replica.stop()
    assert upload_server.uploads() == dict.fromkeys(expected, 1)
    with psycopg.connect(database_url) as conn:
        pids = {w.split(":")[1] for (w,) in conn.execute("SELECT claimed_by FROM auto_upload")}
    assert pids == {str(r.proc.pid) for r in replicas if r.proc}, "both replicas uploaded"


@pytest.mark.timeout(120)
def test_sigterm_abandons_the_upload_in_hand_within_20s(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, upload_server: UploadServer, tmp_path: Path
) -> None:
    build_upload(target.artifacts / "t-0", "term", "1.0", binary=False)
    add_build(database_url, "t-0", "term", "1.0")
    upload_server.hold()  # the upload hangs at the target
    proc = start_service("term", database_url, redis_url, target, keyring, tmp_path)
    try:
        wait_until(lambda: upload_server.parked == 1, 60, "upload in hand")
        started = time.monotonic()
        assert proc.stop(signal.SIGTERM, timeout=25) == 0
        assert time.monotonic() - started < 20
    finally:
        proc.kill()
    upload_server.release(refuse=True)
    assert "abandoned t-0/term_1.0_source.changes; it is queued again" in proc.log()
    assert ledger_states(database_url) == {"t-0": "pending"}
    assert upload_server.uploads() == {}
    again = start_service("term-again", database_url, redis_url, target, keyring, tmp_path)
    try:
        wait_until(lambda: upload_server.uploads() == {"term_1.0_source.changes": 1}, 60, "uploaded after restart")
    finally:
        again.stop()


@pytest.mark.timeout(180)
def test_a_frozen_holder_loses_its_claim_and_uploads_nothing_when_thawed(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, upload_server: UploadServer, tmp_path: Path
) -> None:
    build_upload(target.artifacts / "s-0", "frozen", "1.0", binary=False)
    add_build(database_url, "s-0", "frozen", "1.0")
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    (slow / "debsign").write_text('#!/bin/sh\nsleep 3\nexec /usr/bin/debsign "$@"\n')
    (slow / "debsign").chmod(0o755)
    lease = {"JANITOR_LEASE_SECONDS": "3"}
    holder = start_service(
        "holder", database_url, redis_url, target, keyring, tmp_path, PATH=f"{slow}:{os.environ['PATH']}", **lease
    )
    taker = None
    try:
        assert holder.proc is not None
        pid = holder.proc.pid
        wait_until(
            lambda: any("sleep" in Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in descendants(pid)),
            60,
            "the holder is signing",
        )
        signal_all(holder, signal.SIGSTOP)  # frozen, tools and all, past its lease
        taker = start_service("taker", database_url, redis_url, target, keyring, tmp_path, **lease)
        wait_until(lambda: upload_server.uploads() == {"frozen_1.0_source.changes": 1}, 60, "the taker uploaded")
        wait_until(lambda: ledger_states(database_url) == {"s-0": "uploaded"}, 30, "ledger uploaded")
        signal_all(holder, signal.SIGCONT)
        wait_until(lambda: "lease lost (another worker holds it)" in holder.log(), 30, "the holder saw its loss")
        time.sleep(5)  # its debsign ends meanwhile: nothing may follow it
    finally:
        signal_all(holder, signal.SIGCONT)
        holder.stop()
        if taker is not None:
            taker.stop()
    assert upload_server.uploads() == {"frozen_1.0_source.changes": 1}
    assert "frozen_1.0_source.changes: uploaded to web" not in holder.log()
    with psycopg.connect(database_url) as conn:
        (claimed_by,) = conn.execute("SELECT claimed_by FROM auto_upload").fetchone()  # type: ignore[misc]
    assert taker is not None and taker.proc is not None and claimed_by.split(":")[1] == str(taker.proc.pid)


@pytest.mark.timeout(180)
def test_force_uploads_again_exactly_once(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, upload_server: UploadServer, tmp_path: Path
) -> None:
    build_upload(target.artifacts / "f-0", "forced", "1.0", binary=False)
    add_build(database_url, "f-0", "forced", "1.0")
    service = start_service("force", database_url, redis_url, target, keyring, tmp_path)
    name = "forced_1.0_source.changes"
    try:
        wait_until(lambda: upload_server.uploads() == {name: 1}, 60, "first upload")
        wait_until(lambda: ledger_states(database_url) == {"f-0": "uploaded"}, 30, "ledger uploaded")
        # Once with the run's work directory (and dput's log) gone, once with the log still there.
        for expected, keep_log in ((2, False), (3, True)):
            if keep_log:
                workdir = target.state / "f-0"
                workdir.mkdir(parents=True, exist_ok=True)
                (workdir / "forced_1.0_source.web.upload").write_text("an earlier upload\n")
            env = service_env(JANITOR_DATABASE_URL=database_url, JANITOR_REDIS_URL=redis_url)
            forced = subprocess.run(
                [console_script("janitor-auto-upload"), "force", "f-0"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert forced.returncode == 0, forced.stderr
            wait_until(partial(upload_counted, upload_server, name, expected), 60, f"upload number {expected}")
            wait_until(lambda: ledger_states(database_url) == {"f-0": "uploaded"}, 30, "ledger uploaded")
            time.sleep(2)
            assert upload_server.uploads() == {name: expected}, "force sends once more, exactly once"
    finally:
        service.stop()
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT last_error, forced, attempts, output IS NOT NULL FROM auto_upload").fetchone()
    assert row == (None, False, 3, True)
