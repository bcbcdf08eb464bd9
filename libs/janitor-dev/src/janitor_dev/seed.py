"""The demo's runs: a real package in the store, built twice, announced as the runner would.

``make run`` seeds one pair on its first start, and ``janitor-demo publish``
adds another whenever asked, so a newcomer can watch a result go through
all three services:

1. the package's source is a Bazaar branch, pushed into bzr-store as the
   demo worker: the baseline to ``demo/unchanged/main``, the same tree with
   a lintian fix to ``demo/lintian-fixes/main``;
2. each tree is exported and built with ``dpkg-buildpackage`` (the version
   gets the campaign's suffix, as the platform's builds do), and the build's
   files go to the artifact store under the run's id;
3. the runs go into ``change_set``, ``run`` and ``debian_build``, the
   baseline being the change set's own run (its id is the change set's);
4. a ``result`` message for each is published on Redis, baseline first: the
   differ precaches the pair, and auto-upload signs and uploads the changed
   run (its distribution is the only one the demo uploads).

What ``janitor-demo`` needs to find the running stack is kept in
``.run/demo.json``, written by ``make run``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis

PACKAGE = "janitor-demo-hello"
UPSTREAM = "1.0"
BASELINE, CHANGED = "unchanged", "lintian-fixes"
IDENTITY = "Janitor Demo <janitor-demo@localhost>"

RULES = """\
#!/usr/bin/make -f
# No debhelper: a package small enough to build anywhere dpkg-dev is.
PKG := janitor-demo-hello
D := debian/$(PKG)

build build-arch build-indep:

clean:
\trm -rf $(D) debian/files

binary-arch:

binary binary-indep:
\trm -rf $(D)
\tinstall -D -m 0755 hello $(D)/usr/bin/janitor-demo-hello
\ttest ! -f hello.1 || install -D -m 0644 hello.1 $(D)/usr/share/man/man1/janitor-demo-hello.1
\tinstall -d $(D)/DEBIAN
\tdpkg-gencontrol -p$(PKG) -P$(D)
\tdpkg-deb --root-owner-group --build $(D) ..

.PHONY: build build-arch build-indep clean binary binary-arch binary-indep
"""

CONTROL = """\
Source: janitor-demo-hello
Section: misc
Priority: {priority}
Maintainer: Janitor Demo <janitor-demo@localhost>
Standards-Version: {standards}
Rules-Requires-Root: no

Package: janitor-demo-hello
Architecture: all
Description: greeting for the Janitor demo
 Prints a greeting. Built by make run to show the Janitor services at work.
"""

MANPAGE = """\
.TH JANITOR-DEMO-HELLO 1
.SH NAME
janitor-demo-hello \\- print a greeting
.SH SYNOPSIS
.B janitor-demo-hello
.SH DESCRIPTION
Prints a greeting; the Janitor demo's package.
"""


def baseline_files() -> dict[str, str]:
    """The package as its maintainer left it: lintian would say priority-extra-is-replaced-by-priority-optional
    and binary-without-manpage."""
    return {
        "hello": '#!/bin/sh\necho "Hello from the Janitor demo"\n',
        "debian/source/format": "3.0 (native)\n",
        "debian/control": CONTROL.format(priority="extra", standards="4.1.0"),
        "debian/rules": RULES,
        "debian/changelog": changelog_entry(UPSTREAM, "unstable", "Initial release."),
    }


def fixed_files() -> dict[str, str]:
    """What the lintian-fixes campaign makes of it."""
    return {
        "debian/control": CONTROL.format(priority="optional", standards="4.6.2"),
        "hello.1": MANPAGE,
    }


def changelog_entry(version: str, distribution: str, change: str) -> str:
    return (
        f"{PACKAGE} ({version}) {distribution}; urgency=medium\n\n  * {change}\n\n"
        f" -- {IDENTITY}  Sun, 29 Nov 2026 00:00:00 +0000\n"
    )


@dataclass
class DemoStack:
    """Where the running stack is, as ``make run`` wrote it to ``.run/demo.json``."""

    run_dir: str
    database_url: str
    redis_url: str
    bzr_url: str  # the public interface, http://HOST:PORT
    differ_url: str
    worker: str
    password: str
    incoming: str
    pairs: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: Path) -> DemoStack:
        return cls(**json.loads((run_dir / "demo.json").read_text()))

    def save(self) -> None:
        path = Path(self.run_dir) / "demo.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        path.chmod(0o600)  # it holds the demo worker's password

    def branch_url(self, campaign: str, *, write: bool = False) -> str:
        host = self.bzr_url.removeprefix("http://")
        creds = f"{self.worker}:{self.password}@" if write else ""
        return f"bzr+http://{creds}{host}/bzr/demo/{campaign}/main"


class SeedError(Exception):
    """A step of the demo failed; the message says which and shows the tool's output."""


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SeedError(f"{' '.join(argv[:3])} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def brz_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRZ_", "BZR_"))}
    env.update(BRZ_HOME=str(home), BRZ_EMAIL=IDENTITY, BRZ_PLUGIN_PATH="-site:-user")
    return env


