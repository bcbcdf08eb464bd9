"""Plain-HTTP reads of the files in branches' and repositories' ``.bzr/``, for clients without the smart protocol.

Breezy's non-smart HTTP transport reads a branch as files: ``GET`` of
``.bzr/branch-format`` and friends, then ``Range`` requests (several ranges
at once, answered ``multipart/byteranges``) into the repository's packs and
indices. Starlette's FileResponse answers those, with ``ETag`` and
``Last-Modified``; what is here decides which file, if any, a path names:

- only below a ``.bzr`` directory of the store's own layout
  (``codebase[/campaign[/role]]/.bzr/...``), with validated names;
- never through a symbolic link, at any level, whatever it points at;
- never a lock directory (a held lock's info names its holder and token),
  and only regular files.
"""

from __future__ import annotations

import os
import re
import stat
from types import SimpleNamespace

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from .context import BzrContext, get_context
from .http import run_blocking, text_error
from .store import BadPath, Store, StorePath, parse_store_path

# Names inside .bzr: format files, pack and index names, branch.conf.
CONTROL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
# Deep enough for .bzr/repository/indices/<name>.rix.
MAX_CONTROL_DEPTH = 4
# Packs are already compressed; a proxy recompressing them would break ranges.
NO_TRANSFORM = {"Cache-Control": "no-transform"}
# What the HTTP metrics call these requests (they share the smart protocol's route).
METRICS_ROUTE = SimpleNamespace(path="/bzr/{branch}/.bzr/{file:path}")


class BzrFileResponse(FileResponse):
    # Breezy's readv asks for up to 200 ranges in one request.
    max_ranges = 256


def split(path: str) -> tuple[StorePath, list[str]] | None:
    """The store path and the components below its ``.bzr``; None when ``path`` names no control file."""
    parts = path.strip("/").split("/")
    if ".bzr" not in parts:
        return None
    at = parts.index(".bzr")
    try:
        sp = parse_store_path("/".join(parts[:at]))
    except BadPath:
        return None
    control = parts[at + 1 :]
    if not 1 <= len(control) <= MAX_CONTROL_DEPTH:
        return None
    if any(CONTROL_NAME.fullmatch(p) is None or ".." in p for p in control):
        return None
    # .bzr/lock (old formats) and .bzr/<branch|repository|checkout>/lock
    if "lock" in control[:2]:
        return None
    return sp, control


def find_file(store: Store, sp: StorePath, control: list[str]) -> tuple[str, os.stat_result] | None:
    """The regular file named, reached without a symbolic link; blocking."""
    path = str(store.root)
    components = (
        [sp.codebase, *sp.relpath.split("/"), ".bzr", *control] if sp.relpath else [sp.codebase, ".bzr", *control]
    )
    for i, name in enumerate(components):
        path = os.path.join(path, name)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        last = i == len(components) - 1
        if not (stat.S_ISREG(st.st_mode) if last else stat.S_ISDIR(st.st_mode)):
            return None  # a symlink, or not what this level must be
    return path, st


async def serve(request: Request, path: str) -> Response:
    """``GET``/``HEAD`` of ``path`` below the public prefix."""
    ctx: BzrContext = get_context(request)
    request.scope["route"] = METRICS_ROUTE
    found = split(path)
    if found is None:
        return text_error(404, "not found")
    sp, control = found
    if sp.campaign is not None and sp.campaign not in ctx.campaigns:
        return text_error(404, "not found")
    located = await run_blocking(ctx, find_file, ctx.store, sp, control)
    if located is None:
        return text_error(404, "not found")
    local, st = located
    return BzrFileResponse(local, stat_result=st, media_type="application/octet-stream", headers=NO_TRANSFORM)
