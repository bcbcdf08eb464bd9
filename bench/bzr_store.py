"""Benchmark: bzr-store's public interface against `brz serve` and Breezy's WSGI server.

Ways, measured in turn in every repetition (the order rotated between repetitions):
  (a) bzr-store public interface (bzr+http, worker credentials for pushes)
  (b) `brz serve --allow-writes` (bzr://), the baseline ratios are taken against
  (c) Breezy's WSGI smart server under a threaded wsgiref server (bzr+http)
  (d) bzr-store over bzr:// (its --bzr-port; anonymous and read-only, so reads only)
  (e) bzr-store over bzr+ssh (its --ssh-port; the system ssh client with a worker's key)
  (f) `brz serve` behind an SSH relay (bzr_ssh_floor.py): what bzr+ssh costs on top of
      (b) whatever the server does, the floor for (e); its RSS figures are (b)'s process

Figures: branch of the medium and the big repository, push of 50 commits onto
an existing branch (PUSH_SAMPLES times per repetition), push of the big
repository onto a new branch, 16 concurrent branches of the medium one, latency of one small request
(Branch.last_revision_info) over a kept-alive connection, and each server's
peak RSS above its starting RSS during the big fetch and the big push.

Usage: .venv/bin/python bench/bzr_store.py [--reps N] [--scale F] [--data DIR]
(--scale 0.1 makes a quick run with a tenth of the commits and data).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg

from janitor_common.db import migrate
from janitor_common.sshkeys import parse_public_key
from janitor_dev.bzrhistory import ssh_client_env
from janitor_dev.devstack import Postgres, RedisServer, free_port, stop_cleanly_on_signals
from janitor_dev.testing import ServiceProcess, console_script, service_env

BIN = Path(sys.executable).parent
BRZ = str(BIN / "brz")
WORKER, PASSWORD = "bench", "bench-password"
WAYS = ["a", "b", "c", "d", "e", "f"]
WAY_NAMES = {
    "a": "bzr-store",
    "b": "brz serve",
    "c": "breezy wsgi",
    "d": "bzr-store bzr://",
    "e": "bzr-store ssh",
    "f": "ssh relay to brz serve",
}
READ_ONLY = {"d"}
# A push of 50 commits takes about half a second, and one varies by 20 % from
# the next: each repetition pushes this many times, to fresh copies.
PUSH_SAMPLES = 5


def brz(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([BRZ, *args], cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"brz {' '.join(args)}: {proc.stderr}")
    return proc


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data


def build_data(data: Path, scale: float) -> dict[str, Path]:
    """Local branches: medium (1000 commits / 200 files), medium+50, big (50 commits, 300 MB)."""
    marker = data / f"ready-{scale}"
    paths = {
        "medium": data / "medium",
        "medium50": data / "medium50",
        "big": data / "big",
    }
    if marker.exists():
        return paths
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    n_commits, n_files = int(1000 * scale), 200
    big_commits, big_bytes = max(2, int(50 * scale)), int(300e6 * scale)
    script = f"""
