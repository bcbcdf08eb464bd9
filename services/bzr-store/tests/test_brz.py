"""The real brz client against a running bzr-store over real HTTP."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from .conftest import BzrStore, add_codebase, make_commits

Brz = Callable[..., subprocess.CompletedProcess[str]]


def tree_digest(path: Path) -> str:
    """A digest of every file (name and content) below ``path``."""
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            h.update(str(p.relative_to(path)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def log_of(brz: Brz, location: str | Path) -> str:
    return brz("log", "--show-ids", str(location)).stdout.replace(str(location), "")


def test_push_branch_push_pull(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 3)
    pushed = brz("push", bzr_store.worker_url("foo/lintian-fixes/main"), cwd=work)
    assert "Created new branch" in pushed.stderr

    anon = tmp_path / "anon"
    brz("branch", bzr_store.bzr_url("foo/lintian-fixes/main"), str(anon))
    assert brz("revno", str(anon)).stdout.strip() == "3"
    assert log_of(brz, anon) == log_of(brz, work)

    make_commits(brz, work, 4, 2)
    brz("push", bzr_store.worker_url("foo/lintian-fixes/main"), cwd=work)
    pulled = brz("pull", bzr_store.bzr_url("foo/lintian-fixes/main"), cwd=anon)
    assert "Now on revision 5" in pulled.stdout
    assert log_of(brz, anon) == log_of(brz, work)
    assert (bzr_store.vcs_path / "foo" / "lintian-fixes" / "main" / ".bzr" / "branch").is_dir()

    # The revisions live in the codebase's shared repository.
    repo_packs = bzr_store.vcs_path / "foo" / ".bzr" / "repository" / "packs"
    assert any(repo_packs.iterdir())


def test_anonymous_and_wrong_password_pushes_fail(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 2)
    brz("push", bzr_store.worker_url("foo/unchanged/main"), cwd=work)
    on_disk = bzr_store.vcs_path / "foo"
    before = tree_digest(on_disk)

    make_commits(brz, work, 3, 1)
    anon = brz("push", bzr_store.bzr_url("foo/unchanged/main"), cwd=work, check=False)
    assert anon.returncode != 0
    assert "Unauthorized" in anon.stderr or "readonly" in anon.stderr.lower()
    wrong = brz(
        "push", bzr_store.bzr_url("foo/unchanged/main", user="worker1", password="wrong"), cwd=work, check=False
    )
    assert wrong.returncode != 0 and "Unauthorized" in wrong.stderr
    unknown = brz("push", bzr_store.bzr_url("foo/unchanged/main", user="nobody", password="x"), cwd=work, check=False)
    assert unknown.returncode != 0 and "Unauthorized" in unknown.stderr
    new_branch = brz("push", bzr_store.bzr_url("foo/unchanged/other"), cwd=work, check=False)
    assert new_branch.returncode != 0
    assert tree_digest(on_disk) == before
    assert not (on_disk / "unchanged" / "other").exists()


def test_eight_concurrent_anonymous_branches(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 5)
    brz("push", bzr_store.worker_url("foo/lintian-fixes/concurrent"), cwd=work)

    def branch(i: int) -> str:
        dest = tmp_path / f"copy{i}"
        brz("branch", bzr_store.bzr_url("foo/lintian-fixes/concurrent"), str(dest))
        return log_of(brz, dest)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        logs = list(pool.map(branch, range(8)))
    assert len(set(logs)) == 1
    assert logs[0] == log_of(brz, work)


def test_diff_and_revision_info(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 3)
    brz("push", bzr_store.worker_url("foo/lintian-fixes/history"), cwd=work)
    revids = brz("log", "--show-ids", "--line", "-n0", cwd=work).stdout
    ids = [
        line.split("revision-id:")[1].strip()
        for line in brz("log", "--show-ids", cwd=work).stdout.splitlines()
        if "revision-id:" in line
    ]
    assert revids and len(ids) == 3
    newest, middle, oldest = ids

    diff = httpx.get(f"{bzr_store.admin_url}/foo/diff", params={"old": oldest, "new": newest})
    assert diff.status_code == 200, diff.text
    assert diff.headers["content-type"].startswith("text/x-diff")
    assert "+++ file2.txt" in diff.text and "+++ file3.txt" in diff.text
    assert "+content 3" in diff.text and "file1.txt" not in diff.text

    info = httpx.get(f"{bzr_store.admin_url}/foo/revision-info", params={"old": oldest, "new": newest})
    assert info.status_code == 200
    assert info.json() == [
        {"revision-id": newest, "revision_id": newest, "link": None, "message": "commit number 3"},
        {"revision-id": middle, "revision_id": middle, "link": None, "message": "commit number 2"},
    ]
    everything = httpx.get(f"{bzr_store.admin_url}/foo/revision-info", params={"old": "null:", "new": newest})
    assert [r["revision-id"] for r in everything.json()] == ids

    for route in ("diff", "revision-info"):
        unknown = httpx.get(f"{bzr_store.admin_url}/foo/{route}", params={"old": oldest, "new": "no-such-rev"})
        assert unknown.status_code == 404 and "unknown revision: no-such-rev" in unknown.text
        missing = httpx.get(f"{bzr_store.admin_url}/foo/{route}", params={"old": oldest})
        assert missing.status_code == 400
        assert missing.text == "missing query parameter 'new'\n"
        assert missing.headers["content-type"].startswith("text/plain")
    no_codebase = httpx.get(f"{bzr_store.admin_url}/nope/diff", params={"old": "a", "new": "b"})
    assert no_codebase.status_code == 404 and no_codebase.text == "no such codebase: nope\n"

    metrics = httpx.get(f"{bzr_store.admin_url}/metrics").text
    assert "bzr_diff_duration_seconds_count" in metrics
    assert 'bzr_smart_requests_total{interface="public",kind="write",outcome="success"}' in metrics
    assert 'bzr_smart_bytes_out_total{interface="public"}' in metrics
    # Smart requests bypass FastAPI's routing but are still counted per route.
    assert 'http_requests_total{method="POST",route="/bzr/{path:path}",status="200"}' in metrics
    assert 'http_requests_total{method="POST",route="/bzr/{path:path}",status="401"}' in metrics


def test_remotes_sets_parent(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 1)
    # lintian-fixes/ already holds role branches, so brz wants --use-existing-dir.
    brz("push", "--use-existing-dir", bzr_store.worker_url("foo/lintian-fixes"), cwd=work)
    ok = httpx.post(f"{bzr_store.admin_url}/foo/remotes/lintian-fixes", data={"url": "https://example.com/upstream"})
    assert ok.status_code == 204, ok.text
    parent = brz("config", "-d", str(bzr_store.vcs_path / "foo" / "lintian-fixes"), "parent_location")
    assert parent.stdout.strip() == "https://example.com/upstream"
    assert httpx.post(f"{bzr_store.admin_url}/foo/remotes/lintian-fixes").status_code == 400
    none = httpx.post(f"{bzr_store.admin_url}/foo/remotes/unchanged-nothing", data={"url": "https://x"})
    assert none.status_code == 404 and "no branch at foo/unchanged-nothing" in none.text


def test_remotes_never_follow_a_symlink(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    """A link planted in the store does not let set-remote write a branch elsewhere."""
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 1)
    brz("push", "-q", bzr_store.worker_url("foo/unchanged/linked"), cwd=work)  # the repository exists
    outside = tmp_path / "outside"
    brz("init", "-q", str(outside))
    link = bzr_store.vcs_path / "foo" / "planted"
    link.symlink_to(outside)
    try:
        answer = httpx.post(f"{bzr_store.admin_url}/foo/remotes/planted", data={"url": "https://evil.example/"})
        assert answer.status_code == 404 and "no branch at foo/planted" in answer.text, answer.text
        config = outside / ".bzr" / "branch" / "branch.conf"
        assert "evil" not in (config.read_text() if config.exists() else "")
    finally:
        link.unlink()


def test_admin_interface_is_writable_without_credentials(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 1)
    admin = bzr_store.admin_url.replace("http://", "bzr+http://")
    brz("push", f"{admin}/foo/unchanged/admin-pushed", cwd=work)
    assert (bzr_store.vcs_path / "foo" / "unchanged" / "admin-pushed" / ".bzr").is_dir()


CLONED_TRANSPORT_CLIENT = """
import sys
import breezy
from breezy.branch import Branch
from breezy.transport import get_transport

