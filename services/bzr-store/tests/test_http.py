"""bzr-store's HTTP surface without the brz client: errors, limits, paths, lists."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastbencode import bencode

from janitor_bzr_store.smart_bytes import V3_PREFIX
from janitor_bzr_store.store import Store

from .conftest import PASSWORD, WORKER, BzrStore, add_codebase


def v3_request(*args: bytes) -> bytes:
    """A protocol-3 request message, as brz sends it."""
    headers: bytes = bencode({b"Software version": b"3.3.0"})
    arg_bytes: bytes = bencode(list(args))
    return (
        V3_PREFIX
        + struct.pack("!L", len(headers))
        + headers
        + b"s"
        + struct.pack("!L", len(arg_bytes))
        + arg_bytes
        + b"e"
    )


def make_repository(bzr_store: BzrStore, codebase: str) -> None:
    """The codebase's shared repository, as the service makes it on the first write (reads make nothing)."""
    Store(bzr_store.vcs_path).ensure_repository(codebase)


def smart(bzr_store: BzrStore, path: str, body: bytes, *, admin: bool = False, **kw: object) -> httpx.Response:
    base = bzr_store.admin_url if admin else bzr_store.public_url + "/bzr"
    return httpx.post(f"{base}/{path}/.bzr/smart", content=body, timeout=30, **kw)  # type: ignore[arg-type]


def test_hello_and_get_is_405(bzr_store: BzrStore) -> None:
    hello = smart(bzr_store, "foo", v3_request(b"hello"))
    assert hello.status_code == 200
    assert hello.content.startswith(V3_PREFIX) and b"ok" in hello.content
    get = httpx.get(f"{bzr_store.public_url}/bzr/foo/.bzr/smart")
    assert get.status_code == 405 and get.headers["allow"] == "POST"


def test_incomplete_request(bzr_store: BzrStore) -> None:
    truncated = v3_request(b"BzrDir.open_2.1", b"lintian-fixes/main/")[:-3]
    response = smart(bzr_store, "foo", truncated)
    assert response.status_code == 200
    assert response.content == b"error\x01incomplete request\n"


@pytest.mark.parametrize(
    "body",
    [
        os.urandom(2048),
        b"\x00" * 100,
        b"bzr message 3 (bzr 1.6)\n\xff\xff\xff\xffgarbage",
        V3_PREFIX + struct.pack("!L", 2) + b"de" + b"s" + struct.pack("!L", 5) + b"xxxxx" + b"e",
        b"",
    ],
)
def test_malformed_bodies_get_protocol_errors_and_service_keeps_serving(bzr_store: BzrStore, body: bytes) -> None:
    response = smart(bzr_store, "foo", body)
    assert response.status_code == 200
    assert response.content.startswith((b"error", V3_PREFIX))
    if response.content.startswith(V3_PREFIX):
        assert b"oE" in response.content  # an error response, not a success
    assert smart(bzr_store, "foo", v3_request(b"hello")).status_code == 200


def test_body_over_client_max_size_is_413(bzr_store: BzrStore) -> None:
    big = v3_request(b"hello") + b"\0" * (51 << 20)
    response = smart(bzr_store, "foo", big)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield v3_request(b"hello")
        for _ in range(52):
            yield b"\0" * (1 << 20)

    chunked = httpx.post(f"{bzr_store.public_url}/bzr/foo/.bzr/smart", content=chunks(), timeout=30)
    assert chunked.status_code == 413


def test_anonymous_write_verb_is_challenged_before_running(bzr_store: BzrStore) -> None:
    response = smart(bzr_store, "foo/lintian-fixes", v3_request(b"mkdir", b"evil", b""))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="janitor"'
    assert not (bzr_store.vcs_path / "foo" / "evil").exists()
    # Reads are never challenged.
    read = smart(bzr_store, "foo", v3_request(b"BzrDir.open_2.1", b""))
    assert read.status_code == 200


def test_unusable_repository_is_503_with_a_reason(bzr_store: BzrStore) -> None:
    # A repository directory whose control directory is damaged.
    add_codebase(bzr_store.database_url, "damaged")
    (bzr_store.vcs_path / "damaged" / ".bzr").mkdir(parents=True)
    info = httpx.get(f"{bzr_store.admin_url}/damaged/revision-info", params={"old": "a", "new": "b"})
    assert info.status_code == 503 and info.text == "repository not openable: damaged\n"
    # A push onto campaign/role where campaign/ cannot be a directory: refused
    # before Breezy runs, nothing written.
    add_codebase(bzr_store.database_url, "blocked")
    make_repository(bzr_store, "blocked")
    (bzr_store.vcs_path / "blocked" / "lintian-fixes").write_text("not a directory")
    push = smart(
        bzr_store,
        "blocked/lintian-fixes/main",
        v3_request(b"mkdir", b"x", b""),
        auth=(WORKER, PASSWORD),
    )
    assert push.status_code == 503 and push.text == "repository not openable: blocked\n"
    assert (bzr_store.vcs_path / "blocked" / "lintian-fixes").read_text() == "not a directory"
    assert smart(bzr_store, "blocked", v3_request(b"hello")).status_code == 200


