"""What the store's pages show: a codebase's branches and a branch's latest revisions (blocking).

Only the store's own layout is walked (``campaign/`` and ``campaign/role/``
below a codebase's repository), by validated names and never through a
symbolic link, so a page cannot be made to read outside the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from breezy.branch import Branch
from breezy.revision import NULL_REVISION

from janitor_common.names import valid_campaign

LOG_LENGTH = 20


@dataclass(frozen=True)
class BranchSummary:
    path: str  # below the codebase, e.g. "lintian-fixes/main"
    revno: int
    last_change: datetime | None


@dataclass(frozen=True)
class LogEntry:
    revno: int
    revision_id: str
    parent_id: str  # the left-hand parent, "null:" for the first revision
    author: str
    date: datetime
    message: str


def _subdirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False) and valid_campaign(e.name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_branch(path: Path) -> bool:
    control = path / ".bzr"
    return not control.is_symlink() and (control / "branch").is_dir()


def branches(repo_path: Path) -> list[BranchSummary]:
    found = []
    for campaign in _subdirs(repo_path):
        for candidate in [campaign, *_subdirs(campaign)]:
            if _is_branch(candidate):
                found.append(summary(repo_path, candidate))
    return found


def summary(repo_path: Path, path: Path) -> BranchSummary:
    branch = Branch.open(str(path))
    with branch.lock_read():
        revno, tip = branch.last_revision_info()
        when = None
        if tip != NULL_REVISION:
            when = datetime.fromtimestamp(branch.repository.get_revision(tip).timestamp, UTC)
    return BranchSummary(str(path.relative_to(repo_path)), revno, when)


def branch_path(repo_path: Path, relpath: str) -> Path | None:
    """The branch at ``relpath`` (``campaign`` or ``campaign/role``), or None when there is none."""
    parts = relpath.split("/")
    if not 1 <= len(parts) <= 2 or not all(valid_campaign(p) for p in parts):
        return None
    path = repo_path
    for part in parts:
        path = path / part
        if path.is_symlink() or not path.is_dir():
            return None
    return path if _is_branch(path) else None


def log(path: Path, limit: int = LOG_LENGTH) -> list[LogEntry]:
    """The newest ``limit`` revisions along the branch's left-hand history."""
    branch = Branch.open(str(path))
    with branch.lock_read():
        revno, tip = branch.last_revision_info()
        if tip == NULL_REVISION:
            return []
        graph = branch.repository.get_graph()
        revids = []
        for revid in graph.iter_lefthand_ancestry(tip, (NULL_REVISION,)):
            revids.append(revid)
            if len(revids) == limit:
                break
        revisions = branch.repository.get_revisions(revids)
    entries = []
    for i, rev in enumerate(revisions):
        parent = rev.parent_ids[0] if rev.parent_ids else NULL_REVISION
        entries.append(
            LogEntry(
                revno=revno - i,
                revision_id=rev.revision_id.decode("utf-8"),
                parent_id=parent.decode("utf-8"),
                author=rev.get_apparent_authors()[0],
                date=datetime.fromtimestamp(rev.timestamp, UTC),
                message=rev.message,
            )
        )
    return entries
