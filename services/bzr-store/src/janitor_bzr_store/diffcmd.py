"""``python -m janitor_bzr_store.diffcmd REPO OLD NEW``: a unified diff on stdout.

Run as a subprocess so a slow diff can be killed at its deadline and never
holds the web process. Exit codes: 0 done, 3 unknown revision (the message on
stderr), 4 repository not openable.
"""

from __future__ import annotations

import sys

import breezy
import breezy.bzr  # registers the bzr formats
from breezy import errors
from breezy.diff import show_diff_trees
from breezy.repository import Repository

UNKNOWN_REVISION = 3
UNOPENABLE = 4


def write_diff(repo_path: str, old: str, new: str) -> int:
    try:
        repo = Repository.open(repo_path)
    except errors.BzrError as e:
        print(f"repository not openable: {e}", file=sys.stderr)
        return UNOPENABLE
    with repo.lock_read():
        trees = {}
        for revid in (old, new):
            try:
                trees[revid] = repo.revision_tree(revid.encode("utf-8"))
            except (errors.NoSuchRevision, errors.RevisionNotPresent):
                print(f"unknown revision: {revid}", file=sys.stderr)
                return UNKNOWN_REVISION
        show_diff_trees(trees[old], trees[new], sys.stdout.buffer, old_label="", new_label="")
    sys.stdout.buffer.flush()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m janitor_bzr_store.diffcmd REPO OLD NEW", file=sys.stderr)
        return 2
    with breezy.initialize():
        return write_diff(*argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
