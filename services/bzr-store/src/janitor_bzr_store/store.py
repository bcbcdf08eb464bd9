"""The on-disk store: ``<vcs_path>/<codebase>/`` shared repositories.

A codebase's repository is created on first use (when the database knows the
codebase); branches live at ``<codebase>/<campaign>/`` and
``<codebase>/<campaign>/<role>/``. Names are validated before they touch the
file system. Several processes may serve one store: creation takes a file
lock, and everything else relies on Breezy's own locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from breezy import errors as bzr_errors
from breezy.controldir import format_registry
from breezy.revision import NULL_REVISION

from janitor_common.names import valid_campaign, valid_codebase

SMART_SUFFIX = "/.bzr/smart"
# In the codebase's directory, beside .bzr: held by every write to the
# repository (a smart write request, creating a branch, setting a remote),
# across threads and processes; see smart_http for why.
WRITE_LOCK = ".janitor-write.lock"


class BadPath(ValueError):
    """A request path that names nothing we serve; ``status`` is 400 or 404."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StorePath:
    codebase: str
    campaign: str | None = None
    role: str | None = None

    @property
    def relpath(self) -> str:
        """The path below the codebase's repository (``""`` for the repository)."""
        return "/".join(p for p in (self.campaign, self.role) if p)


def parse_store_path(path: str) -> StorePath:
    """``codebase[/campaign[/role]]`` as it appears in a URL (already percent-decoded)."""
    if "\x00" in path or "\\" in path:
        raise BadPath("invalid path")
    parts = path.strip("/").split("/") if path.strip("/") else []
    if not parts:
        raise BadPath("no codebase in path", 404)
    if len(parts) > 3 or any(p == "" for p in parts):
        raise BadPath(f"invalid path: {path!r}", 404)
    codebase, rest = parts[0], parts[1:]
    if not valid_codebase(codebase):
        raise BadPath(f"invalid codebase name: {codebase[:100]!r}")
    for p in rest:
        if not valid_campaign(p):
            raise BadPath(f"invalid name: {p[:100]!r}")
    return StorePath(codebase, *rest)


@dataclass(frozen=True)
class Tip:
    revision: str | None  # None for an empty branch
    revno: int | None  # None when the file is not ``revno revid`` (older formats)
    modified: datetime | None


def read_last_revision(branch_dir: str) -> Tip | None:
    """A branch's tip from its ``.bzr/branch/last-revision`` file, or None when ``branch_dir`` holds no branch.

    Read directly, not through Breezy: listing 50 000 branches must not open
    50 000 branches, and the audit reads the tip around every write request.
    """
    control = os.path.join(branch_dir, ".bzr")
    if os.path.islink(control):
        return None
    last = os.path.join(control, "branch", "last-revision")
    try:
        st = os.stat(last, follow_symlinks=False)
        with open(last, "rb") as f:
            content = f.read(4096)
    except (FileNotFoundError, NotADirectoryError):
        return Tip(None, None, None) if os.path.isdir(os.path.join(control, "branch")) else None
    modified = datetime.fromtimestamp(st.st_mtime, UTC)
    revno, _, revid = content.strip().partition(b" ")
    if not revno.isdigit() or not revid:
        return Tip(None, None, modified)
    if revid == NULL_REVISION:
        return Tip(None, 0, modified)
    return Tip(revid.decode("utf-8", "replace"), int(revno), modified)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    def has_repository(self, codebase: str) -> bool:
        """Whether the codebase's repository exists; blocking.

        Looked at every time (one stat), never remembered: a repository
        removed or restored under a running service is seen at once.
        """
        path = self.repository_path(codebase)
        # A symbolic link in the codebase's place is not a repository of the store.
        return not path.is_symlink() and (path / ".bzr").is_dir()

    def repository_path(self, codebase: str) -> Path:
        assert valid_codebase(codebase)
        return self.root / codebase

    def list_repositories(self) -> list[str]:
        names = []
        with os.scandir(self.root) as entries:
            for e in entries:
                if (
                    e.is_dir(follow_symlinks=False)
                    and valid_codebase(e.name)
                    and os.path.isdir(os.path.join(e.path, ".bzr"))
                ):
                    names.append(e.name)
        return sorted(names)

    def ensure_repository(self, codebase: str) -> Path:
        """Create the codebase's shared repository unless it exists; blocking."""
        path = self.repository_path(codebase)
        if path.is_symlink():  # planted: never create (or write) where it leads
            raise bzr_errors.PathNotChild(str(path), str(self.root))
        # Unlocked, only a finished repository will do: another request may be
        # creating this one (its .bzr exists, its repository not yet), and a
        # branch made in it then failed with NoRepositoryPresent.
        if self.has_repository(codebase) and (path / ".bzr" / "repository" / "shared-storage").is_file():
            return path
        lock_path = self.root / f".{codebase}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (path / ".bzr").is_dir():
                path.mkdir(exist_ok=True)
                controldir = format_registry.make_controldir("2a").initialize(str(path))
                repo = controldir.create_repository(shared=True)
                repo.set_make_working_trees(False)
        return path

    def write_lock_path(self, codebase: str) -> Path:
        return self.repository_path(codebase) / WRITE_LOCK

    @contextlib.contextmanager
    def writing(self, codebase: str) -> Iterator[None]:
        """Hold the codebase's write lock (the repository must exist); blocking."""
        with open(self.write_lock_path(codebase), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def prepare_write(self, sp: StorePath) -> None:
        """What a write needs first: the repository, and ``campaign/`` for ``campaign/role``; blocking."""
        path = self.ensure_repository(sp.codebase)
        if sp.campaign and sp.role:
            (path / sp.campaign).mkdir(exist_ok=True)
