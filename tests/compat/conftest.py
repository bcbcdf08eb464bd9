"""The three services on a database made by the platform's own schema, started with the platform's command lines.

``platform_schema.sql`` makes the database as the platform's SQL does;
``janitor-db upgrade`` adopts it. The services are started with the flags
the platform's manifests give its own services (no subcommand for
auto-upload, ``--backfill``, ``--verbose``, ``--debug``, ``--gcp-logging``).
The data is real: the demo package's Bazaar branches pushed by ``brz`` as a
worker, built with ``dpkg-buildpackage``, recorded as the platform's runner
records a run, and announced with the runner's ``result`` message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from janitor_dev import seed
from janitor_dev.suite import Suite, running_suite

WORKER, PASSWORD = "worker-1", "worker-password"
CODEBASE = "demo"  # the seed's branches live at demo/<campaign>/main
SCHEMA = Path(__file__).with_name("platform_schema.sql")


@dataclass
class Platform:
    """The suite as the platform would run it, and the runs made for it."""

    suite: Suite
    stack: seed.DemoStack
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.suite.database_url

    @property
    def differ(self) -> str:
        return self.suite.urls["differ"]

    @property
    def bzr_admin(self) -> str:
        return self.suite.urls["bzr-store"]

    @property
    def auto_upload(self) -> str:
        return self.suite.urls["auto-upload"]


def record_run(platform: Platform, run: dict[str, Any], *, change_set: str, code: str = "success") -> None:
    """The rows the platform's runner writes for a finished run (every column it fills)."""
    with psycopg.connect(platform.database_url, autocommit=False) as conn:
        conn.execute(
            "INSERT INTO change_set (id, campaign, state) VALUES (%s, %s, 'ready') ON CONFLICT DO NOTHING",
            (change_set, run["campaign"]),
        )
        conn.execute(
            "INSERT INTO run (id, command, description, start_time, finish_time, instigated_context, context,"
            " main_branch_revision, vcs_type, branch_url, logfilenames, value, worker, result_code,"
            " failure_details, failure_stage, failure_transient, revision, result, suite, change_set, codebase,"
            " target_branch_url, result_tags)"
            " VALUES (%s, %s, %s, now() - interval '5 minutes', now(), 'compat test', NULL, %s, 'bzr', %s,"
            " %s, 10, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                run["id"],
                run["command"],
                run["description"],
                run["main_branch_revision"],
                run["branch_url"],
                ["worker.log", "build.log"],
                WORKER,
                code,
                json.dumps(run.get("failure_details")) if code != "success" else None,
                "build" if code != "success" else None,
                False if code != "success" else None,
                run["revision"] if code == "success" else None,
                json.dumps({"fixed_lintian_tags": ["priority-extra-is-replaced-by-priority-optional"]}),
                run["campaign"],
                change_set,
                CODEBASE,
                run["branch_url"],
                [],
            ),
        )
        if code == "success":
            conn.execute(
                "INSERT INTO debian_build (run_id, version, distribution, source, binary_packages, lintian_result)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (run["id"], run["version"], run["campaign"], seed.PACKAGE, [seed.PACKAGE], json.dumps({})),
            )


def result_message(
    run: dict[str, Any], *, change_set: str, code: str = "success", target: Any = None
) -> dict[str, Any]:
    """A ``result`` message with every key the platform's runner serialises, in its order."""
    debian = {
        "name": "debian",
        "details": {
            "build_distribution": run["campaign"],
            "build_version": run["version"],
            "changes_filenames": [n for n in run.get("files", []) if n.endswith(".changes")],
            "lintian": {"version": "2.116.3", "summary": {"fixed": 2}},
            "binary_packages": [seed.PACKAGE],
        },
    }
    return {
        "codebase": CODEBASE,
        "campaign": run["campaign"],
        "change_set": change_set,
        "log_id": run["id"],
        "description": run["description"],
        "code": code,
        "failure_details": None if code == "success" else {"reason": "dpkg-buildpackage failed"},
        "failure_stage": None if code == "success" else "build",
        "duration": 300.0,
        "finish_time": "2026-11-29T10:00:00.000000",
        "start_time": "2026-11-29T09:55:00.000000",
        "transient": None if code == "success" else False,
        "target": debian if target is None else target,
        "logfilenames": ["worker.log", "build.log"],
        "codemod": {"fixed_lintian_tags": ["priority-extra-is-replaced-by-priority-optional"]},
        "value": 10,
        "remotes": {"origin": {"url": run["branch_url"]}},
        "branch_url": run["branch_url"],
        "resume": None,
        "branches": [["main", None, run["main_branch_revision"], run["revision"]]],
        "tags": [],
        "revision": run["revision"] if code == "success" else None,
        "main_branch_revision": run["main_branch_revision"],
    }


