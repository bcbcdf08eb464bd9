"""Benchmark: what a body of garbage costs bzr-store (both interfaces), against a small request.

POSTs 200 MiB without a newline (protocol-1 framing, the case Breezy's own
parser makes quadratic) to the public and the admin smart endpoint of one
bzr-store process, and reports the time to the answer and the growth of
the server's peak resident set. Targets (issues on hostile input): each
under 2 s, growth under 50 MB, and the admin path within 2 x the public.

Usage: .venv/bin/python bench/smart_garbage.py [--mib N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx
from scratch import scratch_bzr_store

from janitor_dev.devstack import stop_cleanly_on_signals


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def garbage(mib: int):  # type: ignore[no-untyped-def]
    chunk = b"x" * (1 << 20)
    for _ in range(mib):
        yield chunk


def main() -> int:
    stop_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=200)
    args = parser.parse_args()
    with scratch_bzr_store("bench-garbage-", ["INSERT INTO codebase (name) VALUES ('bench')"]) as store:
        assert store.process.proc is not None
        pid = store.process.proc.pid
        rows = []
        with httpx.Client(timeout=300) as client:
            small = f"{store.public_url}/bzr/bench/.bzr/smart"
            client.post(small, content=b"bzr message 3 (bzr 1.6)\n")  # warm
            for name, endpoint in (
                ("public", f"{store.public_url}/bzr/bench/.bzr/smart"),
                ("admin", f"{store.admin_url}/bench/.bzr/smart"),
            ):
                before = peak_rss_mib(pid)
                started = time.perf_counter()
                response = client.post(endpoint, content=garbage(args.mib))
                elapsed = time.perf_counter() - started
                assert response.status_code == 200 and response.content.startswith(b"error"), response.content[:80]
                rows.append((name, elapsed, peak_rss_mib(pid) - before))
        print(f"\n{args.mib} MiB without a newline to bzr-store's smart endpoints\n")
        print("| interface | time to the answer (s) | peak RSS growth (MiB) |")
        print("|---|---|---|")
        for name, elapsed, growth in rows:
            print(f"| {name} | {elapsed:.3f} | {growth:.1f} |")
        ratio = rows[1][1] / rows[0][1]
        # Below 0.1 s both are answered before the body is read; the ratio is noise then.
        fast = max(elapsed for _, elapsed, _ in rows) < 0.1
        print(f"\nadmin / public = {ratio:.2f}{' (both under 0.1 s: the ratio is noise)' if fast else ''}")
        ok = all(elapsed < 2 and growth < 50 for _, elapsed, growth in rows) and (ratio <= 2 or fast)
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
