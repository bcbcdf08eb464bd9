"""The Breezy internals bzr-store relies on are the ones of the Breezy version it is pinned to."""

from __future__ import annotations

import re
from pathlib import Path

import breezy
from breezy.bzr.smart import medium, request

from janitor_bzr_store import patches

CONSTRAINTS = Path(__file__).resolve().parents[3] / "requirements" / "constraints.txt"


def test_breezy_is_the_pinned_version() -> None:
    pinned = re.search(r"^breezy==(\S+) ", CONSTRAINTS.read_text(), re.MULTILINE)
    assert pinned is not None
    # The patches and the private call below were written against this version:
    # a different one must be checked against them before it is pinned.
    assert breezy.__version__ == pinned.group(1) == "3.3.23"


def test_the_private_protocol_call_answers_as_smart_py_expects() -> None:
    factory, rest = medium._get_protocol_factory_for_bytes(b"bzr message 3 (bzr 1.6)\nREST")
    assert callable(factory) and rest == b"REST"


def test_install_replaces_the_insert_handlers_once() -> None:
    patches.install()
    patches.install()
    for verb in (b"Repository.insert_stream", b"Repository.insert_stream_1.19", b"Repository.insert_stream_locked"):
        assert request.request_handlers.get(verb).__name__.startswith("Bounded")
    assert request._translate_error is patches.insert._translate_error