with breezy.initialize():
    import breezy.bzr  # noqa: F401 - registers the bzr formats
    top = get_transport(sys.argv[1])
    child = top.clone("lintian-fixes").clone("child")
    branch = Branch.open_from_transport(child)
    print(branch.last_revision_info()[0])
"""


def test_cloned_transport_posts_child_paths_to_first_url(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    """A client that opened the repository URL reaches a branch below it through that URL's endpoint."""
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 2)
    brz("push", bzr_store.worker_url("foo/lintian-fixes/child"), cwd=work)
    log_before = len(bzr_store.process.log())
    out = subprocess.run(
        [sys.executable, "-c", CLONED_TRANSPORT_CLIENT, bzr_store.bzr_url("foo/")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BRZ_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    posts = [line for line in bzr_store.process.log()[log_before:].splitlines() if " POST " in line]
    assert posts, "the client made no requests"
    assert all(" POST /bzr/foo/.bzr/smart 200 " in line for line in posts), posts


def test_two_processes_serve_one_store(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    """Replicas on one store: concurrent pushes through each, then reads through the other."""
    import json

    from janitor_dev.devstack import free_port
    from janitor_dev.testing import ServiceProcess, console_script, service_env

    from .conftest import CAMPAIGNS

    admin, public = free_port(), free_port()
    other = ServiceProcess(
        [
            console_script("janitor-bzr-store"),
            "--vcs-path",
            str(bzr_store.vcs_path),
            "--port",
            str(admin),
            "--public-port",
            str(public),
        ],
        service_env(
            JANITOR_DATABASE_URL=bzr_store.database_url,
            JANITOR_REDIS_URL=bzr_store.process.env["JANITOR_REDIS_URL"],
            JANITOR_CAMPAIGNS=json.dumps([{"name": c} for c in CAMPAIGNS]),
        ),
        f"http://127.0.0.1:{admin}/health",
        tmp_path / "other.log",
    )
    other.start()
    try:
        second = BzrStore(
            bzr_store.vcs_path, f"http://127.0.0.1:{admin}", f"http://127.0.0.1:{public}", bzr_store.database_url, other
        )
        works = []
        for i, store in enumerate((bzr_store, second)):
            work = tmp_path / f"work{i}"
            brz("init", "-q", str(work))
            make_commits(brz, work, 10 * i, 3)
            works.append((work, store))

        def push(item: tuple[Path, BzrStore]) -> None:
            work, store = item
            brz("push", store.worker_url(f"foo/unchanged/replica-{work.name}"), cwd=work)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(push, works))
        for (work, _), reader in zip(works, (second, bzr_store), strict=True):
            copy = tmp_path / f"copy-{work.name}"
            brz("branch", reader.bzr_url(f"foo/unchanged/replica-{work.name}"), str(copy))
            assert log_of(brz, copy) == log_of(brz, work)
    finally:
        other.stop()


def test_reads_never_create_anything(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    add_codebase(bzr_store.database_url, "untouched")

    def listing() -> list[str]:
        return sorted(str(p.relative_to(bzr_store.vcs_path)) for p in bzr_store.vcs_path.rglob("*"))

    before = listing()
    for path in ("untouched", "untouched/lintian-fixes", "untouched/lintian-fixes/main", "untouched/unchanged/x"):
        failed = brz("branch", bzr_store.bzr_url(path), str(tmp_path / "copy"), check=False)
        assert failed.returncode != 0 and "Not a branch" in failed.stderr, failed.stderr
        brz("log", bzr_store.bzr_url(path), check=False)
        brz("info", bzr_store.bzr_url(path), check=False)
    assert listing() == before, "an anonymous read wrote to the store"


def test_a_repository_removed_under_the_service_is_recreated_by_the_next_push(
    bzr_store: BzrStore, brz: Brz, tmp_path: Path
) -> None:
    add_codebase(bzr_store.database_url, "phoenix")
    tree = tmp_path / "work"
    brz("init", "-q", str(tree))
    make_commits(brz, tree, 0, 2)
    url = bzr_store.worker_url("phoenix/lintian-fixes/main")
    brz("push", "-q", "-d", str(tree), url)
    shutil.rmtree(bzr_store.vcs_path / "phoenix")
    gone = brz("branch", bzr_store.bzr_url("phoenix/lintian-fixes/main"), str(tmp_path / "gone"), check=False)
    assert gone.returncode != 0 and "Not a branch" in gone.stderr
    brz("push", "-q", "-d", str(tree), url)  # no restart needed
    brz("branch", "-q", bzr_store.bzr_url("phoenix/lintian-fixes/main"), str(tmp_path / "back"))
    assert (tmp_path / "back" / "file1.txt").exists()


def test_anonymous_clients_learn_no_lock_token(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    from breezy.branch import Branch

    from .test_http import smart, v3_request

    add_codebase(bzr_store.database_url, "locked")
    tree = tmp_path / "work"
    brz("init", "-q", str(tree))
    make_commits(brz, tree, 0, 1)
    brz("push", "-q", "-d", str(tree), bzr_store.worker_url("locked/lintian-fixes/main"))
    branch = Branch.open(str(bzr_store.vcs_path / "locked" / "lintian-fixes" / "main"))
    token = branch.lock_write().token  # a worker's lock, held across requests as during a push
    try:
        assert token
        for relpath in (b"lintian-fixes/main/.bzr/branch/lock/held/info", b"lintian-fixes/main/.bzr/branch/lock"):
            got = smart(bzr_store, "locked", v3_request(b"get", relpath))
            assert token not in got.content and b"oE" in got.content, got.content
        listing = smart(bzr_store, "locked", v3_request(b"list_dir", b"lintian-fixes/main/.bzr/branch"))
        assert b"lock" not in listing.content and b"branch.conf" in listing.content
        # Lock-token verbs are writes: challenged, never run anonymously.
        parent = smart(
            bzr_store,
            "locked/lintian-fixes/main",
            v3_request(b"Branch.set_parent_location", b"", token, b"", b"http://evil/"),
        )
        assert parent.status_code == 401
        # The worker's lock is untouched: the lock directory is still there for it.
        worker = smart(
            bzr_store,
            "locked",
            v3_request(b"get", b"lintian-fixes/main/.bzr/branch/lock/held/info"),
            auth=("worker1", "correct horse"),
        )
        assert token in worker.content
    finally:
        branch.unlock()
    assert Branch.open(str(bzr_store.vcs_path / "locked" / "lintian-fixes" / "main")).get_parent() is None
