"""Repositories opened by requests are freed (vcsgraph's Rust providers kept them alive)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from breezy.controldir import ControlDir, format_registry
from breezy.repository import Repository

from janitor_bzr_store import patches
from janitor_bzr_store.patches.parents import WeakParentsProvider

patches.install()  # as the app factory does


@pytest.fixture
def branch_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BRZ_EMAIL", "Test <test@example.com>")
    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    controldir = format_registry.make_controldir("2a").initialize(str(repo_dir))
    controldir.create_repository(shared=True)
    branch = ControlDir.create_branch_convenience(str(repo_dir / "main"), force_new_tree=True)
    tree = branch.controldir.open_workingtree()
    (repo_dir / "main" / "a").write_text("one\n")
    tree.add(["a"])
    tree.commit("first", rev_id=b"rev-1")
    (repo_dir / "main" / "a").write_text("two\n")
    tree.commit("second", rev_id=b"rev-2")
    return repo_dir


def test_repository_is_freed_after_use(branch_path: Path) -> None:
    repository = Repository.open(str(branch_path))
    with repository.lock_read():
        graph = repository.get_graph()
        assert graph.get_parent_map([b"rev-2"]) == {b"rev-2": (b"rev-1",)}
        assert list(graph.iter_lefthand_ancestry(b"rev-2")) == [b"rev-2", b"rev-1", b"null:"]
    gone = weakref.ref(repository)
    del repository, graph
    gc.collect()
    assert gone() is None, "the repository is still referenced after the collection"


def test_provider_of_a_closed_repository_says_so(branch_path: Path) -> None:
    repository = Repository.open(str(branch_path))
    provider = WeakParentsProvider(repository)
    with repository.lock_read():
        assert provider.get_parent_map([b"rev-1"]) == {b"rev-1": (b"null:",)}
    del repository
    gc.collect()
    with pytest.raises(ReferenceError):
        provider.get_parent_map([b"rev-1"])
