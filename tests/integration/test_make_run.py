"""``make run``'s stack from a directory only root can enter, as a clone under /root is.

The command ``make run`` ends in is run as it runs it (``python -m
janitor_dev.devrun`` in the checkout, with ``.run/`` there); the install
steps before it are what ``make test`` has just done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from janitor_dev.devstack import free_port, pg_data_dir, port_in_use
from janitor_dev.seed import PACKAGE, DemoStack, brz

from .conftest import SERVICE_PORTS, Run


@pytest.fixture
def private_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("the case is root's: PostgreSQL then runs as 'postgres', which cannot enter the directory")
    if any(port_in_use(p) for p in SERVICE_PORTS):
        pytest.skip("make run's service ports are taken (is a make run going on?)")
    base = Path(tempfile.mkdtemp(prefix="janitor-clone-"))  # mode 700, like /root
    checkout = base / "janitor"
    checkout.mkdir()
    try:
        yield checkout
    finally:
        shutil.rmtree(pg_data_dir(checkout / ".run").parent, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def agents(gnupg: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", "gpg-agent"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(gnupg) in line]


def check_demo(run_dir: Path, scratch: Path) -> None:
    """What the seeded demo promises: a branch to pull, a cached diff, one signed upload."""
    stack = DemoStack.load(run_dir)
    assert len(stack.pairs) == 1
    pair = stack.pairs[0]
    copy = scratch / f"branch-{time.monotonic_ns()}"
    brz("branch", "-q", stack.branch_url("lintian-fixes"), str(copy), cwd=scratch, home=scratch / "brz-home")
    assert (copy / "hello.1").exists() and "Priority: optional" in (copy / "debian" / "control").read_text()
    assert not (copy / "breezy").exists(), "brz's own files were committed into the demo package"

    url = f"{stack.differ_url}/diffoscope/{pair['old']}/{pair['new']}"
    timings = []
    with httpx.Client(timeout=30) as client:  # one client: making one costs more than the answer
        for _ in range(5):
            started = time.perf_counter()
            answer = client.get(url, headers={"Accept": "text/plain"})
            timings.append(time.perf_counter() - started)
            assert answer.status_code == 200 and "hello.1" in answer.text, answer.text[:2000]
    # Computing it takes diffoscope a second or more; from the cache it is milliseconds.
    assert min(timings) < 0.05, f"not served from the cache: {timings}"

    uploads = sorted(Path(stack.incoming).glob("*.changes"))
    assert [u.name for u in uploads] == [f"{PACKAGE}_{pair['version']}_amd64.changes"], "only the changed run"
    verify = subprocess.run(
        ["gpg", "--homedir", str(run_dir / "gnupg"), "--batch", "--verify", str(uploads[0])],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and "Good signature" in verify.stderr, verify.stderr


@pytest.mark.timeout(400)
def test_make_run_from_a_private_directory_comes_up_stops_and_reuses_its_data(private_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JANITOR_")}
    env.update(JANITOR_RUN_PG_PORT=str(free_port()), JANITOR_RUN_REDIS_PORT=str(free_port()))
    assert private_dir.parent.stat().st_mode & 0o777 == 0o700

    first = Run(private_dir, env)
    try:
        cold = first.wait_ready(240)
        check_demo(private_dir / ".run", private_dir)
    finally:
        assert first.interrupt() == 0, first.output()
    assert "make run: stopped" in first.output()
    run_dir = private_dir / ".run"
    password = (run_dir / "demo-worker.password").read_text()
    assert (run_dir / "postgres").is_symlink() and (run_dir / "postgres" / "PG_VERSION").exists()
    assert private_dir.parent.stat().st_mode & 0o777 == 0o700, "the checkout's permissions are left alone"
    assert agents(run_dir / "gnupg") == [], "gpg-agent stopped with the rest"
    assert not any(port_in_use(p) for p in SERVICE_PORTS)

    second = Run(private_dir, env)
    try:
        warm = second.wait_ready(120)
        assert password.strip() in second.output(), "the same demo worker: the data was reused"
        assert "demo: building" not in second.output(), "the demo is seeded once"
        check_demo(private_dir / ".run", private_dir)
    finally:
        assert second.interrupt() == 0, second.output()
    print(f"make run from a mode-700 directory: cold start {cold:.1f} s, warm restart {warm:.1f} s")
