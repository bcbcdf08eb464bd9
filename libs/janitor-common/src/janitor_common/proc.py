"""Subprocesses that never outlive their purpose: one way to run a tool, for every service.

The differ's diff tools, auto-upload's debsign and dput and bzr-store's diff
streamer all start programs that start others (diffoscope forks helpers,
dput runs scp or install). Each runs in a session of its own, so the whole
group can be killed: on a timeout, when the caller is cancelled (a client
went away, the service is stopping), and after the tool exits (helpers it
left behind). A memory limit is set with ``prlimit --as`` rather than a
``preexec_fn``, which is unsafe in a process with threads. Everything is
asyncio: nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class TimedOut(Exception):
    """The tool did not finish in time; its process group was killed."""

    def __init__(self, argv: Sequence[str], seconds: float) -> None:
        super().__init__(f"{os.path.basename(argv[0])} took longer than {seconds:g}s")
        self.argv = list(argv)
        self.seconds = seconds


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes  # empty when merged into stdout


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (gone already: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def start(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    memory_limit: int | None = None,
    merge_stderr: bool = False,
) -> asyncio.subprocess.Process:
    """``argv`` in a new session, stdin closed, output on pipes; the caller ends it with ``finish``."""
    if memory_limit:
        argv = ["prlimit", f"--as={memory_limit}", "--", *argv]
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,  # nothing may wait for a question to be answered
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        start_new_session=True,
    )


async def finish(process: asyncio.subprocess.Process) -> None:
    """Kill what is left of the process's group and reap the process."""
    kill_group(process.pid)
    await process.wait()


async def run(
    argv: Sequence[str],
    *,
    time_limit: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    memory_limit: int | None = None,
    merge_stderr: bool = False,
) -> Completed:
    """Run ``argv`` to completion within ``time_limit`` seconds (else TimedOut), its whole group killed after."""
    process = await start(argv, cwd=cwd, env=env, memory_limit=memory_limit, merge_stderr=merge_stderr)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        raise TimedOut(argv, time_limit) from None
    finally:
        # On success too: helpers the tool started and left behind die with the group.
        await asyncio.shield(finish(process))
    assert process.returncode is not None
    return Completed(list(argv), process.returncode, stdout, stderr or b"")
