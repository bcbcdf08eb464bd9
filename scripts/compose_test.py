"""``make compose-test``: build the images, bring deploy/compose.yaml up for real, check it, tear it down.

Engine: Debian's docker.io with docker-compose 1.29 (installed by
``scripts/system-deps.sh compose``); dockerd is started here when it is not
running, and stopped again afterwards. No registry is reachable, so the
``debian:bookworm-slim`` base image is made with debootstrap from the
machine's own apt mirror when it is missing.

From the host, like an operator and like the runner: every /ready answers
200; a worker pushes with brz and an anonymous branch gets it; a result
message for a run whose artifacts are in the artifacts volume leads to a
differ cache entry and to a signed upload in auto-upload's target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from janitor_dev.debbuild import build_upload
from janitor_dev.demo import ensure_signing_key
from janitor_dev.devstack import port_in_use

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DOCKER = "/usr/bin/docker"  # Debian's docker.io client, matching its daemon
PROJECT = "janitor-ci"
TAG = "ci"
WORKER, PASSWORD = "ci-worker", "ci-password"
BRZ = str(Path(sys.executable).parent / "brz")
READY = {"bzr-store": 9929, "differ": 9920, "auto-upload": 9933}


def say(message: str) -> None:
    print(f"compose-test: {message}", flush=True)


def run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (httpx.TransportError, RuntimeError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout:g}s: {what}")
        time.sleep(1)


def engine_up() -> subprocess.Popen[bytes] | None:
    """dockerd, started here if it is not running; returns the process we started."""
    if subprocess.run([DOCKER, "info"], capture_output=True).returncode == 0:
        return None
    say("starting dockerd")
    BUILD.mkdir(exist_ok=True)
    log = open(BUILD / "dockerd.log", "ab")  # noqa: SIM115 - the daemon owns it
    proc = subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    wait_until(lambda: subprocess.run([DOCKER, "info"], capture_output=True).returncode == 0, 60, "dockerd answers")
    return proc


def apt_mirror() -> str:
    """The machine's own Debian mirror, as apt is configured (never written into the repository)."""
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            m = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    raise RuntimeError("no Debian mirror found in /etc/apt")


def base_image() -> None:
    if subprocess.run([DOCKER, "image", "inspect", "debian:bookworm-slim"], capture_output=True).returncode == 0:
        return
    rootfs = BUILD / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    mirror = apt_mirror()
    say(f"making debian:bookworm-slim with debootstrap --variant=minbase from {mirror}")
    run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror])
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([DOCKER, "import", "-", "debian:bookworm-slim"], stdin=tar.stdout, check=True, capture_output=True)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def compose(self, *args: str, input: str | None = None, check: bool = True) -> str:
        argv = ["docker-compose", "-f", str(ROOT / "deploy" / "compose.yaml"), "-p", PROJECT, *args]
        done = subprocess.run(argv, input=input, capture_output=True, text=True, env=self.env)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"docker-compose {' '.join(args[:3])} failed ({done.returncode}):\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def exec(self, service: str, *argv: str, input: str | None = None, check: bool = True) -> str:
        return self.compose("exec", "-T", service, *argv, input=input, check=check)

    def succeeds(self, service: str, *argv: str) -> bool:
        try:
            self.exec(service, *argv)
        except RuntimeError:
            return False
        return True

    def psql(self, sql: str) -> str:
        return self.exec(
            "postgres", "psql", "-h", "/tmp", "-U", "janitor", "-d", "janitor", "-v", "ON_ERROR_STOP=1", "-q", input=sql
        )