import os, random, sys
import breezy
from breezy.bzr import workingtree_4  # noqa: F401
from breezy.controldir import ControlDir
with breezy.initialize():
    import breezy.bzr
    random.seed(1)
    def make(path, commits, step):
        tree = ControlDir.create_standalone_workingtree(path)
        with tree.lock_write():
            for i in range(commits):
                step(tree, i)
                tree.commit(f"commit {{i}}", committer="Bench <b@example.com>", timestamp=1700000000 + i, timezone=0)
        return tree
    def medium_step(tree, i):
        for j in random.sample(range({n_files}), 3 if i else {n_files}):
            p = os.path.join(tree.basedir, f"file{{j:03d}}.txt")
            new = not os.path.exists(p)
            with open(p, "a") as f:
                f.write(f"line {{i}} of file {{j}}: " + "lorem ipsum dolor sit amet " * random.randint(1, 8) + "\\n")
            if new:
                tree.add([f"file{{j:03d}}.txt"])
    make({str(paths["medium"])!r}, {n_commits}, medium_step)
    def big_step(tree, i):
        p = os.path.join(tree.basedir, f"blob{{i:03d}}.bin")
        with open(p, "wb") as f:
            f.write(os.urandom({big_bytes} // {big_commits}))
        tree.add([f"blob{{i:03d}}.bin"])
    make({str(paths["big"])!r}, {big_commits}, big_step)
"""
    log(f"building data in {data} (scale {scale}) ...")
    subprocess.run([sys.executable, "-c", script], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    brz("branch", "-q", str(paths["medium"]), str(paths["medium50"]))
    tree = paths["medium50"]
    for i in range(50):
        (tree / f"extra{i:02d}.txt").write_text(f"extra {i}\n" * 50)
        brz("add", "-q", f"extra{i:02d}.txt", cwd=tree)
        brz("commit", "-q", "-m", f"extra {i}", cwd=tree, env={**os.environ, "BRZ_EMAIL": "Bench <b@e.com>"})
    marker.touch()
    return paths


def seed_repository(dest: Path, branch: Path | None) -> None:
    """A shared repository like bzr-store's, holding ``branch`` at lintian-fixes/main."""
    brz("init-shared-repo", "-q", "--no-trees", str(dest))
    if branch is not None:
        brz("push", "-q", "--create-prefix", "-d", str(branch), str(dest / "lintian-fixes" / "main"))


# ---------------------------------------------------------------- servers


class RssSampler:
    """Samples a process's resident set every 20 ms; reports the peak above the start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    @contextmanager
    def peak(self) -> Iterator[dict[str, int]]:
        result = {"start": self.rss(), "peak": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                result["peak"] = max(result["peak"], self.rss())
                stop.wait(0.02)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield result
        finally:
            stop.set()
            thread.join()
            result["peak"] = max(result["peak"], self.rss())


class Way:
    def __init__(
        self,
        key: str,
        root: Path,
        port: int,
        pid: int,
        stop: Callable[[], object],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.key, self.root, self.port, self.pid, self.stop = key, root, port, pid, stop
        self.sampler = RssSampler(pid)
        self.env = dict(env) if env is not None else dict(os.environ)

    def url(self, path: str, write: bool = False) -> str:
        if self.key == "a":
            creds = f"{WORKER}:{PASSWORD}@" if write else ""
            return f"bzr+http://{creds}127.0.0.1:{self.port}/bzr/{path}"
        if self.key in ("b", "d"):
            return f"bzr://127.0.0.1:{self.port}/{path}"
        if self.key in ("e", "f"):
            return f"bzr+ssh://{WORKER}@127.0.0.1:{self.port}/{path}"
        return f"bzr+http://127.0.0.1:{self.port}/{path}"


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def start_ways(base: Path, database_url: str, redis_url: str, ways: dict[str, Way]) -> None:
    """Start the three servers into ``ways`` (so the caller stops whatever did start)."""
    root_a = base / "a"
    root_a.mkdir()
    admin, public, bzr_port, ssh_port = free_port(), free_port(), free_port(), free_port()
    host_key = base / "ssh" / "host_key"
    service = ServiceProcess(
        [
            console_script("janitor-bzr-store"),
            *("--vcs-path", str(root_a), "--port", str(admin), "--public-port", str(public)),
            *("--bzr-port", str(bzr_port), "--ssh-port", str(ssh_port), "--ssh-host-key", str(host_key)),
        ],
        service_env(
            JANITOR_DATABASE_URL=database_url,
            JANITOR_REDIS_URL=redis_url,
            JANITOR_CAMPAIGNS=json.dumps([{"name": "lintian-fixes"}]),
            JANITOR_LOG_LEVEL="WARNING",
        ),
        f"http://127.0.0.1:{admin}/health",
        base / "bzr-store.log",
    )
    service.start()
    assert service.proc is not None
    ways["a"] = Way("a", root_a, public, service.proc.pid, service.stop)
    # The same process and store, by its other ways in (stopped once, with "a").
    ways["d"] = Way("d", root_a, bzr_port, service.proc.pid, lambda: None)
    ways["e"] = Way(
        "e", root_a, ssh_port, service.proc.pid, lambda: None, ssh_env(base, database_url, host_key, ssh_port)
    )

    for key, argv in (
        ("b", [BRZ, "serve", "--allow-writes", "--directory", "{root}", "--listen", "127.0.0.1", "--port", "{port}"]),
        ("c", [sys.executable, str(Path(__file__).with_name("bzr_wsgi_server.py")), "{root}", "{port}"]),
    ):
        root = base / key
        root.mkdir()
        port = free_port()
        proc = subprocess.Popen(
            [a.format(root=root, port=port) for a in argv],
            stdout=subprocess.DEVNULL,
            stderr=open(base / f"{key}.log", "wb"),  # noqa: SIM115
            env={**os.environ, "BRZ_HOME": str(base)},
        )
        try:
            wait_port(port, proc)
        except RuntimeError:
            proc.kill()
            raise

        def stop(proc: subprocess.Popen[bytes] = proc) -> None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

        ways[key] = Way(key, root, port, proc.pid, stop)
    ways["f"] = start_ssh_floor(base, ways["b"])


def start_ssh_floor(base: Path, serve: Way) -> Way:
    """The SSH relay in front of ``serve`` (brz serve), with the worker key (e) uses."""
    host_key = base / "ssh-floor" / "host_key"
    host_key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bzr_ssh_floor.py")), str(host_key), str(port), str(serve.port)],
        stdout=subprocess.DEVNULL,
        stderr=open(base / "f.log", "wb"),  # noqa: SIM115
    )
    try:
        wait_port(port, proc)
    except RuntimeError:
        proc.kill()
        raise

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    env = {**os.environ, **ssh_client_env(base / "ssh-floor" / "bin", base / "ssh" / "worker_key", host_key, port)}
    return Way("f", serve.root, port, serve.pid, stop, env)


def ssh_env(base: Path, database_url: str, host_key: Path, port: int) -> dict[str, str]:
    """brz's environment for bzr+ssh: the system ssh with the worker's key, knowing only the store's host key."""
    key = base / "ssh" / "worker_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = parse_public_key((base / "ssh" / "worker_key.pub").read_text())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO worker_key (worker, fingerprint, public_key) VALUES (%s, %s, %s)",
            (WORKER, public.fingerprint, public.line),
        )
    return {**os.environ, **ssh_client_env(base / "ssh" / "bin", key, host_key, port)}


# ---------------------------------------------------------------- measurements


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def small_request_latency(url: str, env: Mapping[str, str], n: int = 200) -> float:
    """Median seconds of Branch.last_revision_info over one kept-alive connection."""
    script = f"""
import statistics, time, breezy
with breezy.initialize():
    import breezy.bzr
    from breezy.branch import Branch
    b = Branch.open({url!r})
    medium = b._client._medium
    client = b._client
    path = b._remote_path()
    times = []
    for _ in range({n}):
        t = time.perf_counter()
        client.call(b"Branch.last_revision_info", path.encode() if isinstance(path, str) else path)
        times.append(time.perf_counter() - t)
    print(statistics.median(times[10:]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip())


def measure_way(
    way: Way, rep: int, dest: Path, paths: dict[str, Path], record: Callable[[str, str, float], None]
) -> None:
    key = way.key
    tag = f"{key}{rep}"  # each way's own codebases: some ways share one store

    def branch(path: str, to: Path) -> None:
        brz("branch", "-q", "--no-tree", way.url(path), str(to), env=way.env)

    record(key, "branch medium", timed(lambda: branch(f"medium-{tag}/lintian-fixes/main", dest / "medium")))
    with way.sampler.peak() as mem:
        record(key, "branch big", timed(lambda: branch(f"big-{tag}/lintian-fixes/main", dest / "big")))
    record(key, "big fetch RSS growth MiB", (mem["peak"] - mem["start"]) / 2**20)
    if key not in READ_ONLY:
        for sample in range(PUSH_SAMPLES):
            push50 = way.url(f"push50-{tag}-{sample}/lintian-fixes/main", write=True)
            started = time.perf_counter()
            brz("push", "-q", "-d", str(paths["medium50"]), push50, env=way.env)
            record(key, "push 50 commits", time.perf_counter() - started)
        bigpush = way.url(f"bigpush-{tag}/lintian-fixes/main", write=True)
        with way.sampler.peak() as mem:
            record(
                key,
                "push big (new branch)",
                timed(lambda: brz("push", "-q", "--create-prefix", "-d", str(paths["big"]), bigpush, env=way.env)),
            )
        record(key, "big push RSS growth MiB", (mem["peak"] - mem["start"]) / 2**20)

    def concurrent16() -> None:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: branch(f"medium-{tag}/lintian-fixes/main", dest / f"c{i}"), range(16)))

    record(key, "16 concurrent branches", timed(concurrent16))
    latency = small_request_latency(way.url(f"medium-{tag}/lintian-fixes/main"), way.env)
    record(key, "small request latency ms", latency * 1000)
    record(key, "RSS now MiB", way.sampler.rss() / 2**20)


def ratio(medians: Mapping[str, float | None], key: str, against: str = "b") -> str:
    value, baseline = medians[key], medians[against]
    return f"{value / baseline:.2f}" if value is not None and baseline else "-"


def main() -> int:
    stop_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "janitor-bench-bzr")
    args = parser.parse_args()

    paths = build_data(args.data, args.scale)
    base = Path(tempfile.mkdtemp(prefix="bench-bzr-"))
    base.chmod(0o755)
    pg = Postgres(base / "pg", free_port(), fast=True)
    redis = RedisServer(base / "redis", free_port())
    pg.init()
    pg.start()
    redis.start()
    ways: dict[str, Way] = {}
    results: dict[str, dict[str, list[float]]] = {k: {} for k in WAYS}

    def record(way: str, name: str, value: float) -> None:
        results[way].setdefault(name, []).append(value)

    try:
        database_url = pg.create_database("bench")
        migrate.upgrade(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO worker VALUES (%s, crypt(%s, gen_salt('bf')), NULL)", (WORKER, PASSWORD))
            for rep in range(args.reps):
                for key in WAYS:
                    tag = f"{key}{rep}"
                    names = [f"{n}-{tag}" for n in ("medium", "big", "bigpush")]
                    names += [f"push50-{tag}-{sample}" for sample in range(PUSH_SAMPLES)]
                    for name in names:
                        conn.execute("INSERT INTO codebase (name) VALUES (%s)", (name,))
        start_ways(base, database_url, redis.url, ways)

        # Seed each server's store with the repositories to fetch.
        seeds = base / "seeds"
        seeds.mkdir()
        seed_repository(seeds / "medium", paths["medium"])
        seed_repository(seeds / "big", paths["big"])
        for way in ways.values():
            for rep in range(args.reps):
                tag = f"{way.key}{rep}"
                for name in ("medium", "big"):
                    shutil.copytree(seeds / name, way.root / f"{name}-{tag}", symlinks=True)
                for sample in range(PUSH_SAMPLES):
                    shutil.copytree(seeds / "medium", way.root / f"push50-{tag}-{sample}", symlinks=True)
        work = base / "work"
        work.mkdir()

        for rep in range(args.reps):
            # Rotated, so that no way always goes first (onto cold caches).
            order = WAYS[rep % len(WAYS) :] + WAYS[: rep % len(WAYS)]
            log(f"repetition {rep + 1}/{args.reps}: {', '.join(WAY_NAMES[k] for k in order)}")
            for key in order:
                dest = work / f"{key}-{rep}"
                dest.mkdir()
                measure_way(ways[key], rep, dest, paths, record)
                shutil.rmtree(dest)
                log(f"  {WAY_NAMES[key]}: " + ", ".join(f"{k}={v[-1]:.3f}" for k, v in results[key].items()))
    finally:
        for way in ways.values():
            way.stop()
        redis.stop()
        pg.stop()

    # Report: medians, and ratios to (b).
    names = list(results["a"])
    print(f"\nbzr-store benchmark, scale {args.scale}, {args.reps} repetitions (medians; ratio = way / brz serve)\n")
    print("| measurement | " + " | ".join(f"({k}) {WAY_NAMES[k]}" for k in WAYS) + " | a/b | d/b | e/b | f/b | e/f |")
    print("|---|" + "---|" * (len(WAYS) + 5))
    for name in names:
        med = {k: statistics.median(results[k][name]) if results[k].get(name) else None for k in WAYS}
        cells = " | ".join("-" if med[k] is None else f"{med[k]:.3f}" for k in WAYS)
        ratios = [ratio(med, k) for k in ("a", "d", "e", "f")] + [ratio(med, "e", "f")]
        print(f"| {name} | {cells} | " + " | ".join(ratios) + " |")
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
