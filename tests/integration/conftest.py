"""What the whole-suite tests share: ``make run``'s stack, started as ``make run`` starts it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from janitor_dev.devstack import free_port, pg_data_dir, port_in_use
from janitor_dev.seed import DemoStack

READY = "The Janitor services are running"
SERVICE_PORTS = (9929, 9930, 9920, 9933)


class Run:
    def __init__(self, checkout: Path, env: dict[str, str]) -> None:
        self.log = checkout / f"make-run-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "janitor_dev.devrun"],
                cwd=checkout,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> float:
        started = time.monotonic()
        while READY not in self.output():
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                self.proc.kill()
                raise AssertionError(f"make run did not come up:\n{self.output()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        return self.proc.wait(60)


@pytest.fixture(scope="module")
def demo_stack() -> Iterator[DemoStack]:
    """``make run`` in a scratch checkout, demo seeded; stopped with Ctrl-C afterwards."""
    if any(port_in_use(p) for p in SERVICE_PORTS):
        pytest.skip("make run's service ports are taken (is a make run going on?)")
    checkout = Path(tempfile.mkdtemp(prefix="janitor-demo-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JANITOR_")}
    env.update(JANITOR_RUN_PG_PORT=str(free_port()), JANITOR_RUN_REDIS_PORT=str(free_port()))
    run = Run(checkout, env)
    try:
        run.wait_ready(240)
        yield DemoStack.load(checkout / ".run")
    finally:
        assert run.interrupt() == 0, run.output()
        shutil.rmtree(pg_data_dir(checkout / ".run").parent, ignore_errors=True)
        shutil.rmtree(checkout, ignore_errors=True)
