"""Diff tools run as subprocesses with a timeout and an address-space limit.

Each tool runs in its own process group so a timeout kills everything it
started (diffoscope forks helpers). The memory limit is applied by
``prlimit`` rather than a ``preexec_fn``, which is unsafe in a process with
threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

# How running out of address space shows on stderr: Python's MemoryError, a
# shared library that cannot be mapped, or a C tool's ENOMEM.
OUT_OF_MEMORY = (
    b"MemoryError",
    b"Cannot allocate memory",
    b"failed to map segment",
    b"out of memory",
    b"std::bad_alloc",
)


class ToolTimeout(Exception):
    pass


class ToolOutOfMemory(Exception):
    pass


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


@dataclass(frozen=True)
class Limits:
    timeout: float
    memory_mb: int | None


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run_tool(argv: list[str], limits: Limits, *, cwd: str | None = None) -> ToolResult:
    """Run ``argv``; raise ``ToolTimeout`` / ``ToolOutOfMemory`` (the group is killed)."""
    if limits.memory_mb:
        argv = ["prlimit", f"--as={limits.memory_mb * 1024 * 1024}", "--", *argv]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        start_new_session=True,
        env={**os.environ, "LC_ALL": "C.UTF-8", "TZ": "UTC"},
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), limits.timeout)
    except TimeoutError:
        _killpg(proc.pid)
        await proc.wait()
        raise ToolTimeout(f"{os.path.basename(argv[0])} took longer than {limits.timeout:g}s") from None
    except asyncio.CancelledError:
        _killpg(proc.pid)
        await proc.wait()
        raise
    finally:
        # Helpers the tool started and left behind die with the group.
        _killpg(proc.pid)
    assert proc.returncode is not None
    if any(signature in stderr for signature in OUT_OF_MEMORY):
        raise ToolOutOfMemory(stderr.decode("utf-8", "replace")[-500:])
    return ToolResult(proc.returncode, stdout, stderr)
