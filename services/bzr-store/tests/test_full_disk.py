"""A store on a full disk: a clean error for the push, a consistent repository, and service once space is back."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from janitor_dev.devstack import RedisServer

from .conftest import BzrStore, make_commits, running_store, store_database
from .test_brz import Brz

TMPFS_SIZE = 12 << 20


@pytest.fixture(scope="module")
def small_store(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BzrStore]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    base = tmp_path_factory.mktemp("full-disk")
    vcs = base / "vcs"
    vcs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(vcs)], check=True)
    try:
        with running_store(store_database(database_factory), redis_server.url, base) as store:
            yield store
    finally:
        subprocess.run(["umount", "-l", str(vcs)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """A file that takes all but ``leave`` bytes of the file system's free space."""
    stat = os.statvfs(directory)
    filler = directory / "filler"
    size = max(stat.f_bavail * stat.f_frsize - leave, 0)
    with open(filler, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        while size > 0:
            f.write(chunk[: min(size, len(chunk))])
            size -= len(chunk)
    return filler


def test_push_onto_a_full_disk_fails_cleanly_and_the_store_recovers(
    small_store: BzrStore, brz: Brz, tmp_path: Path
) -> None:
    tree = tmp_path / "work"
    brz("init", "-q", str(tree))
    make_commits(brz, tree, 0, 3)
    url = small_store.worker_url("foo/lintian-fixes/main")
    brz("push", "-q", "-d", str(tree), url)

    # A commit too big for what is left (random: it does not compress).
    (tree / "big.bin").write_bytes(os.urandom(3 << 20))
    brz("add", "-q", "big.bin", cwd=tree)
    brz("commit", "-q", "-m", "big", cwd=tree)
    filler = fill(small_store.vcs_path, 1 << 20)
    failed = brz("push", "-d", str(tree), url, check=False)
    # An error (3), not an internal error (4) with a traceback: 507 Insufficient Storage.
    assert failed.returncode == 3, (failed.returncode, failed.stderr)
    assert "507" in failed.stderr and "Traceback" not in failed.stderr
    assert "No space left on device" in small_store.process.log()

    filler.unlink()
    brz("push", "-q", "-d", str(tree), url)
    copy = tmp_path / "copy"
    brz("branch", "-q", small_store.bzr_url("foo/lintian-fixes/main"), str(copy))
    assert (copy / "big.bin").read_bytes() == (tree / "big.bin").read_bytes()
    check = brz("check", str(small_store.vcs_path / "foo" / "lintian-fixes" / "main"), check=False)
    assert check.returncode == 0, check.stderr
