"""Repository management and per-branch reads, against a running bzr-store and the real brz client."""

from __future__ import annotations

import concurrent.futures
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from .conftest import BzrStore, add_codebase, make_commits

Brz = Callable[..., subprocess.CompletedProcess[str]]


def revision_ids(brz: Brz, tree: Path) -> list[str]:
    """Newest first."""
    out = brz("log", "--show-ids", cwd=tree).stdout
    return [line.split("revision-id:")[1].strip() for line in out.splitlines() if "revision-id:" in line]


def push_new(store: BzrStore, brz: Brz, tree: Path, path: str, commits: int) -> None:
    """A new tree at ``tree`` with ``commits`` revisions, pushed by the worker to ``path`` (its codebase is added)."""
    add_codebase(store.database_url, path.split("/")[0])
    brz("init", "-q", str(tree))
    make_commits(brz, tree, 1, commits)
    brz("push", "-q", store.worker_url(path), cwd=tree)


def create(store: BzrStore, campaign: str, codebase: str, role: str) -> httpx.Response:
    return httpx.post(f"{store.admin_url}/repositories/{campaign}/{codebase}/{role}", timeout=30)


def test_create_info_and_remotes_round_trip(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    add_codebase(bzr_store.database_url, "alpha")
    made = create(bzr_store, "lintian-fixes", "alpha", "main")
    assert made.status_code == 201, made.text
    assert made.json() == {"codebase": "alpha", "campaign": "lintian-fixes", "role": "main", "created": True}
    again = create(bzr_store, "lintian-fixes", "alpha", "main")
    assert again.status_code == 200 and again.json()["created"] is False

    info_url = f"{bzr_store.admin_url}/lintian-fixes/alpha/main/info"
    empty = httpx.get(info_url).json()
    assert empty["revno"] == 0 and empty["revision"] is None and empty["parent"] is None
    assert empty["branch_format"].startswith("Branch format")
    assert empty["repository_format"].startswith("Repository format 2a")
    assert empty["remotes"] == {} and empty["repository_size"] > 0

    # The empty branch takes a worker's push.
    work = tmp_path / "work"
    brz("init", "-q", str(work))
    make_commits(brz, work, 1, 3)
    brz("push", "-q", "--overwrite", bzr_store.worker_url("alpha/lintian-fixes/main"), cwd=work)
    pushed = httpx.get(info_url).json()
    assert pushed["revno"] == 3 and pushed["revision"] == revision_ids(brz, work)[0]
    assert pushed["last_modified"] >= empty["last_modified"]
    assert pushed["repository_size"] > empty["repository_size"]

    remotes_url = f"{bzr_store.admin_url}/lintian-fixes/alpha/main/remotes"
    assert httpx.get(remotes_url).json() == {}
    form = httpx.post(remotes_url, data={"name": "parent", "url": "https://example.com/upstream"})
    assert form.status_code == 200 and form.json() == {"parent": "https://example.com/upstream"}
    as_json = httpx.post(remotes_url, json={"name": "salsa", "url": "https://salsa.example/pkg.git"})
    assert as_json.json() == {"parent": "https://example.com/upstream", "salsa": "https://salsa.example/pkg.git"}
    assert httpx.get(remotes_url).json() == as_json.json()
    assert httpx.get(info_url).json()["parent"] == "https://example.com/upstream"
    # brz sees them, over the store's own protocol.
    parent = brz("config", "-d", bzr_store.bzr_url("alpha/lintian-fixes/main"), "parent_location")
    assert parent.stdout.strip() == "https://example.com/upstream"
    salsa = brz("config", "-d", bzr_store.bzr_url("alpha/lintian-fixes/main"), "salsa_location")
    assert salsa.stdout.strip() == "https://salsa.example/pkg.git"

    for body, reason in [
        ({"url": "https://x.example/"}, "missing field 'name'"),
        ({"name": "up"}, "missing field 'url'"),
        ({"name": "up", "url": "not a url"}, "spaces"),
        ({"name": "up", "url": "example.com/path"}, "not a URL"),
        ({"name": "bound", "url": "https://x.example/"}, "is not a remote"),
        ({"name": "../x", "url": "https://x.example/"}, "invalid remote name"),
    ]:
        refused = httpx.post(remotes_url, json=body)
        assert refused.status_code == 400 and reason in refused.text, (body, refused.text)
    assert httpx.post(remotes_url, content=b"name=x", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.post(remotes_url, content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
    assert httpx.get(remotes_url).json() == as_json.json()  # nothing changed by the refusals


def test_create_refuses_what_it_should(bzr_store: BzrStore) -> None:
    add_codebase(bzr_store.database_url, "gamma")
    unknown_codebase = create(bzr_store, "lintian-fixes", "no-such-codebase", "main")
    assert unknown_codebase.status_code == 404 and unknown_codebase.text == "no such codebase: no-such-codebase\n"
    unknown_campaign = create(bzr_store, "no-such-campaign", "gamma", "main")
    assert unknown_campaign.status_code == 404 and unknown_campaign.text == "no such campaign: no-such-campaign\n"
    assert create(bzr_store, "lintian-fixes", "gamma", "Bad%20Name").status_code == 400
    assert create(bzr_store, "lintian-fixes", "-gamma", "main").status_code == 400
    assert not (bzr_store.vcs_path / "no-such-codebase").exists()
    assert not (bzr_store.vcs_path / "gamma").exists()
    missing = httpx.get(f"{bzr_store.admin_url}/lintian-fixes/gamma/main/info")
    assert missing.status_code == 404
    for route in ("info", "remotes"):
        assert httpx.get(f"{bzr_store.admin_url}/lintian-fixes/gamma/nothing/{route}").status_code == 404


def test_concurrent_creates_make_one_branch(bzr_store: BzrStore) -> None:
    add_codebase(bzr_store.database_url, "delta")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for role in ("r1", "r2", "r3", "r4"):
            answers = list(pool.map(lambda r: create(bzr_store, "unchanged", "delta", r), [role, role]))
            assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    listed = httpx.get(f"{bzr_store.admin_url}/repositories", headers={"accept": "text/plain"}).text.splitlines()
    assert [line for line in listed if line.startswith("delta/")] == [f"delta/unchanged/r{i}" for i in range(1, 5)]


def test_repository_listing_in_every_form(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    push_new(bzr_store, brz, work, "epsilon/unchanged/main", 2)
    brz("push", "-q", "--use-existing-dir", bzr_store.worker_url("epsilon/unchanged"), cwd=work)
    assert create(bzr_store, "lintian-fixes", "epsilon", "main").status_code == 201
    url = f"{bzr_store.admin_url}/repositories"

    listed = httpx.get(url, headers={"accept": "application/json"})
    assert listed.headers["content-type"] == "application/json"
    mine = [b for b in listed.json() if b["codebase"] == "epsilon"]
    tip = revision_ids(brz, work)[0]
    assert [(b["campaign"], b["role"], b["revno"], b["revision"]) for b in mine] == [
        ("lintian-fixes", "main", 0, None),
        ("unchanged", None, 2, tip),
        ("unchanged", "main", 2, tip),
    ]
    assert all(b["last_modified"] for b in mine)

    text = httpx.get(url, headers={"accept": "text/plain"}).text.splitlines()
    assert [t for t in text if t.startswith("epsilon/")] == [
        "epsilon/lintian-fixes/main",
        "epsilon/unchanged",
        "epsilon/unchanged/main",
    ]
    assert httpx.get(url).headers["content-type"].startswith("text/plain")  # the platform's default
    page = httpx.get(url, headers={"accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert '<a href="/epsilon/unchanged/main/">epsilon/unchanged/main</a>' in page.text
    assert page.text.rstrip().endswith("</html>")
    # The page's links lead to the branch pages.
    assert httpx.get(f"{bzr_store.admin_url}/epsilon/unchanged/main/").status_code == 200
    assert httpx.get(url, headers={"accept": "image/png"}).status_code == 406


def test_per_branch_reads_take_revnos_and_stay_in_the_branch(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    work = tmp_path / "work"
    push_new(bzr_store, brz, work, "zeta/unchanged/main", 3)
    newest, middle, oldest = revision_ids(brz, work)
    make_commits(brz, work, 4, 1)
    brz("push", "-q", bzr_store.worker_url("zeta/lintian-fixes/main"), cwd=work)
    extra = revision_ids(brz, work)[0]
    for base in (f"{bzr_store.public_url}/bzr/zeta/unchanged/main", f"{bzr_store.admin_url}/unchanged/zeta/main"):
        check_branch_reads(bzr_store, base, [newest, middle, oldest], extra)


def check_branch_reads(bzr_store: BzrStore, base: str, ids: list[str], extra: str) -> None:
    newest, middle, oldest = ids
    by_revno = httpx.get(f"{base}/diff", params={"old": "1", "new": "3"})
    by_id = httpx.get(f"{base}/diff", params={"old": oldest, "new": newest})
    assert by_revno.status_code == 200 and by_revno.headers["content-type"].startswith("text/x-diff")
    assert by_revno.text == by_id.text
    assert "+++ file2.txt" in by_revno.text and "+++ file3.txt" in by_revno.text and "file1.txt" not in by_revno.text
    # The same answer as the admin's repository-wide route.
    whole = httpx.get(f"{bzr_store.admin_url}/zeta/diff", params={"old": oldest, "new": newest})
    assert whole.text == by_id.text

    info = httpx.get(f"{base}/revision-info", params={"old": "1", "new": "3"})
    assert [r["revision_id"] for r in info.json()] == [newest, middle]
    everything = httpx.get(f"{base}/revision-info", params={"old": "0", "new": newest})
    assert [r["revision-id"] for r in everything.json()] == [newest, middle, oldest]

    for old, new, reason in [
        (oldest, extra, "is not in this branch"),  # another branch's revision in the same repository
        ("1", "4", "revno 4"),
        ("1", "no-such-revision", "is not in this branch"),
        ("1", "2.1.1", "revno 2.1.1"),
    ]:
        for route in ("diff", "revision-info"):
            answer = httpx.get(f"{base}/{route}", params={"old": old, "new": new})
            assert answer.status_code == 404 and reason in answer.text, (route, old, new, answer.text)
    assert httpx.get(f"{base}/diff", params={"old": "1"}).status_code == 400
    other = base.replace("unchanged", "lintian-fixes")
    assert httpx.get(f"{other}/diff", params={"old": "3", "new": "4"}).text.count("+++ file4.txt") == 1
    assert httpx.get(base.replace("/main", "/nothing") + "/diff", params={"old": "1", "new": "2"}).status_code == 404


def test_no_admin_route_follows_a_planted_symlink(bzr_store: BzrStore, brz: Brz, tmp_path: Path) -> None:
    """A link planted at codebase, campaign or role level leads nowhere, for every route that names a branch."""
    add_codebase(bzr_store.database_url, "linked")
    work = tmp_path / "work"
    push_new(bzr_store, brz, work, "eta/unchanged/main", 2)
    # Outside the store: a repository with a branch at unchanged/main, as the store lays one out.
    outside = tmp_path / "outside"
    brz("init-shared-repo", "-q", "--no-trees", str(outside))
    brz("push", "-q", "--create-prefix", str(outside / "unchanged" / "main"), cwd=work)
    before = sorted(str(p.relative_to(outside)) for p in outside.rglob("*"))
    conf = outside / "unchanged" / "main" / ".bzr" / "branch" / "branch.conf"
    conf_before = conf.read_text() if conf.exists() else ""

    planted = [
        (bzr_store.vcs_path / "linked", outside, ("unchanged", "linked", "main")),
        (bzr_store.vcs_path / "eta" / "lintian-fixes", outside / "unchanged", ("lintian-fixes", "eta", "main")),
        (
            bzr_store.vcs_path / "eta" / "unchanged" / "other",
            outside / "unchanged" / "main",
            ("unchanged", "eta", "other"),
        ),
    ]
    for link, target, _ in planted:
        link.symlink_to(target)
    try:
        for _, _, (campaign, codebase, role) in planted:
            admin = bzr_store.admin_url
            branch = f"{admin}/{campaign}/{codebase}/{role}"
            answers = {
                "info": httpx.get(f"{branch}/info"),
                "remotes": httpx.get(f"{branch}/remotes"),
                "set remote": httpx.post(f"{branch}/remotes", json={"name": "parent", "url": "https://evil.example/"}),
                "create": create(bzr_store, campaign, codebase, role),
                "diff": httpx.get(f"{branch}/diff", params={"old": "1", "new": "2"}),
                "revision-info": httpx.get(f"{branch}/revision-info", params={"old": "1", "new": "2"}),
                "public diff": httpx.get(
                    f"{bzr_store.public_url}/bzr/{codebase}/{campaign}/{role}/diff", params={"old": "1", "new": "2"}
                ),
                "branch page": httpx.get(f"{admin}/{codebase}/{campaign}/{role}/"),
                "old set remote": httpx.post(
                    f"{admin}/{codebase}/remotes/{campaign}", data={"url": "https://evil.example/"}
                ),
            }
            if codebase == "linked":
                answers["codebase page"] = httpx.get(f"{admin}/linked/")
                answers["codebase diff"] = httpx.get(f"{admin}/linked/diff", params={"old": "null:", "new": "x"})
                answers["codebase revision-info"] = httpx.get(
                    f"{admin}/linked/revision-info", params={"old": "null:", "new": "x"}
                )
            for route, answer in answers.items():
                assert answer.status_code == 404, (codebase, campaign, role, route, answer.status_code, answer.text)
    finally:
        for link, _, _ in planted:
            link.unlink()
    assert sorted(str(p.relative_to(outside)) for p in outside.rglob("*")) == before
    assert (conf.read_text() if conf.exists() else "") == conf_before
