"""Each of the platform's callers' requests, replayed as the caller sends it, checking what the caller reads.

Every test names its caller and the row of ``docs/compat.md`` it keeps true.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import httpx
import psycopg

from janitor_dev import seed
from janitor_dev.testing import wait_until

from .conftest import CODEBASE, Platform, record_run, result_message

# aiohttp's ClientSession (the site's, the runner's) sends these when the caller sets none.
AIOHTTP_DEFAULTS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "User-Agent": "Python/3.11 aiohttp/3.9.5"}
# urllib.request (the publisher's): no Accept of its own.
URLLIB_DEFAULTS = {"Accept-Encoding": "identity", "User-Agent": "Python-urllib/3.11"}


def test_health_and_ready_are_exactly_ok(platform: Platform) -> None:
    """Kubernetes probes and the platform's own tests compare the body."""
    for base in (platform.bzr_admin, platform.differ, platform.auto_upload):
        for route in ("/health", "/ready"):
            answer = httpx.get(base + route)
            assert (answer.status_code, answer.text) == (200, "ok"), (base, route, answer.text)


def test_site_debdiff_fragment(announced: Platform) -> None:
    """site, common.show_debdiff → get_archive_diff(kind="debdiff", filter_boring=True, accept="text/html")."""
    baseline, changed = announced.runs["baseline"], announced.runs["changed"]
    url = f"{announced.differ}/debdiff/{baseline['id']}/{changed['id']}"
    params = {"jquery_url": "/_static/jquery.js", "filter_boring": "yes"}
    answer = httpx.get(url, params=params, headers={**AIOHTTP_DEFAULTS, "Accept": "text/html"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == "text/html"  # the site reads content_type
    # A fragment the site embeds, in the platform's markup.
    assert "<html" not in answer.text and "<h4>" in answer.text
    assert f"{baseline['version']}" not in answer.text  # filtered: versions only swapped are gone


def test_site_archive_diff_of_a_missing_run(announced: Platform) -> None:
    """site, get_archive_diff: a 404 carries the run in ``unavailable_run_id`` (BuildDiffUnavailable)."""
    missing = str(uuid.uuid4())
    for kind in ("debdiff", "diffoscope"):
        url = f"{announced.differ}/{kind}/{announced.runs['baseline']['id']}/{missing}"
        answer = httpx.get(url, params={"jquery_url": "/_static/jquery.js"}, headers=AIOHTTP_DEFAULTS)
        assert answer.status_code == 404
        assert answer.headers["unavailable_run_id"] == missing


def test_site_api_forwards_no_preference(announced: Platform) -> None:
    """site API routes forward ``Accept: */*``: debdiff answers HTML, diffoscope Markdown, as the platform's."""
    pair = f"{announced.runs['baseline']['id']}/{announced.runs['changed']['id']}"
    debdiff = httpx.get(f"{announced.differ}/debdiff/{pair}", headers=AIOHTTP_DEFAULTS)
    assert debdiff.headers["content-type"].startswith("text/html")
    diffoscope = httpx.get(f"{announced.differ}/diffoscope/{pair}", headers=AIOHTTP_DEFAULTS)
    assert diffoscope.headers["content-type"].startswith("text/markdown")
    as_json = httpx.get(f"{announced.differ}/diffoscope/{pair}", headers={"Accept": "application/json"}).json()
    assert as_json["source1"] == f"{seed.PACKAGE} version {announced.runs['baseline']['version']} (unchanged)"


def test_publisher_filtered_debdiff(announced: Platform) -> None:
    """publisher, get_debdiff: ``?filter_boring=1``, ``Accept: text/plain``, reads the bytes."""
    baseline, changed = announced.runs["baseline"], announced.runs["changed"]
    url = urljoin(announced.differ, f"/debdiff/{baseline['id']}/{changed['id']}?filter_boring=1")
    answer = httpx.get(url, headers={**URLLIB_DEFAULTS, "Accept": "text/plain"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert "usr/share/man/man1/janitor-demo-hello.1" in answer.text  # the fix's manual page
    assert "Version:" not in answer.text
    missing = httpx.get(urljoin(announced.differ, f"/debdiff/{baseline['id']}/nope?filter_boring=1"))
    assert missing.status_code == 404 and missing.headers["unavailable_run_id"] == "nope"


def test_site_vcs_diff_and_revision_info(announced: Platform) -> None:
    """site, RemoteBzrVcsManager: ``{base}/{codebase}/diff`` and ``/revision-info``, ids unencoded in the query."""
    baseline, changed = announced.runs["baseline"], announced.runs["changed"]
    base = announced.bzr_admin + "/bzr"  # get_vcs_managers: URL(location) / "bzr", then urljoin drops it
    old, new = baseline["revision"], changed["revision"]
    diff = httpx.get(urljoin(base, f"{CODEBASE}/diff?old={old}&new={new}"), headers=AIOHTTP_DEFAULTS)
    assert diff.status_code == 200  # raise_for_status, then the bytes
    assert "+.TH JANITOR-DEMO-HELLO 1" in diff.text and "-Priority: extra" in diff.text
    info = httpx.get(urljoin(base, f"{CODEBASE}/revision-info?old={old}&new={new}"), headers=AIOHTTP_DEFAULTS)
    (entry,) = info.json()
    # Both spellings: the platform's Python service answered revision-id, its current client reads revision_id.
    assert entry["revision-id"] == entry["revision_id"] == new
    assert entry["link"] is None and entry["message"].startswith("Fix lintian issues")
    everything = httpx.get(urljoin(base, f"{CODEBASE}/revision-info?old=null:&new={new}"), headers=AIOHTTP_DEFAULTS)
    assert [e["revision_id"] for e in everything.json()] == [new, old]


def test_repository_list_without_preference(platform: Platform) -> None:
    """The platform's list answers text/plain, one codebase a line, to a client with no preference."""
    answer = httpx.get(platform.bzr_admin + "/", headers=AIOHTTP_DEFAULTS)
    assert answer.headers["content-type"].startswith("text/plain")
    assert CODEBASE in answer.text.splitlines()


def test_worker_push_and_anonymous_read(announced: Platform) -> None:
    """worker: ``brz push bzr+http://WORKER:PASSWORD@.../bzr/CODEBASE/CAMPAIGN/main`` (done by the fixture)."""
    branches = httpx.get(f"{announced.bzr_admin}/repositories", headers={"Accept": "text/plain"}).text.splitlines()
    assert {f"{CODEBASE}/unchanged/main", f"{CODEBASE}/lintian-fixes/main"} <= set(branches)

    def pushed() -> int:
        with psycopg.connect(announced.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM bzr_write_audit WHERE worker = %s AND codebase = %s AND tip_after IS NOT NULL",
                (announced.stack.worker, CODEBASE),
            ).fetchone()
        return row[0] if row else 0

    wait_until(lambda: pushed() >= 2, 10, "the pushes' audit rows")


def test_result_messages(announced: Platform) -> None:
    """runner → Redis ``result``: a successful Debian build is precached and uploaded.

    A failed run and one with ``target: {}`` are neither.
    """
    baseline, changed = announced.runs["baseline"], announced.runs["changed"]
    pair = f"{baseline['id']}_{changed['id']}"
    assert all((announced.suite.cache / f"{tool}_{pair}" / "raw").exists() for tool in ("debdiff", "diffoscope"))
    uploads = sorted(p.name for p in announced.suite.incoming.iterdir())
    assert f"{seed.PACKAGE}_{changed['version']}_amd64.changes" in uploads
    assert not [u for u in uploads if baseline["version"] in u]  # not its distribution

    failed = {**changed, "id": str(uuid.uuid4()), "files": []}
    record_run(announced, failed, change_set=baseline["id"], code="build-failed")
    # Recorded with a Debian build and its packages: only the message's empty target says not to act.
    no_target = {**changed, "id": str(uuid.uuid4())}
    record_run(announced, no_target, change_set=baseline["id"])
    shutil.copytree(announced.suite.artifacts / changed["id"], announced.suite.artifacts / no_target["id"])
    assert announced.suite.publish(result_message(failed, change_set=baseline["id"], code="build-failed")) == 2
    assert announced.suite.publish(result_message(no_target, change_set=baseline["id"], target={})) == 2
    time.sleep(3)
    for run in (failed, no_target):
        assert not list(announced.suite.cache.glob(f"*{run['id']}*"))
    with psycopg.connect(announced.database_url) as conn:
        ledger = conn.execute(
            "SELECT run_id FROM auto_upload WHERE run_id IN (%s, %s)", (failed["id"], no_target["id"])
        ).fetchall()
    assert ledger == []
    assert sorted(p.name for p in announced.suite.incoming.iterdir()) == uploads


def test_cupboard_precache(announced: Platform) -> None:
    """cupboard: ``POST /precache/{old}/{new}`` (404 with ``unavailable_run_id``), ``POST /precache-all``."""
    baseline, changed = announced.runs["baseline"], announced.runs["changed"]
    ok = httpx.post(f"{announced.differ}/precache/{baseline['id']}/{changed['id']}", headers=AIOHTTP_DEFAULTS)
    assert ok.status_code == 202
    missing = httpx.post(f"{announced.differ}/precache/{baseline['id']}/nope", headers=AIOHTTP_DEFAULTS)
    assert missing.status_code == 404 and missing.headers["unavailable_run_id"] == "nope"
    assert missing.headers["content-type"].startswith("text/plain")
    everything = httpx.post(f"{announced.differ}/precache-all", headers=AIOHTTP_DEFAULTS)
    assert everything.status_code == 202 and everything.json()["count"] >= 1


def test_platform_command_lines(announced: Platform) -> None:
    """The platform's manifests' flags: ``--gcp-logging`` (JSON lines with severity), ``--backfill``, ``--verbose``."""
    lines = [line for line in announced.suite.processes["bzr-store"].log().splitlines() if line.startswith("{")]
    assert lines and all("severity" in json.loads(line) for line in lines)
    auto_upload = announced.suite.processes["auto-upload"].log()
    assert "backfill" in auto_upload and " DEBUG " in auto_upload
    assert " DEBUG " in announced.suite.processes["differ"].log()


def test_docs_table_names_these_tests() -> None:
    """``docs/compat.md`` and this file describe the same requests: each names only tests the other has."""
    named = set(re.findall(r"`(test_\w+)`", (Path(__file__).parents[2] / "docs" / "compat.md").read_text()))
    here = {name for name in globals() if name.startswith("test_") and name != "test_docs_table_names_these_tests"}
    assert named == here
