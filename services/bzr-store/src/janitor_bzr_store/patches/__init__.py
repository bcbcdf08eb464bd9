"""Changes to Breezy's server that bzr-store cannot do without, installed by the app factory.

Each module says which Breezy (and vcsgraph) version it was written against
and what the upstream problem is; all are worth reporting upstream:

- ``insert``: Breezy 3.3.23's ``insert_stream`` handlers queue a push's body
  without bound, wait forever on an inserter that died, leave the
  repository locked after a failed insert, and a full disk there shows as
  an internal error in ``brz``.
- ``parents``: vcsgraph 0.3.3's Rust parents providers hide their references
  from the garbage collector, so every pack repository Breezy opens leaks.

``smart.py`` also calls Breezy's private
``breezy.bzr.smart.medium._get_protocol_factory_for_bytes`` (Breezy 3.3.23),
to recognise a request's protocol version from its first bytes; a test
pins it to the Breezy version in the constraints.
"""

from __future__ import annotations

from . import insert, parents


def install() -> None:
    """Install every patch (process-wide, idempotent)."""
    insert.install()
    parents.install()