def make_runs(platform: Platform) -> None:
    """A baseline and a changed run of the demo package, built and stored; recorded and announced by the tests."""
    tips = seed.ensure_branches(platform.stack)
    for name, campaign, version in (
        ("baseline", "unchanged", "1.0~jan+unchanged1"),
        ("changed", "lintian-fixes", "1.0~jan+lint1"),
    ):
        run: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "campaign": campaign,
            "version": version,
            "revision": tips[campaign],
            "main_branch_revision": tips["unchanged"],
            "branch_url": platform.stack.branch_url(campaign),
            "command": "lintian-brush" if campaign == "lintian-fixes" else "true",
            "description": "Fixed 2 lintian issues" if campaign == "lintian-fixes" else "Build of the baseline",
        }
        run["files"] = seed.build(
            run["branch_url"],
            run["revision"],
            version,
            campaign,
            f"Build for {campaign}.",
            platform.suite.artifacts / run["id"],
            seed.brz_home(platform.stack),
        )
        platform.runs[name] = run


def platform_database(database_url: str) -> None:
    """The database as the platform's SQL makes it, with a codebase and a worker account."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text().encode())
        conn.execute("INSERT INTO codebase (name, vcs_type) VALUES (%s, 'bzr')", (CODEBASE,))
        conn.execute("INSERT INTO worker (name, password) VALUES (%s, crypt(%s, gen_salt('bf')))", (WORKER, PASSWORD))


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    # Each with the flags the platform's manifests give its own service; auto-upload without a subcommand.
    flags = {"bzr-store": ["--gcp-logging"], "differ": ["--debug"], "auto-upload": ["--backfill", "--verbose"]}
    with running_suite("janitor-compat-", prepare=platform_database, extra_args=flags, auto_upload_command=()) as suite:
        stack = seed.DemoStack(
            run_dir=str(suite.base),
            database_url=suite.database_url,
            redis_url=suite.redis.url,
            bzr_url=suite.public_url,
            differ_url=suite.urls["differ"],
            worker=WORKER,
            password=PASSWORD,
            incoming=str(suite.incoming),
        )
        platform = Platform(suite, stack)
        make_runs(platform)
        yield platform


@pytest.fixture(scope="session")
def announced(platform: Platform) -> Platform:
    """Both runs recorded and announced as the platform's runner does; the differ and auto-upload done."""
    baseline, changed = platform.runs["baseline"], platform.runs["changed"]
    for run in (baseline, changed):
        record_run(platform, run, change_set=baseline["id"])
    for run in (baseline, changed):
        assert platform.suite.publish(result_message(run, change_set=baseline["id"])) == 2  # differ, auto-upload
    changes = platform.suite.incoming / f"{seed.PACKAGE}_{changed['version']}_amd64.changes"
    platform.suite.wait_until(changes.exists, 120, "the changed run uploaded")

    def precached() -> bool:
        pair = f"{baseline['id']}_{changed['id']}"
        return all((platform.suite.cache / f"{tool}_{pair}" / "raw").exists() for tool in ("debdiff", "diffoscope"))

    platform.suite.wait_until(precached, 120, "the pair precached by the differ")
    return platform
