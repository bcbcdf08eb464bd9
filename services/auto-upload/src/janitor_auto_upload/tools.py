"""debsign and dput as subprocesses: timeouts, captured output, and what a failure means.

silver-platter's helpers hold the GIL for the child's whole run, take no
config file, capture no output and have no timeout, so we run the tools
ourselves with asyncio subprocesses (see the README).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from janitor_common import proc

# Output that means "try again later": the target was unreachable for now,
# or could not take the files now (a full disk there, a transfer cut off).
TRANSIENT = (
    "Connection refused",
    "timed out",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection reset",
    "No route to host",
    "No space left on device",
    "Disk quota exceeded",
    "Broken pipe",
)
# dput's HTTP method on a 5xx answer: the server is there but cannot take it now.
TRANSIENT_HTTP = re.compile(r"Upload failed: 5\d\d ")
# Files a failed copy left behind at the target (dput's local method runs install(1)).
PARTIAL = re.compile(r"(?:error writing|cannot create regular file) '([^']+)'")


@dataclass(frozen=True)
class ToolRun:
    argv: list[str]
    returncode: int  # -1 for a timeout
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def transient(self) -> bool:
        return (
            self.returncode == -1
            or any(marker in self.output for marker in TRANSIENT)
            or TRANSIENT_HTTP.search(self.output) is not None
        )

    @property
    def partial_files(self) -> list[str]:
        """Names of files a failed transfer left half-written at the target, as the tool reported them."""
        return sorted({os.path.basename(m) for m in PARTIAL.findall(self.output)})

    def describe(self) -> str:
        tool = os.path.basename(self.argv[0])
        status = "timed out" if self.returncode == -1 else f"exit {self.returncode}"
        partial = self.partial_files
        left = f" [partial files left at the target: {', '.join(partial)}]" if partial else ""
        return f"{tool} {status}{left}: {self.output.strip()[-2000:]}"


async def run(argv: list[str], *, cwd: Path, env: dict[str, str], time_limit: float) -> ToolRun:
    try:
        done = await proc.run(argv, time_limit=time_limit, cwd=cwd, env=env, merge_stderr=True)
    except proc.TimedOut:
        return ToolRun(argv, -1, f"no answer within {time_limit:g}s")
    return ToolRun(argv, done.returncode, done.stdout.decode("utf-8", "replace"))


def debsign_argv(changes: Path, keyid: str | None) -> list[str]:
    # --no-conf: only our options count; --no-re-sign: a signed file is left as is.
    argv = ["debsign", "--no-conf", "--no-re-sign"]
    if keyid:
        argv.append(f"-k{keyid}")
    return [*argv, changes.name]


def dput_argv(changes: Path, host: str, config: Path | None) -> list[str]:
    # The host is always named: without it dput falls back to the Debian archive.
    argv = ["dput"]
    if config is not None:
        argv += ["-c", str(config)]
    return [*argv, host, changes.name]


def upload_log(changes: Path, host: str) -> Path:
    """Where dput records a completed upload (and why a re-run skips it)."""
    return changes.with_name(f"{changes.name[: -len('.changes')]}.{host}.upload")
