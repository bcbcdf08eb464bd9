"""Benchmark: plain-HTTP reads of bzr-store against a bare static file server, and /repositories on many branches.

1. ``brz branch http://...`` with Breezy's smart prober removed (so it reads
   files, with Range requests), of one branch of a few hundred revisions:
   (a) bzr-store's public interface, (b) Starlette's StaticFiles under
   uvicorn serving the same store directory, the baseline. Alternated, the
   order swapped each repetition. Target: median a/b <= 1.1.
2. ``GET /repositories`` (JSON) on the admin interface of a store of N
   branches, for N = 1,000 and 10,000: time against a bare in-process walk
   of the same tree (the floor), and the service's peak RSS growth, which
   must not grow with N (the list is streamed). Target: RSS growth at 10,000
   under 20 MiB.

Usage: .venv/bin/python bench/bzr_plain_http.py [--reps N] [--revisions N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from scratch import ScratchStore, scratch_bzr_store

from janitor_dev.bzrhistory import make_history, no_smart_plugin
from janitor_dev.devstack import free_port, stop_cleanly_on_signals

BRZ = str(Path(sys.executable).parent / "brz")
STATIC_SERVER = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

app = Starlette(routes=[Mount("/", StaticFiles(directory=sys.argv[1]))])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def brz_env(home: Path, plugins_at: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRZ_", "BZR_"))}
    env.update(BRZ_HOME=str(home), BRZ_PLUGIN_PATH="-site:-user")
    if plugins_at is not None:
        env["BRZ_PLUGINS_AT"] = plugins_at
    return env


def timed_branch(url: str, target: Path, env: dict[str, str]) -> float:
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([BRZ, "branch", "-q", url, str(target)], env=env, check=True, timeout=600)
    return time.perf_counter() - started


def plain_http(store: ScratchStore, reps: int, revisions: int) -> float:
    work = store.base / "work"
    log(f"making a history of {revisions} revisions")
    make_history(work, revisions, files=50)
    home = store.base / "home"
    home.mkdir()
    host = store.public_url.removeprefix("http://")
    subprocess.run(
        [BRZ, "push", "-q", f"bzr+http://bench:pw@{host}/bzr/bench/lintian-fixes/main"],
        cwd=work,
        env=brz_env(home),
        check=True,
    )
    env = brz_env(home, no_smart_plugin(store.base / "plugins"))
    port = free_port()
    static = subprocess.Popen([sys.executable, "-c", STATIC_SERVER, str(store.vcs_path), str(port)])
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/bench/.bzr/branch-format", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        urls = {
            "a": f"{store.public_url}/bzr/bench/lintian-fixes/main",
            "b": f"http://127.0.0.1:{port}/bench/lintian-fixes/main",
        }
        times: dict[str, list[float]] = {"a": [], "b": []}
        for way in ("a", "b"):  # warm-up: page cache, imports
            timed_branch(urls[way], store.base / "out", env)
        for rep in range(reps):
            for way in ("a", "b") if rep % 2 == 0 else ("b", "a"):
                times[way].append(timed_branch(urls[way], store.base / "out", env))
            log(f"rep {rep + 1}: a {times['a'][-1]:.2f}s b {times['b'][-1]:.2f}s")
    finally:
        static.terminate()
        static.wait()
    a, b = statistics.median(times["a"]), statistics.median(times["b"])
    print(f"\n`brz branch` over plain HTTP of {revisions} revisions, {reps} repetitions (median seconds)\n")
    print("| way | median | min | max |")
    print("|---|---|---|---|")
    for way, name in (("a", "bzr-store public"), ("b", "static files (baseline)")):
        t = times[way]
        print(f"| ({way}) {name} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} |")
    print(f"\na/b = {a / b:.2f} (target <= 1.10)")
    return a / b


def make_branches(vcs: Path, count: int) -> None:
    """``count`` branches, ten per codebase, as files copied from one real empty branch (no Breezy per branch)."""
    template = vcs / "bench" / "lintian-fixes" / "main" / ".bzr"
    for i in range(count // 10):
        codebase = vcs / f"listed{i:05d}"
        if codebase.exists():
            continue
        shutil.copytree(vcs / "bench" / ".bzr", codebase / ".bzr", ignore=shutil.ignore_patterns("packs", "indices"))
        for role in range(10):
            shutil.copytree(template, codebase / "lintian-fixes" / f"r{role}" / ".bzr")


def walk_floor(vcs: Path) -> float:
    """The bare cost: scandir the tree and read every last-revision file, in this process."""
    started = time.perf_counter()
    found = 0
    for codebase in sorted(os.scandir(vcs), key=lambda e: e.name):
        if not codebase.is_dir(follow_symlinks=False):
            continue
        for campaign in os.scandir(codebase.path):
            if campaign.name == ".bzr" or not campaign.is_dir():
                continue
            for role in os.scandir(campaign.path):
                with open(os.path.join(role.path, ".bzr", "branch", "last-revision"), "rb") as f:
                    f.read()
                found += 1
    assert found > 0
    return time.perf_counter() - started


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def listing(store: ScratchStore) -> tuple[float, float]:
    assert store.process.proc is not None
    pid = store.process.proc.pid
    print("\n`GET /repositories` (JSON, streamed) against a bare walk of the same tree\n")
    print("| branches | service (s) | walk (s) | ratio | service peak RSS growth (MiB) |")
    print("|---|---|---|---|---|")
    growth_at_most = 0.0
    ratio = 0.0
    for count in (1000, 10000):
        make_branches(store.vcs_path, count)
        walk_floor(store.vcs_path)  # page cache
        floor = min(walk_floor(store.vcs_path) for _ in range(3))
        before = peak_rss_kib(pid)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            with httpx.stream("GET", f"{store.admin_url}/repositories", headers={"accept": "application/json"}) as r:
                size = sum(len(chunk) for chunk in r.iter_bytes())
            best = min(best, time.perf_counter() - started)
            assert r.status_code == 200 and size > count * 50
        growth = (peak_rss_kib(pid) - before) / 1024
        ratio = best / floor
        growth_at_most = max(growth_at_most, growth)
        print(f"| {count} | {best:.3f} | {floor:.3f} | {ratio:.1f} | {growth:.1f} |")
    return ratio, growth_at_most


def main() -> int:
    stop_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--revisions", type=int, default=500)
    args = parser.parse_args()
    setup = (
        "INSERT INTO worker VALUES ('bench', crypt('pw', gen_salt('bf')), NULL)",
        "INSERT INTO codebase (name) VALUES ('bench')",
    )
    with scratch_bzr_store("bench-plain-", setup) as store:
        ratio = plain_http(store, args.reps, args.revisions)
        _, growth = listing(store)
    print(f"\nplain HTTP a/b {ratio:.2f} (target <= 1.10); listing RSS growth {growth:.1f} MiB (target < 20)")
    return 0 if ratio <= 1.1 and growth < 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
