"""Requests generated from each service's OpenAPI document: no 5xx, and answers as documented.

The three services run as processes (the whole-suite fixture); schemathesis
generates requests from each OpenAPI document (bzr-store's admin and public
interfaces, the differ, auto-upload): valid ones and ones that break the
document's rules, a bounded number per operation so ``make test`` stays
quick (``JANITOR_FUZZ_EXAMPLES`` raises it; ``make fuzz`` runs 200). Each
answer must not be a server error, and its status code and content type
must be among those the document declares.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance
from schemathesis.core.result import Err

from janitor_bzr_store.app import create_apps
from janitor_bzr_store.settings import BzrStoreSettings
from janitor_dev.suite import Suite

from . import test_suite

suite = test_suite.suite  # the whole-suite fixture, started once for this module

EXAMPLES = int(os.environ.get("JANITOR_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


def public_document() -> dict[str, Any]:
    """bzr-store's public interface serves no document (it faces the world); it is built here."""
    settings = BzrStoreSettings(database_url="postgresql://unused@127.0.0.1/unused", vcs_path=Path("/nonexistent"))
    document: dict[str, Any] = create_apps(settings)[1].openapi()
    return document


def fuzz(base_url: str, document: dict[str, Any] | None = None) -> list[str]:
    """Every operation of the document (served at ``base_url`` unless given); returns the operations fuzzed."""
    if document is None:
        api = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    else:
        api = schemathesis.openapi.from_dict(document)
    fuzzed = []
    for result in api.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the OpenAPI document has an operation schemathesis cannot read: {result.err()}")
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,  # the same requests every run: a failure is reproducible
                database=None,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:  # type: ignore[no-untyped-def]
                case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60)

            try:
                check()
            except Unsatisfiable:
                # Nothing breaks this operation's rules (free-text path parameters, say).
                assert mode is GenerationMode.NEGATIVE, operation.label
        fuzzed.append(operation.label)
    return fuzzed


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", ["differ", "auto-upload", "bzr-store", "bzr-store public"])
def test_generated_requests_get_documented_answers(suite: Suite, service: str) -> None:
    if service == "bzr-store public":
        assert fuzz(suite.public_url, public_document()), "the document lists operations"
    else:
        assert fuzz(suite.urls[service]), "the document lists operations"
