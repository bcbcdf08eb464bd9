"""The jail: paths and symlinks below the root, checked at the file-system boundary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from breezy import errors

from janitor_bzr_store.jail import Jail, jailed_transport


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s")
    (root / "a" / "out-dir").symlink_to(tmp_path / "outside")
    (root / "a" / "out-file").symlink_to(tmp_path / "outside" / "secret")
    (root / "in-dir").symlink_to(root / "a")
    (root / "a" / "b" / "back-out").symlink_to(tmp_path / "outside")
    return root


def test_paths_inside_pass_unchanged(tree: Path) -> None:
    jail = Jail(str(tree))
    for rel in ["", "a", "a/b", "a/b/file", "a/b/missing", "missing/deeper/still", "a/b/file/not-a-dir"]:
        path = os.path.join(str(tree), rel) if rel else str(tree)
        assert jail.check(path) == path
        assert jail.check(path) == path  # and again, from what was remembered


@pytest.mark.parametrize(
    "rel",
    [
        "..",
        "../outside/secret",
        "a/../../outside",
        "a/out-dir",
        "a/out-dir/secret",
        "a/out-file",
        "in-dir/out-dir/secret",  # a symlink staying inside, then one leading out
        "in-dir/b/back-out/secret",
        "a/b/back-out",
    ],
)
def test_ways_out_are_refused(tree: Path, rel: str) -> None:
    jail = Jail(str(tree))
    jail.check(str(tree / "a" / "b" / "file"))  # something remembered first
    with pytest.raises(errors.PathNotChild):
        jail.check(os.path.join(str(tree), rel))


def test_symlinks_staying_inside_are_followed(tree: Path) -> None:
    jail = Jail(str(tree))
    path = str(tree / "in-dir" / "b" / "file")
    assert jail.check(path) == path


def test_transport_refuses_reading_through_a_planted_symlink(tree: Path) -> None:
    transport = jailed_transport(str(tree), readonly=True)
    assert transport.get_bytes("a/b/file") == b"x"
    with pytest.raises(errors.PathNotChild):
        transport.get_bytes("a/out-file")
    with pytest.raises(errors.PathNotChild):
        transport.clone("a").get_bytes("out-dir/secret")
    with pytest.raises(errors.TransportNotPossible):
        transport.put_bytes("a/new", b"y")
