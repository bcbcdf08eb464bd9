"""Repositories that can be freed: a pack repository's parents provider refers to it weakly.

Every pack repository Breezy opens keeps ``_unstacked_provider``, a
``CachingParentsProvider`` from vcsgraph around a callable bound to the
repository itself. vcsgraph (0.3.3) implements these in Rust without
telling Python's garbage collector what they refer to, so the cycle
repository -> provider -> bound method -> repository is never collected:
every request that opened a repository leaked it, with its indices, caches
and transports (2.4 MiB per 50-commit push here; ``brz serve`` leaks the
same). With the provider holding only a weak reference there is no cycle
through the Rust objects, and the repository goes when its request is done.
"""

from __future__ import annotations

import weakref
from typing import Any

from breezy.bzr.pack_repo import PackRepository
from vcsgraph.graph import CachingParentsProvider


class WeakParentsProvider:
    """``get_parent_map`` of a repository that may be gone (then: ReferenceError)."""

    def __init__(self, repository: Any) -> None:
        self._repository = weakref.ref(repository)
        # Stacking-capable formats consult fallbacks elsewhere (as Breezy does).
        self._method = (
            "_get_parent_map_no_fallbacks" if repository._format.supports_external_lookups else "get_parent_map"
        )

    def get_parent_map(self, revision_ids: Any) -> Any:
        repository = self._repository()
        if repository is None:
            raise ReferenceError("the repository of this parents provider has been closed")
        return getattr(repository, self._method)(revision_ids)


def install() -> None:
    """Patch PackRepository (process-wide; idempotent)."""
    if getattr(PackRepository.__init__, "_janitor_weak_parents", False):
        return
    original = PackRepository.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._unstacked_provider = CachingParentsProvider(WeakParentsProvider(self))
        self._unstacked_provider.disable_cache()  # as Breezy's constructor leaves it

    __init__._janitor_weak_parents = True  # type: ignore[attr-defined]
    PackRepository.__init__ = __init__
