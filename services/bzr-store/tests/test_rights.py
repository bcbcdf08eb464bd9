"""Per-worker grants, the audit of writes, and the brake on password guessing, with the real brz client."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from breezy import errors as bzr_errors

from janitor_bzr_store.access import Grants
from janitor_bzr_store.jail import jailed_transport
from janitor_dev.testing import console_script, service_env, wait_until

from .conftest import PASSWORD, WORKER, BzrStore, add_codebase, make_commits
from .test_http import v3_request

Brz = Callable[..., subprocess.CompletedProcess[str]]
LIMITED = "limited"
LIMITED_PASSWORD = "limited secret"


def janitor_db(store: BzrStore, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [console_script("janitor-db"), *args],
        env=service_env(JANITOR_DATABASE_URL=store.database_url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def url_as(store: BzrStore, path: str, user: str, password: str) -> str:
    return store.bzr_url(path, user=user, password=password.replace(" ", "%20"))


def new_tree(brz: Brz, tree: Path, commits: int) -> Path:
    brz("init", "-q", str(tree))
    make_commits(brz, tree, 1, commits)
    return tree


def audit_rows(store: BzrStore, codebase: str) -> list[tuple[str | None, str, str, str | None, str | None]]:
    with psycopg.connect(store.database_url) as conn:
        return conn.execute(
            "SELECT worker, verb, outcome, tip_before, tip_after FROM bzr_write_audit WHERE codebase = %s ORDER BY id",
            (codebase,),
        ).fetchall()


@pytest.fixture(scope="module")
def limited_worker(bzr_store: BzrStore) -> str:
    janitor_db(bzr_store, "add-worker", LIMITED, stdin=LIMITED_PASSWORD + "\n")
    janitor_db(bzr_store, "grant", LIMITED, "--codebase", "a*")
    for codebase in ("alpha", "beta", "alps"):
        add_codebase(bzr_store.database_url, codebase)
    return LIMITED


def test_grants_limit_where_a_worker_pushes(bzr_store: BzrStore, brz: Brz, tmp_path: Path, limited_worker: str) -> None:
    work = new_tree(brz, tmp_path / "work", 2)
    brz("push", "-q", url_as(bzr_store, "alpha/unchanged/main", limited_worker, LIMITED_PASSWORD), cwd=work)
    assert (bzr_store.vcs_path / "alpha" / "unchanged" / "main" / ".bzr").is_dir()

    refused = brz(
        "push", url_as(bzr_store, "beta/unchanged/main", limited_worker, LIMITED_PASSWORD), cwd=work, check=False
    )
    assert refused.returncode != 0
    assert "may not write to beta/unchanged" in refused.stderr and "a*/*" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (bzr_store.vcs_path / "beta").exists()  # nothing written, not even the repository

    # A worker without grants pushes anywhere, as before grants existed.
    brz("push", "-q", bzr_store.worker_url("beta/unchanged/main"), cwd=work)
    assert brz("revno", bzr_store.bzr_url("beta/unchanged/main")).stdout.strip() == "2"


def test_revoke_and_grant_take_effect_at_once(
    bzr_store: BzrStore, brz: Brz, tmp_path: Path, limited_worker: str
) -> None:
    work = new_tree(brz, tmp_path / "work", 1)
    target = url_as(bzr_store, "alps/unchanged/main", limited_worker, LIMITED_PASSWORD)
    brz("push", "-q", target, cwd=work)  # verified and cached
    janitor_db(bzr_store, "grant", limited_worker, "--codebase", "z*")
    revoked = janitor_db(bzr_store, "revoke", limited_worker, "--codebase", "a*")
    assert "anywhere" not in revoked.stdout
    make_commits(brz, work, 2, 1)

    def refused() -> bool:
        done = brz("push", target, cwd=work, check=False)
        return done.returncode != 0 and "may not write to alps/unchanged" in done.stderr

    # Announced by janitor-db; the cache's 60 s lifetime is the bound without it.
    wait_until(refused, 10, "the revoked grant refused")
    assert brz("revno", bzr_store.bzr_url("alps/unchanged/main")).stdout.strip() == "1"
    janitor_db(bzr_store, "revoke", limited_worker, "--codebase", "z*")
    janitor_db(bzr_store, "grant", limited_worker, "--codebase", "a*")


def test_campaign_grants_hold_inside_a_request(tmp_path: Path) -> None:
    """A request posted to one branch's URL names paths relative to it; the transport checks each write."""
    repo = tmp_path / "alpha"  # the codebase's directory in a store at tmp_path
    for d in (".bzr/repository", "lintian-fixes/main", "unchanged/main"):
        (repo / d).mkdir(parents=True)
    grants = Grants((("a*", "lintian-*"),))
    assert grants.allows("alpha", "lintian-fixes") and grants.allows("alpha", None)
    assert not grants.allows("alpha", "unchanged") and not grants.allows("beta", "lintian-fixes")
    # No grants: anywhere in the codebase (the jail keeps it there).
    assert Grants().write_policy(str(tmp_path), "alpha")(str(repo / "unchanged" / "main" / "file"))
    transport = jailed_transport(str(repo), may_write=grants.write_policy(str(tmp_path), "alpha"))
    transport.put_bytes(".bzr/repository/pack", b"x")
    transport.clone("lintian-fixes/main").put_bytes("file", b"x")
    for path in ("unchanged/main/file", "lintian-fixes/../unchanged/main/file", "new-campaign"):
        with pytest.raises(bzr_errors.PermissionDenied):
            transport.put_bytes(path, b"x")
    with pytest.raises(bzr_errors.PermissionDenied):
        transport.clone("lintian-fixes/main").rename("file", "../../unchanged/main/file")
    assert not (repo / "unchanged" / "main" / "file").exists() and not (repo / "new-campaign").exists()