def brz(*args: str, cwd: Path, home: Path) -> str:
    """The venv's brz; ``home`` must be outside any working tree (brz writes ``breezy/`` there)."""
    home.mkdir(exist_ok=True)
    return _run([str(Path(sys.executable).parent / "brz"), *args], cwd, brz_env(home))


def write_files(tree: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (tree / "debian" / "rules").chmod(0o755)


def brz_home(stack: DemoStack) -> Path:
    return Path(stack.run_dir) / "brz-home"


def ensure_branches(stack: DemoStack) -> dict[str, str]:
    """The two branches in the store; returns campaign -> tip revision id there.

    They are pushed from trees in ``.run/demo-src`` only when the store does
    not have them: later pairs are built from whatever the store holds, so a
    change a user pushed goes into the next ``janitor-demo publish``.
    """
    work = Path(stack.run_dir) / "demo-src"
    work.mkdir(exist_ok=True)
    home = brz_home(stack)
    base, changed = work / BASELINE, work / CHANGED
    if not (base / ".bzr").exists():
        shutil.rmtree(base, ignore_errors=True)
        brz("init", "-q", base.name, cwd=work, home=home)
        write_files(base, baseline_files())
        brz("add", "-q", cwd=base, home=home)
        brz("commit", "-q", "-m", "Initial packaging of janitor-demo-hello", cwd=base, home=home)
    if not (changed / ".bzr").exists():
        shutil.rmtree(changed, ignore_errors=True)
        brz("branch", "-q", base.name, changed.name, cwd=work, home=home)
        write_files(changed, fixed_files())
        brz("add", "-q", cwd=changed, home=home)
        brz(
            "commit",
            "-q",
            "-m",
            "Fix lintian issues: priority extra is now optional; add a manual page",
            cwd=changed,
            home=home,
        )
    tips = {}
    for campaign, tree in ((BASELINE, base), (CHANGED, changed)):
        try:
            tip = brz("revision-info", "-d", stack.branch_url(campaign), cwd=work, home=home)
        except SeedError:  # not in the store (yet, or any more)
            brz("push", "-q", stack.branch_url(campaign, write=True), cwd=tree, home=home)
            tip = brz("revision-info", "-d", stack.branch_url(campaign), cwd=work, home=home)
        tips[campaign] = tip.split()[1]
    return tips


def build(
    branch_url: str, revision: str, version: str, distribution: str, change: str, dest: Path, home: Path
) -> list[str]:
    """dpkg-buildpackage of an export of the branch at ``revision``, ``version`` on top of its changelog;
    the files into ``dest``."""
    with tempfile.TemporaryDirectory(prefix="janitor-demo-build-") as scratch:
        src = Path(scratch) / f"{PACKAGE}-{version}"
        brz("export", "-q", "-r", f"revid:{revision}", str(src), branch_url, cwd=Path(scratch), home=home)
        changelog = src / "debian" / "changelog"
        changelog.write_text(changelog_entry(version, distribution, change) + "\n" + changelog.read_text())
        log = _run(["dpkg-buildpackage", "-us", "-uc", "-d"], src)
        dest.mkdir(parents=True, exist_ok=True)
        names = []
        for f in Path(scratch).iterdir():
            if f.is_file():
                shutil.copy(f, dest / f.name)
                names.append(f.name)
        (dest / "build.log").write_text(log)
    return [*sorted(names), "build.log"]


def record_runs(stack: DemoStack, control: dict[str, str], changed: dict[str, str]) -> None:
    with psycopg.connect(stack.database_url, autocommit=False) as conn:
        conn.execute("INSERT INTO change_set (id, campaign, state) VALUES (%s, %s, 'ready')", (control["id"], CHANGED))
        for run in (control, changed):
            conn.execute(
                "INSERT INTO run (id, command, description, start_time, finish_time, codebase, suite, result_code,"
                " revision, main_branch_revision, change_set, worker)"
                " VALUES (%s, %s, %s, now(), now(), 'demo', %s, 'success', %s, %s, %s, %s)",
                (
                    run["id"],
                    "lintian-brush" if run["campaign"] == CHANGED else "true",
                    run["description"],
                    run["campaign"],
                    run["revision"],
                    run["main_branch_revision"],
                    control["id"],
                    stack.worker,
                ),
            )
            conn.execute(
                "INSERT INTO debian_build (run_id, version, distribution, source, binary_packages)"
                " VALUES (%s, %s, %s, %s, %s)",
                (run["id"], run["version"], run["campaign"], PACKAGE, [PACKAGE]),
            )


def result_message(run: dict[str, str], control_id: str, names: list[str]) -> dict[str, object]:
    """A ``result`` message shaped as the platform's runner publishes it."""
    return {
        "log_id": run["id"],
        "code": "success",
        "description": run["description"],
        "codebase": "demo",
        "campaign": run["campaign"],
        "change_set": control_id,
        "revision": run["revision"],
        "main_branch_revision": run["main_branch_revision"],
        "target": {
            "name": "debian",
            "details": {
                "build_distribution": run["campaign"],
                "build_version": run["version"],
                "source": PACKAGE,
                "binary_packages": [PACKAGE],
                "changes_filenames": [n for n in names if n.endswith(".changes")],
            },
        },
    }


def publish_pair(stack: DemoStack, say: Callable[[str], None] = print) -> dict[str, str]:
    """Push, build, record and announce a new pair of demo runs; returns the pair."""
    run_dir = Path(stack.run_dir)
    say("demo: the demo branches in bzr-store")
    tips = ensure_branches(stack)
    n = len(stack.pairs) + 1
    control = {
        "id": str(uuid.uuid4()),
        "campaign": BASELINE,
        "version": f"{UPSTREAM}~jan+{BASELINE}{n}",
        "revision": tips[BASELINE],
        "main_branch_revision": tips[BASELINE],
        "description": "Build of the unchanged package",
    }
    changed = {
        "id": str(uuid.uuid4()),
        "campaign": CHANGED,
        "version": f"{UPSTREAM}~jan+lint{n}",
        "revision": tips[CHANGED],
        "main_branch_revision": tips[BASELINE],
        "description": "Fixed 2 lintian issues",
    }
    files = {}
    for run in (control, changed):
        say(f"demo: building {PACKAGE} {run['version']} ({run['campaign']}) with dpkg-buildpackage")
        change = "Build for the unchanged baseline." if run is control else "Build with the lintian fixes."
        url = stack.branch_url(run["campaign"])
        dest = run_dir / "artifacts" / run["id"]
        files[run["id"]] = build(url, run["revision"], run["version"], run["campaign"], change, dest, brz_home(stack))
    record_runs(stack, control, changed)
    client = redis.Redis.from_url(stack.redis_url)
    try:
        for run in (control, changed):
            message = result_message(run, control["id"], files[run["id"]])
            client.publish("result", json.dumps(message))
    finally:
        client.close()
    pair = {"old": control["id"], "new": changed["id"], "version": changed["version"]}
    stack.pairs.append(pair)
    stack.save()
    say(f"demo: published the results of runs {control['id']} (baseline) and {changed['id']} (changed)")
    return pair


def wait_for_pair(stack: DemoStack, pair: dict[str, str], timeout: float = 120) -> None:
    """Until the differ has the pair and the changed run's upload is in the target."""
    deadline = time.monotonic() + timeout
    changes = f"{PACKAGE}_{pair['version']}_amd64.changes"
    url = f"{stack.differ_url}/diffoscope/{pair['old']}/{pair['new']}"
    diffed = False
    while time.monotonic() < deadline:
        if not diffed:
            try:
                diffed = httpx.get(url, headers={"Accept": "text/plain"}, timeout=60).status_code == 200
            except httpx.HTTPError:
                pass
        if diffed and (Path(stack.incoming) / changes).exists():
            return
        time.sleep(0.5)
    raise SeedError(f"the demo pair did not go through within {timeout:g}s (diff ready: {diffed}; upload {changes})")


def demo_runs_exist(stack: DemoStack) -> bool:
    if not stack.pairs:
        return False
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM run WHERE id = %s", (stack.pairs[-1]["new"],)).fetchone()
    return bool(row and row[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="janitor-demo",
        description="Make a new pair of demo runs on the stack `make run` started and watch it go through: "
        "the differ precaches it and auto-upload uploads the changed run.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    publish = sub.add_parser("publish", help="build and publish a new baseline and changed run")
    publish.add_argument("--no-wait", action="store_true", help="return once published (default: wait for both)")
    parser.add_argument(
        "--run-dir", type=Path, default=Path(os.environ.get("JANITOR_RUN_DIR", ".run")), help="default: .run"
    )
    args = parser.parse_args(argv)
    try:
        stack = DemoStack.load(args.run_dir.absolute())
    except FileNotFoundError:
        print(f"janitor-demo: no {args.run_dir}/demo.json; is `make run` running here?", file=sys.stderr)
        return 1
    try:
        pair = publish_pair(stack)
        if not args.no_wait:
            wait_for_pair(stack, pair)
            print(f"demo: diff ready at {stack.differ_url}/diffoscope/{pair['old']}/{pair['new']}")
            print(f"demo: uploaded to {stack.incoming}")
    except (SeedError, OSError, psycopg.Error, redis.RedisError, httpx.HTTPError) as e:
        print(f"janitor-demo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
