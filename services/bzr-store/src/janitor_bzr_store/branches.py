"""One branch of the store as the management routes see it: listed, created, described, its remotes (blocking).

Branches are found by name along the store's own layout
(``<codebase>/<campaign>[/<role>]``), never through a symbolic link, as
``browse`` finds them, so no route can be pointed outside the store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from breezy import errors as bzr_errors
from breezy.branch import Branch
from breezy.controldir import format_registry
from breezy.revision import NULL_REVISION

from janitor_common.names import valid_campaign, valid_codebase

from . import browse
from .store import Store, read_last_revision


class Outside(Exception):
    """A symbolic link was found where the store's layout has a directory."""


@dataclass(frozen=True)
class Listed:
    codebase: str
    campaign: str
    role: str | None
    revision: str | None
    revno: int | None
    last_modified: datetime | None

    @property
    def path(self) -> str:
        return "/".join(p for p in (self.codebase, self.campaign, self.role) if p)

    def as_json(self) -> dict[str, Any]:
        return {
            "codebase": self.codebase,
            "campaign": self.campaign,
            "role": self.role,
            "revision": self.revision,
            "revno": self.revno,
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
        }


def _names(path: str, valid: Any) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.name for e in entries if valid(e.name) and e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def iter_branches(store: Store) -> Iterator[Listed]:
    """Every branch in the store, ordered by codebase, campaign and role, found lazily."""
    root = str(store.root)
    for codebase in _names(root, valid_codebase):
        repo = os.path.join(root, codebase)
        if not os.path.isdir(os.path.join(repo, ".bzr")):
            continue
        for campaign in _names(repo, valid_campaign):
            campaign_path = os.path.join(repo, campaign)
            tip = read_last_revision(campaign_path)
            if tip is not None:
                yield Listed(codebase, campaign, None, tip.revision, tip.revno, tip.modified)
            for role in _names(campaign_path, valid_campaign):
                tip = read_last_revision(os.path.join(campaign_path, role))
                if tip is not None:
                    yield Listed(codebase, campaign, role, tip.revision, tip.revno, tip.modified)


def create_branch(store: Store, codebase: str, campaign: str, role: str) -> bool:
    """Make sure the repository and an (empty) branch at ``campaign/role`` exist; True if it was created.

    Under the codebase's write lock, so two at once create one branch.
    """
    repo = store.ensure_repository(codebase)
    with store.writing(codebase):
        path = repo
        for part in (campaign, role):
            path = path / part
            if path.is_symlink():
                raise Outside(str(path))
        if browse.branch_path(repo, f"{campaign}/{role}") is not None:
            return False
        path.mkdir(parents=True, exist_ok=True)
        if (path / ".bzr").exists():
            raise bzr_errors.AlreadyControlDirError(str(path))
        controldir = format_registry.make_controldir("2a").initialize(str(path))
        controldir.create_branch()
        return True


# Remote names that are Breezy's own location options: ``brz`` reaches
# them as ``:parent``, ``:push``, ``:submit`` and ``:public``. Any other
# name N is kept as ``N_location``.
KNOWN_LOCATIONS = {
    "parent": "parent_location",
    "push": "push_location",
    "submit": "submit_branch",
    "public": "public_branch",
}
# Not remotes: a bound location makes a branch a checkout of another.
RESERVED_REMOTES = frozenset({"bound", "this"})
URL_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be a remote's location, or None when it can."""
    if not url:
        return "empty url"
    if len(url) > 2048 or not url.isprintable() or any(c.isspace() for c in url):
        return "url too long or with spaces or control characters"
    parts = urlsplit(url)
    if URL_SCHEME.fullmatch(parts.scheme) is None or not parts.netloc:
        return f"not a URL with a scheme and a host: {url[:100]!r}"
    return None


def check_remote_name(name: str) -> str | None:
    """Why ``name`` cannot be a remote's name, or None when it can."""
    if not valid_campaign(name):
        return f"invalid remote name: {name[:100]!r}"
    if name in RESERVED_REMOTES:
        return f"{name!r} is not a remote"
    return None


