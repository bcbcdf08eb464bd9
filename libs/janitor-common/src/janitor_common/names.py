"""Validation of names that end up in file system paths and URLs.

Codebase names, campaign names, run ids and artifact file names all become
path components somewhere (a bzr store, an artifact directory, a cache). One
set of rules here keeps every service from reading or writing outside its
root, whatever encoding the name arrived in.
"""

from __future__ import annotations

import re

CODEBASE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# Campaign and role names in the platform: lowercase words with - and _.
CAMPAIGN_RE = re.compile(r"[a-z0-9][a-z0-9_.+-]*")
# Run ids are UUIDs in the platform, but any simple token is accepted.
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _check_component(kind: str, value: str) -> None:
    if not value:
        raise ValueError(f"empty {kind}")
    if "\x00" in value or "/" in value or "\\" in value:
        raise ValueError(f"invalid {kind}: {value!r}")
    if value in (".", "..") or ".." in value:
        raise ValueError(f"invalid {kind}: {value!r}")
    if len(value) > 255:
        raise ValueError(f"{kind} too long")


# Codebase, campaign, role and remote names: one path component each, well
# under the file system's 255-byte limit (a longer one would fail in the
# file system, as a server error, rather than as the client's mistake).
MAX_NAME_LENGTH = 200
# Revision ids (and revision numbers) in query parameters.
MAX_REVISION_LENGTH = 1024


def valid_codebase(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and CODEBASE_RE.fullmatch(name) is not None and ".." not in name


def valid_campaign(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and CAMPAIGN_RE.fullmatch(name) is not None and ".." not in name


def valid_revision(value: str) -> bool:
    """A revision id or number as a client may name one: printable, no NUL, bounded."""
    return 0 < len(value) <= MAX_REVISION_LENGTH and value.isprintable()


def check_run_id(run_id: str) -> str:
    _check_component("run id", run_id)
    if RUN_ID_RE.fullmatch(run_id) is None:
        raise ValueError(f"invalid run id: {run_id!r}")
    return run_id


def check_file_name(name: str) -> str:
    """An artifact file name: one path component, no control characters."""
    _check_component("file name", name)
    if name.startswith(".") or any(ord(c) < 32 for c in name):
        raise ValueError(f"invalid file name: {name!r}")
    return name