def test_unknown_codebase_and_campaign(bzr_store: BzrStore) -> None:
    for admin in (False, True):
        nope = smart(bzr_store, "nope", v3_request(b"hello"), admin=admin)
        assert nope.status_code == 404 and nope.text == "no such codebase: nope\n"
        bad = smart(bzr_store, "foo/no-campaign/main", v3_request(b"hello"), admin=admin)
        assert bad.status_code == 404 and bad.text == "no such campaign: no-campaign\n"
    assert not (bzr_store.vcs_path / "nope").exists()


TRAVERSALS = [
    "..",
    "../etc",
    "foo/..",
    "foo/../..",
    "foo/%2e%2e",
    "%2e%2e/%2e%2e/etc",
    "foo%2f..%2f..",
    "foo/lintian-fixes/%2e%2e%2f%2e%2e%2f..",
    "%2fetc",
    "/etc",
    "foo%00",
    "foo/lintian-fixes%5c..",
    "foo\\..",
    "FOO",
    "foo/lintian-fixes/main/extra",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_are_refused(bzr_store: BzrStore, path: str, tmp_path: Path) -> None:
    outside_before = sorted(os.listdir(bzr_store.vcs_path.parent))
    for base in (bzr_store.public_url + "/bzr", bzr_store.admin_url):
        request = httpx.Request("POST", "http://x", content=v3_request(b"mkdir", b"pwned", b""))
        raw = f"{base}/{path}/.bzr/smart"
        # Send the path exactly as written (no client-side normalisation).
        url = httpx.URL(raw)
        with httpx.Client(timeout=30) as client:
            response = client.send(
                httpx.Request(
                    "POST",
                    url.copy_with(raw_path=raw.split(url.host + f":{url.port}", 1)[1].encode()),
                    content=request.content,
                    headers={"Authorization": "Basic d29ya2VyMTpjb3JyZWN0IGhvcnNl"},
                )
            )
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    assert sorted(os.listdir(bzr_store.vcs_path.parent)) == outside_before
    assert not list(bzr_store.vcs_path.parent.rglob("pwned"))


def test_relative_paths_inside_requests_stay_in_the_repository(bzr_store: BzrStore) -> None:
    """A request naming ../.. inside the smart protocol cannot reach outside the codebase."""
    secret = bzr_store.vcs_path.parent / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    (bzr_store.vcs_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    for relpath in (b"../secret.txt", b"../../secret.txt", b"/../../secret.txt", b"%2e%2e/secret.txt", b"/etc/passwd"):
        response = smart(bzr_store, "foo", v3_request(b"get", relpath), admin=True)
        assert response.status_code == 200
        assert b"TOP-SECRET" not in response.content and b"root:" not in response.content
        assert b"oE" in response.content


def test_symlink_planted_in_store_is_not_followed(bzr_store: BzrStore) -> None:
    outside = bzr_store.vcs_path.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "data.txt").write_text("PRIVATE-DATA")
    add_codebase(bzr_store.database_url, "linked")
    make_repository(bzr_store, "linked")
    (bzr_store.vcs_path / "linked" / "lintian-fixes").symlink_to(outside)
    via_url = smart(bzr_store, "linked/lintian-fixes", v3_request(b"get", b"data.txt"), admin=True)
    assert via_url.status_code == 404
    via_request = smart(bzr_store, "linked", v3_request(b"get", b"lintian-fixes/data.txt"), admin=True)
    assert via_request.status_code == 200
    assert b"PRIVATE-DATA" not in via_request.content and b"oE" in via_request.content
    write = smart(bzr_store, "linked", v3_request(b"put", b"lintian-fixes/new.txt", b""), admin=True)
    assert b"oS" not in write.content
    assert os.listdir(outside) == ["data.txt"]


def test_repository_lists(bzr_store: BzrStore) -> None:
    add_codebase(bzr_store.database_url, "listed")
    make_repository(bzr_store, "listed")
    make_repository(bzr_store, "foo")
    for base in (bzr_store.admin_url + "/", bzr_store.public_url + "/bzr/"):
        as_json = httpx.get(base, headers={"Accept": "application/json"})
        assert as_json.headers["content-type"] == "application/json"
        names = as_json.json()
        assert "listed" in names and "foo" in names and all(isinstance(n, str) for n in names)
        assert names == sorted(names)
        text = httpx.get(base, headers={"Accept": "text/plain"})
        assert text.text.splitlines() == names
        page = httpx.get(base, headers={"Accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html") and ">listed</a>" in page.text
        assert httpx.get(base, headers={"Accept": "image/png"}).status_code == 406
        assert httpx.get(base).text == text.text  # no preference: plain text, as the platform answers
    index = httpx.get(bzr_store.public_url + "/")
    assert index.status_code == 200 and "/bzr/" in index.text
    assert httpx.get(bzr_store.public_url + "/metrics").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/" + "a" * 4000 + "/diff?old=1&new=2",
        "/" + "a" * 4000 + "/revision-info?old=1&new=2",
        "/foo/diff?old=%00&new=%00",
        "/foo/revision-info?old=%00&new=1",
        "/foo/diff?old=" + "1" * 5000 + "&new=2",
    ],
)
def test_hostile_admin_requests_are_400(bzr_store: BzrStore, path: str) -> None:
    response = httpx.get(bzr_store.admin_url + path, timeout=30)
    assert response.status_code == 400, (response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("text/plain")


def test_overlong_names_are_the_clients_mistake(bzr_store: BzrStore) -> None:
    remote = httpx.post(f"{bzr_store.admin_url}/foo/remotes/{'a' * 4000}", data={"url": "http://x/"}, timeout=30)
    assert remote.status_code == 400, remote.text[:200]
    for path in ("foo/lintian-fixes/" + "r" * 4000, "foo/" + "c" * 4000):
        response = smart(bzr_store, path, v3_request(b"BzrDir.open_2.1", b""))
        assert response.status_code in (400, 404), (response.status_code, response.text[:200])


@pytest.mark.parametrize("admin", [False, True])
def test_unparsable_bodies_are_refused_at_once_and_never_run(bzr_store: BzrStore, admin: bool) -> None:
    def newline_free() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * (1 << 20)

    base = bzr_store.admin_url if admin else bzr_store.public_url + "/bzr"
    started = time.monotonic()
    response = httpx.post(f"{base}/foo/.bzr/smart", content=newline_free(), timeout=60)
    assert response.status_code == 200 and response.content.startswith(b"error")
    assert time.monotonic() - started < 10
    # A protocol-3 header of a MiB hides the verb: refused, not run (and not asked for credentials).
    headers = bencode({b"padding": b"p" * (1 << 20)})
    args = bencode([b"mkdir", b"evil", b""])
    hidden = V3_PREFIX + struct.pack("!L", len(headers)) + headers + b"s" + struct.pack("!L", len(args)) + args + b"e"
    answer = smart(bzr_store, "foo/lintian-fixes", hidden, admin=admin)
    assert answer.status_code == 200 and answer.content.startswith(V3_PREFIX) and b"oE" in answer.content
    assert not (bzr_store.vcs_path / "foo" / "lintian-fixes" / "evil").exists()
    metrics = httpx.get(f"{bzr_store.admin_url}/metrics").text
    assert 'outcome="unparsable"' in metrics


@pytest.mark.parametrize(
    "head",
    [
        b"bzr request 2\n" + b"get\x01" + b"x" * (70 << 10),  # protocol 2: no end to the request line
        b"get\x01" + b"x" * (70 << 10),  # protocol 1
        V3_PREFIX + struct.pack("!L", 70 << 10) + b"d" + b"x" * (70 << 10),  # protocol 3: header too long
    ],
)
def test_every_protocol_version_is_refused_past_the_limit(bzr_store: BzrStore, head: bytes) -> None:
    response = smart(bzr_store, "foo", head + b"\n" * 10)
    assert response.status_code == 200 and response.content.startswith((b"error", V3_PREFIX))
    if response.content.startswith(V3_PREFIX):
        assert b"oE" in response.content and b"no request within the first bytes" in response.content


def test_a_request_split_into_single_bytes_is_read_whole(bzr_store: BzrStore) -> None:
    def one_byte_at_a_time() -> Iterator[bytes]:
        for b in v3_request(b"hello"):
            yield bytes([b])

    response = httpx.post(f"{bzr_store.public_url}/bzr/foo/.bzr/smart", content=one_byte_at_a_time(), timeout=30)
    assert response.status_code == 200 and b"ok" in response.content

    # A write verb split the same way is still challenged before it runs.
    def write_split() -> Iterator[bytes]:
        for b in v3_request(b"mkdir", b"split", b""):
            yield bytes([b])

    challenged = httpx.post(f"{bzr_store.public_url}/bzr/foo/.bzr/smart", content=write_split(), timeout=30)
    assert challenged.status_code == 401