def test_writes_are_audited(bzr_store: BzrStore, brz: Brz, tmp_path: Path, limited_worker: str) -> None:
    add_codebase(bzr_store.database_url, "logged")
    work = new_tree(brz, tmp_path / "work", 2)
    brz("push", "-q", bzr_store.worker_url("logged/unchanged/main"), cwd=work)
    first_tip = brz("log", "-r-1", "--show-ids", cwd=work).stdout.split("revision-id:")[1].split()[0]
    wait_until(lambda: any(r[4] == first_tip for r in audit_rows(bzr_store, "logged")), 10, "the first push's row")
    make_commits(brz, work, 3, 1)
    brz("push", "-q", bzr_store.worker_url("logged/unchanged/main"), cwd=work)
    second_tip = brz("log", "-r-1", "--show-ids", cwd=work).stdout.split("revision-id:")[1].split()[0]
    # Rows are written in batches after the responses: wait for each push's last request.
    wait_until(
        lambda: sum(r[1] == "Branch.unlock" for r in audit_rows(bzr_store, "logged")) == 2, 10, "both pushes' rows"
    )

    rows = audit_rows(bzr_store, "logged")
    assert {r[0] for r in rows} == {WORKER} and {r[2] for r in rows} == {"success"}
    moved = [(r[1], r[3], r[4]) for r in rows if r[3] != r[4]]
    assert moved[-1][1:] == (first_tip, second_tip), moved  # the request that moved the tip, from and to
    assert any("insert_stream" in r[1] for r in rows)
    log = bzr_store.process.log()
    assert re.search(rf'write accepted .*worker="{WORKER}" client="127.0.0.1" codebase="logged"', log)
    assert f'tip_before="{first_tip}" tip_after="{second_tip}"' in log

    # A refused push: a refusal line with its reason, no row.
    count = len(rows)
    make_commits(brz, work, 4, 1)
    refused = brz(
        "push", url_as(bzr_store, "logged/unchanged/main", limited_worker, LIMITED_PASSWORD), cwd=work, check=False
    )
    assert refused.returncode != 0
    wrong = brz("push", url_as(bzr_store, "logged/unchanged/main", WORKER, "wrong"), cwd=work, check=False)
    assert wrong.returncode != 0
    time.sleep(0.5)
    assert len(audit_rows(bzr_store, "logged")) == count
    log = bzr_store.process.log()
    assert re.search(r'write refused .*worker="limited".*reason="worker limited may not write to logged', log)
    assert re.search(rf'write refused .*worker="{WORKER}".*reason="invalid credentials"', log)
    assert "wrong" not in "\n".join(line for line in log.splitlines() if "write refused" in line)
    assert PASSWORD not in log and LIMITED_PASSWORD not in log

    metrics = httpx.get(f"{bzr_store.admin_url}/metrics").text
    assert re.search(rf'bzr_writes_total\{{outcome="accepted",worker="{WORKER}"\}} [1-9]', metrics)
    assert re.search(r'bzr_writes_total\{outcome="refused",worker="limited"\} [1-9]', metrics)
    # Append-only.
    with psycopg.connect(bzr_store.database_url) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE bzr_write_audit SET worker = 'someone else'")


def test_password_guessing_is_braked(bzr_store: BzrStore) -> None:
    def attempt(password: str, source: str) -> httpx.Response:
        token = base64.b64encode(f"{WORKER}:{password}".encode()).decode()
        with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
            return client.post(
                f"{bzr_store.public_url}/bzr/foo/.bzr/smart",
                content=v3_request(b"hello"),
                headers={"Authorization": f"Basic {token}"},
            )

    statuses = [attempt(f"guess {i}", "127.0.0.3").status_code for i in range(20)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 10, statuses
    braked = attempt("guess", "127.0.0.3")
    assert 1 <= int(braked.headers["retry-after"]) <= 60 and "too many failed authentications" in braked.text
    # Other addresses are unaffected; credentials verified within the cache's
    # lifetime pass even from that one (they cost no query).
    assert attempt(PASSWORD, "127.0.0.1").status_code == 200
    assert attempt(PASSWORD, "127.0.0.3").status_code == 200
    assert attempt("wrong once", "127.0.0.4").status_code == 401
    metrics = httpx.get(f"{bzr_store.admin_url}/metrics").text
    assert re.search(r'bzr_smart_requests_total\{interface="public",kind="read",outcome="braked"\} 1[0-9]', metrics)