def ready(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200


# Run inside each image: every runtime module imports, and nothing from the
# development side (janitor_dev, pytest, httpx) is there or gets pulled in.
IMPORT_CHECK = """
import importlib, pkgutil, sys
names = []
for package in ("janitor_common", sys.argv[1]):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if ".migrations" not in info.name:  # Alembic scripts run only under Alembic
            importlib.import_module(info.name)
            names.append(info.name)
dev = sorted(m for m in ("janitor_dev", "pytest", "httpx") if importlib.util.find_spec(m) or m in sys.modules)
assert not dev, f"development packages in the image: {dev}"
print(len(names), "modules")
"""
PACKAGES = {"bzr-store": "janitor_bzr_store", "differ": "janitor_differ", "auto-upload": "janitor_auto_upload"}


def check_images(stack: Stack) -> None:
    for service, package in PACKAGES.items():
        out = stack.exec(service, "/opt/janitor/bin/python", "-c", IMPORT_CHECK, package).strip()
        say(f"{service} image: {out} of janitor_common and {package} import; no janitor_dev, pytest or httpx")


def check_bzr(stack: Stack, scratch: Path) -> None:
    stack.exec("bzr-store", "janitor-db", "add-worker", WORKER, input=PASSWORD + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRZ_", "BZR_"))}
    env.update(BRZ_HOME=str(scratch), BRZ_EMAIL="CI <ci@example.com>", BRZ_PLUGIN_PATH="-site:-user")

    def brz(*args: str, cwd: Path = scratch) -> str:
        done = subprocess.run([BRZ, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"brz {' '.join(args)}: {done.stderr}")
        return done.stdout

    brz("init", "-q", "work")
    (scratch / "work" / "README").write_text("pushed through compose\n")
    brz("add", "-q", "README", cwd=scratch / "work")
    brz("commit", "-q", "-m", "first", cwd=scratch / "work")
    brz("push", "-q", f"bzr+http://{WORKER}:{PASSWORD}@127.0.0.1:9930/bzr/foo/lintian-fixes/main", cwd=scratch / "work")
    brz("branch", "-q", "bzr+http://127.0.0.1:9930/bzr/foo/lintian-fixes/main", "copy")
    if (scratch / "copy" / "README").read_text() != "pushed through compose\n":
        raise RuntimeError("anonymous branch does not have the pushed content")
    # The same branch over bzr:// (the compose file turns --bzr-port on).
    brz("branch", "-q", "bzr://127.0.0.1:4155/foo/lintian-fixes/main", "copy-bzr")
    if (scratch / "copy-bzr" / "README").read_text() != "pushed through compose\n":
        raise RuntimeError("the branch over bzr:// does not have the pushed content")
    # bzr+ssh is listening, with a host key made on first start in its volume.
    with socket.create_connection(("127.0.0.1", 9931), timeout=10) as sock:
        banner = sock.recv(256)
    if not banner.startswith(b"SSH-2.0-"):
        raise RuntimeError(f"no SSH server on 9931: {banner[:60]!r}")
    say("bzr-store: worker push, anonymous branch over bzr+http and bzr://, SSH server up: OK")


def check_result(stack: Stack, scratch: Path) -> None:
    artifacts = scratch / "artifacts"
    artifacts.mkdir()
    build_upload(artifacts / "control-1", "foo", "1.0", distribution="unchanged")
    build_upload(artifacts / "changed-1", "foo", "1.0+jan1", distribution="lintian-fixes")
    for path in [scratch, *artifacts.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    # The runner's side: artifacts into the shared volume, rows into the database.
    run(
        [
            DOCKER, "run", "--rm", "--user", "10001:10001", "--entrypoint", "cp",
            "-v", f"{PROJECT}_artifacts:/srv/artifacts", "-v", f"{artifacts}:/src:ro",
            f"janitor-differ:{TAG}", "-r", "/src/control-1", "/src/changed-1", "/srv/artifacts/",
        ]
    )  # fmt: skip
    rows = []
    for run_id, campaign, version, revision in (
        ("control-1", "unchanged", "1.0", "rev-base"),
        ("changed-1", "lintian-fixes", "1.0+jan1", "rev-1"),
    ):
        rows.append(
            f"INSERT INTO change_set (id, campaign) VALUES ('{run_id}', '{campaign}');"
            "INSERT INTO run (id, codebase, suite, result_code, revision, main_branch_revision, change_set,"
            f" finish_time) VALUES ('{run_id}', 'foo', '{campaign}', 'success', '{revision}', 'rev-base',"
            f" '{run_id}', now());"
            "INSERT INTO debian_build (run_id, version, distribution, source, binary_packages)"
            f" VALUES ('{run_id}', '{version}', '{campaign}', 'foo', ARRAY['foo']);"
        )
    stack.psql("\n".join(rows))
    message = {
        "log_id": "changed-1",
        "code": "success",
        "codebase": "foo",
        "campaign": "lintian-fixes",
        "revision": "rev-1",
        "main_branch_revision": "rev-base",
        "change_set": "changed-1",
        "target": {"name": "debian", "details": {"build_distribution": "lintian-fixes"}},
    }
    receivers = stack.exec("redis", "redis-cli", "PUBLISH", "result", json.dumps(message)).strip()
    if receivers != "2":
        raise RuntimeError(f"result message reached {receivers} subscriber(s), expected differ and auto-upload")
    cache = "/var/cache/janitor-differ"
    wait_until(
        lambda: all(
            stack.succeeds("differ", "test", "-s", f"{cache}/{tool}_control-1_changed-1/raw")
            for tool in ("debdiff", "diffoscope")
        ),
        180,
        "differ precached the pair",
    )
    diff = httpx.get("http://127.0.0.1:9920/debdiff/control-1/changed-1", headers={"Accept": "text/plain"}, timeout=30)
    if diff.status_code != 200 or "1.0+jan1" not in diff.text:
        raise RuntimeError(f"differ answered {diff.status_code}: {diff.text[:500]}")
    say("differ: result message precached debdiff and diffoscope; served from the cache")
    changes = [f"/srv/incoming/foo_1.0+jan1_{kind}.changes" for kind in ("source", "all")]
    wait_until(lambda: all(stack.succeeds("auto-upload", "test", "-s", c) for c in changes), 120, "upload arrived")
    for c in changes:
        stack.exec("auto-upload", "gpg", "--batch", "--verify", c)
    say("auto-upload: both .changes uploaded to the target, signatures verify")


def main() -> int:
    daemon = engine_up()
    scratch = Path(tempfile.mkdtemp(prefix="compose-test-"))
    scratch.chmod(0o755)
    stack: Stack | None = None
    ok = False
    started = time.monotonic()
    try:
        base_image()
        key = scratch / "signing-key.asc"
        gnupg = scratch / "gnupg"
        fingerprint = ensure_signing_key(gnupg)
        key.write_text(run(["gpg", "--homedir", str(gnupg), "--batch", "--armor", "--export-secret-keys", fingerprint]))
        key.chmod(0o644)  # read by uid 10001 in the container (a throwaway key)
        env = {
            **os.environ,
            "JANITOR_SIGNING_KEY_FILE": str(key),
            "JANITOR_TAG": TAG,
            "DOCKER_HOST": "unix:///var/run/docker.sock",
        }
        stack = Stack(env)
        busy = [f"{name} ({port})" for name, port in READY.items() if port_in_use(port)] + (
            ["bzr-store public (9930)"] if port_in_use(9930) else []
        )
        if busy:
            raise RuntimeError(f"ports in use: {', '.join(busy)} (is `make run` running?)")
        say("building images")
        stack.compose("build")
        say("starting the stack")
        stack.compose("up", "-d")
        for name, port in READY.items():
            wait_until(lambda port=port: ready(port), 180, f"{name} /ready 200")  # type: ignore[misc]
        say("every /ready answers 200")
        check_images(stack)
        stack.exec("bzr-store", "janitor-db", "add-codebase", "foo")
        check_bzr(stack, scratch)
        check_result(stack, scratch)
        ok = True
        say(f"passed in {time.monotonic() - started:.0f}s")
    except RuntimeError as e:
        say(f"FAILED: {e}")
        if stack is not None:
            print(stack.compose("logs", "--no-color", "--tail", "40", check=False)[-20000:], flush=True)
    finally:
        if stack is not None:
            stack.compose("down", "-v", "--remove-orphans", check=False)
        shutil.rmtree(scratch, ignore_errors=True)
        if daemon is not None:
            daemon.terminate()
            daemon.wait(30)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
