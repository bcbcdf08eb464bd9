"""The one subprocess runner: output, timeouts, cancellation, memory limits, and no child left behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from janitor_common import proc


def alive(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return out.split()


async def wait_gone(marker: str) -> None:
    for _ in range(50):
        if not alive(marker):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still running: {marker}")


async def test_output_exit_code_and_merged_streams(tmp_path: Path) -> None:
    done = await proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"], time_limit=10, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
    merged = await proc.run(["sh", "-c", "echo out; echo err >&2"], time_limit=10, merge_stderr=True)
    assert merged.stdout == b"out\nerr\n" and merged.stderr == b""
    env = await proc.run(["sh", "-c", "echo $ONLY"], time_limit=10, env={"ONLY": "this", "PATH": os.environ["PATH"]})
    assert env.stdout == b"this\n"


async def test_stdin_is_closed() -> None:
    done = await proc.run(["cat"], time_limit=10)  # would wait for input forever otherwise
    assert done.returncode == 0 and done.stdout == b""


async def test_timeout_kills_the_whole_group() -> None:
    marker = f"sleep 3{os.getpid() % 10}1.5"
    started = time.monotonic()
    with pytest.raises(proc.TimedOut) as raised:
        await proc.run(["sh", "-c", f"{marker} & {marker}; echo never"], time_limit=0.5)
    assert time.monotonic() - started < 5
    assert "took longer than 0.5s" in str(raised.value)
    await wait_gone(marker)


async def test_cancellation_kills_the_whole_group() -> None:
    marker = f"sleep 3{os.getpid() % 10}2.5"
    task = asyncio.create_task(proc.run(["sh", "-c", f"{marker} & {marker}"], time_limit=60))
    await asyncio.sleep(0.5)
    assert alive(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_gone(marker)


async def test_helpers_left_behind_after_exit_are_killed() -> None:
    marker = f"sleep 3{os.getpid() % 10}3.5"
    done = await proc.run(["sh", "-c", f"({marker} >/dev/null 2>&1 &) ; echo started"], time_limit=10)
    assert done.stdout == b"started\n"
    await wait_gone(marker)


async def test_memory_limit() -> None:
    grab = [sys.executable, "-c", "b = bytearray(512 * 1024 * 1024); print('allocated')"]
    limited = await proc.run(grab, time_limit=30, memory_limit=256 * 1024 * 1024)
    assert limited.returncode != 0 and b"MemoryError" in limited.stderr
    free = await proc.run(grab, time_limit=30)
    assert free.returncode == 0 and free.stdout == b"allocated\n"


async def test_start_and_finish_for_streaming() -> None:
    marker = f"sleep 3{os.getpid() % 10}4.5"
    process = await proc.start(["sh", "-c", f"echo first; {marker}"])
    assert process.stdout is not None
    assert await process.stdout.readline() == b"first\n"
    await proc.finish(process)
    assert process.returncode is not None
    await wait_gone(marker)
