"""Revision information along the left-hand ancestry (blocking; run in a thread)."""

from __future__ import annotations

from typing import Any

from breezy import errors
from breezy.repository import Repository
from breezy.revision import NULL_REVISION


class UnknownRevision(LookupError):
    pass


def revision_info(repo_path: str, old: str, new: str) -> list[dict[str, Any]]:
    """``{"revision-id", "revision_id", "link", "message"}`` from ``new`` back to (not including) ``old``.

    Both spellings of the id: the platform's Python service answered
    ``revision-id``, and its current client reads ``revision_id``.
    """
    repo = Repository.open(repo_path)
    old_id, new_id = old.encode("utf-8"), new.encode("utf-8")
    with repo.lock_read():
        for revid in (old_id, new_id):
            if revid != NULL_REVISION and not repo.has_revision(revid):
                raise UnknownRevision(revid.decode("utf-8", "replace"))
        graph = repo.get_graph()
        try:
            revids = [r for r in graph.iter_lefthand_ancestry(new_id, (old_id,)) if r != NULL_REVISION]
        except errors.RevisionNotPresent as e:
            raise UnknownRevision(str(e.revision_id)) from None
        revisions = repo.get_revisions(revids)
    return [
        {
            "revision-id": rev.revision_id.decode("utf-8"),
            "revision_id": rev.revision_id.decode("utf-8"),
            "link": None,
            "message": rev.message,
        }
        for rev in revisions
    ]
