"""Diff tools run with a timeout and an address-space limit (``janitor_common.proc``).

What is the differ's own: how running out of memory shows in a tool's
output, and the errors its routes map to 504 and 503.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from janitor_common import proc

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


async def run_tool(argv: list[str], limits: Limits, *, cwd: str | None = None) -> ToolResult:
    """Run ``argv``; raise ``ToolTimeout`` / ``ToolOutOfMemory`` (its whole group is killed either way)."""
    try:
        done = await proc.run(
            argv,
            time_limit=limits.timeout,
            cwd=cwd,
            env={**os.environ, "LC_ALL": "C.UTF-8", "TZ": "UTC"},
            memory_limit=limits.memory_mb * 1024 * 1024 if limits.memory_mb else None,
        )
    except proc.TimedOut as e:
        raise ToolTimeout(str(e)) from None
    if any(signature in done.stderr for signature in OUT_OF_MEMORY):
        raise ToolOutOfMemory(done.stderr.decode("utf-8", "replace")[-500:])
    return ToolResult(done.returncode, done.stdout, done.stderr)