def option_for(name: str) -> str:
    return KNOWN_LOCATIONS.get(name, f"{name}_location")


def remotes(branch: Branch) -> dict[str, str]:
    """The branch's remotes as ``name → URL``, from its ``branch.conf``."""
    config = branch.get_config_stack()
    found = {}
    for name, option in KNOWN_LOCATIONS.items():
        value = config.get(option)
        if value:
            found[name] = value
    for key in _conf_keys(branch):
        if key.endswith("_location") and key not in ("bound_location", *KNOWN_LOCATIONS.values()):
            value = config.get(key)
            if value:
                found[key.removesuffix("_location")] = value
    return dict(sorted(found.items()))


def remotes_at(branch_path: Path) -> dict[str, str]:
    return remotes(Branch.open(str(branch_path)))


def _conf_keys(branch: Branch) -> list[str]:
    conf = branch._get_config_store()
    conf.load()
    return [name for _, section in conf.get_sections() for name in section.iter_option_names()]


def set_remote(store: Store, codebase: str, branch_path: Path, name: str, url: str) -> None:
    with store.writing(codebase):
        branch = Branch.open(str(branch_path))
        with branch.lock_write():
            branch.get_config_stack().set(option_for(name), url)


def repository_size(repo_path: Path) -> int:
    """Bytes in the repository's control directory (its packs and indices), symlinks not followed."""
    total = 0
    for dirpath, _, files in os.walk(repo_path / ".bzr" / "repository"):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name), follow_symlinks=False).st_size
            except FileNotFoundError:
                pass  # a pack renamed meanwhile
    return total


def info(store: Store, codebase: str, branch_path: Path) -> dict[str, Any]:
    branch = Branch.open(str(branch_path))
    with branch.lock_read():
        revno, tip = branch.last_revision_info()
        last = branch_path / ".bzr" / "branch" / "last-revision"
        modified = datetime.fromtimestamp(last.stat().st_mtime, UTC) if last.exists() else None
        return {
            "codebase": codebase,
            "branch_format": branch._format.get_format_description(),
            "repository_format": branch.repository._format.get_format_description(),
            "revision": None if tip == NULL_REVISION else tip.decode("utf-8"),
            "revno": revno,
            "last_modified": modified.isoformat() if modified else None,
            "parent": branch.get_parent(),
            "remotes": remotes(branch),
            "repository_size": repository_size(store.repository_path(codebase)),
        }


class NotInBranch(LookupError):
    """A revision that is not in the branch's ancestry (or a revno beyond its tip)."""


REVNO = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def resolve(branch_path: Path, specs: list[str]) -> list[str]:
    """Revision ids for ``specs`` (ids, revnos like ``12``, dotted revnos like ``3.1.2``, or ``null:``).

    Only what the branch holds: an id must be in its ancestry, a revno must
    name one of its revisions; anything else raises NotInBranch.
    """
    branch = Branch.open(str(branch_path))
    found = []
    with branch.lock_read():
        revno, tip = branch.last_revision_info()
        graph = branch.repository.get_graph()
        for spec in specs:
            if spec == NULL_REVISION.decode() or spec == "0":
                found.append(NULL_REVISION.decode())
                continue
            if REVNO.fullmatch(spec):
                numbers = tuple(int(n) for n in spec.split("."))
                try:
                    if len(numbers) == 1:
                        if numbers[0] > revno:
                            raise NotInBranch(f"revno {spec} (the branch's tip is {revno})")
                        revid = branch.get_rev_id(numbers[0])
                    else:
                        revid = branch.dotted_revno_to_revision_id(numbers)
                except (bzr_errors.NoSuchRevision, bzr_errors.GhostRevisionsHaveNoRevno) as e:
                    raise NotInBranch(f"revno {spec}") from e
                found.append(revid.decode("utf-8"))
                continue
            revid = spec.encode("utf-8")
            try:
                inside = tip != NULL_REVISION and graph.is_ancestor(revid, tip)
            except bzr_errors.RevisionNotPresent:
                inside = False
            if not inside:
                raise NotInBranch(f"revision {spec[:200]} is not in this branch")
            found.append(spec)
    return found
