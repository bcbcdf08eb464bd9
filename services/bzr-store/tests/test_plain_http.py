"""Plain-HTTP reads: the real brz client with its smart prober removed, ranges, and the jail."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from janitor_dev.bzrhistory import make_history, no_smart_plugin

from .conftest import BRZ, BzrStore, add_codebase

Brz = Callable[..., subprocess.CompletedProcess[str]]


def plain_get_count(store: BzrStore) -> float:
    metrics = httpx.get(f"{store.admin_url}/metrics").text
    route = re.escape('route="/bzr/{branch}/.bzr/{file:path}"')
    found = re.findall(r'http_requests_total\{method="GET",' + route + r',status="20[06]"\} (\S+)', metrics)
    return sum(float(v) for v in found)


@pytest.fixture(scope="module")
def long_history(bzr_store: BzrStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """omega/unchanged/main with 300 revisions; the local tree it was pushed from."""
    add_codebase(bzr_store.database_url, "omega")
    work = tmp_path_factory.mktemp("history") / "work"
    make_history(work, 300)
    home = work.parent / "home"
    home.mkdir()
    subprocess.run(
        [BRZ, "push", "-q", bzr_store.worker_url("omega/unchanged/main")],
        cwd=work,
        env={**os.environ, "BRZ_HOME": str(home), "BRZ_PLUGIN_PATH": "-site:-user"},
        check=True,
        timeout=300,
    )
    return work


def test_plain_http_branch_gives_the_same_history(
    bzr_store: BzrStore, brz: Brz, long_history: Path, tmp_path: Path
) -> None:
    url = f"{bzr_store.public_url}/bzr/omega/unchanged/main"

    before = plain_get_count(bzr_store)
    env = {
        **os.environ,
        "BRZ_PLUGINS_AT": no_smart_plugin(tmp_path / "plugins"),
        "BRZ_HOME": str(tmp_path),
        "BRZ_PLUGIN_PATH": "-site:-user",
    }
    plain = subprocess.run(
        [BRZ, "branch", url, str(tmp_path / "plain")], env=env, capture_output=True, text=True, timeout=300
    )
    assert plain.returncode == 0, plain.stderr
    assert plain_get_count(bzr_store) - before > 10  # it read files, not the smart protocol

    smart = tmp_path / "smart"
    brz("branch", bzr_store.bzr_url("omega/unchanged/main"), str(smart))
    plain_log = brz("log", "--show-ids", str(tmp_path / "plain")).stdout
    assert "revno: 300" in plain_log
    assert plain_log.replace("plain", "X") == brz("log", "--show-ids", str(smart)).stdout.replace("smart", "X")
    assert brz("log", "--show-ids", str(long_history)).stdout.count("revision-id:") == 300
    # The stock client, which tries the smart protocol first, reads http:// too.
    brz("branch", url, str(tmp_path / "stock"))
    assert brz("revno", str(tmp_path / "stock")).stdout.strip() == "300"


def test_ranges_are_byte_exact(bzr_store: BzrStore, long_history: Path) -> None:
    packs = sorted((bzr_store.vcs_path / "omega" / ".bzr" / "repository" / "packs").iterdir())
    pack = max(packs, key=lambda p: p.stat().st_size)
    data = pack.read_bytes()
    assert len(data) > 2000
    url = f"{bzr_store.public_url}/bzr/omega/.bzr/repository/packs/{pack.name}"

    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["etag"] and whole.headers["last-modified"] and whole.headers["accept-ranges"] == "bytes"
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == len(data)

    one = httpx.get(url, headers={"Range": "bytes=10-109"})
    assert one.status_code == 206 and one.content == data[10:110]
    assert one.headers["content-range"] == f"bytes 10-109/{len(data)}"

    ranges = [(0, 9), (500, 899), (len(data) - 50, len(data) - 1)]
    multi = httpx.get(url, headers={"Range": "bytes=" + ",".join(f"{a}-{b}" for a, b in ranges)})
    assert multi.status_code == 206
    content_type = multi.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    parts = parse_multipart(multi.content, content_type.split("boundary=")[1])
    assert parts == [(f"bytes {a}-{b}/{len(data)}", data[a : b + 1]) for a, b in ranges]

    # Breezy's readv asks for many ranges at once.
    many = [(i * 10, i * 10 + 4) for i in range(150)]
    lots = httpx.get(url, headers={"Range": "bytes=" + ",".join(f"{a}-{b}" for a, b in many)})
    assert lots.status_code == 206
    parts = parse_multipart(lots.content, lots.headers["content-type"].split("boundary=")[1])
    assert [p[1] for p in parts] == [data[a : b + 1] for a, b in many]

    assert httpx.get(url, headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416
    assert httpx.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code in (200, 304)


def parse_multipart(body: bytes, boundary: str) -> list[tuple[str, bytes]]:
    """(Content-Range, bytes) of each part of a multipart/byteranges body."""
    parts = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = dict(line.lower().split(": ", 1) for line in head.decode().strip().split("\r\n") if ": " in line)
        parts.append((headers["content-range"], content[: -len(b"\r\n")] if content.endswith(b"\r\n") else content))
    return parts


@pytest.mark.parametrize(
    "path",
    [
        "omega/unchanged/main/file1.txt",  # not under .bzr
        "omega/.janitor-write.lock",
        "omega/unchanged/main/.bzr/branch/lock/held/info",
        "omega/unchanged/main/.bzr/branch/lock",
        "omega/.bzr/repository",  # a directory
        "omega/.bzr/%2e%2e/%2e%2e/etc/passwd",
        "omega/..%2f..%2fetc/.bzr/branch-format",
        "omega/unchanged/main/.bzr/.hidden",
        "no-such-codebase/.bzr/branch-format",
        "omega/no-such-campaign/main/.bzr/branch-format",
        ".bzr/branch-format",
    ],
)
def test_only_control_files_are_served(bzr_store: BzrStore, long_history: Path, path: str) -> None:
    lock = bzr_store.vcs_path / "omega" / "unchanged" / "main" / ".bzr" / "branch" / "lock" / "held"
    lock.mkdir(parents=True, exist_ok=True)
    (lock / "info").write_text("nonce: secret-token\n")
    answer = httpx.get(f"{bzr_store.public_url}/bzr/{path}")
    assert answer.status_code in (400, 404), answer.text
    assert b"secret-token" not in answer.content and b"root:" not in answer.content
    assert httpx.get(f"{bzr_store.public_url}/bzr/omega/.bzr/branch-format").status_code == 200


def test_planted_symlinks_are_not_followed(bzr_store: BzrStore, long_history: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("secret outside the store\n")
    secret_dir = tmp_path / "dir"
    (secret_dir / ".bzr").mkdir(parents=True)
    (secret_dir / ".bzr" / "branch-format").write_text("secret outside the store\n")
    branch_control = bzr_store.vcs_path / "omega" / "unchanged" / "main" / ".bzr" / "branch"
    planted = [
        (branch_control / "evil", secret, "omega/unchanged/main/.bzr/branch/evil"),
        (branch_control.parent / "evil-dir", secret_dir / ".bzr", "omega/unchanged/main/.bzr/evil-dir/branch-format"),
        (
            bzr_store.vcs_path / "omega" / "unchanged" / "linked",
            secret_dir,
            "omega/unchanged/linked/.bzr/branch-format",
        ),
        (bzr_store.vcs_path / "sneaky", secret_dir, "sneaky/.bzr/branch-format"),
        # Even a link that stays inside the store is not followed.
        (branch_control / "inside", branch_control / "format", "omega/unchanged/main/.bzr/branch/inside"),
    ]
    for link, target, _ in planted:
        link.symlink_to(target)
    try:
        for _, _, path in planted:
            answer = httpx.get(f"{bzr_store.public_url}/bzr/{path}")
            assert answer.status_code == 404 and b"secret" not in answer.content, (path, answer.text)
    finally:
        for link, _, _ in planted:
            link.unlink()
    # The real files beside them are served.
    assert httpx.get(f"{bzr_store.public_url}/bzr/omega/unchanged/main/.bzr/branch/format").status_code == 200


def test_plain_http_is_read_only(bzr_store: BzrStore, long_history: Path) -> None:
    url = f"{bzr_store.public_url}/bzr/omega/unchanged/main/.bzr/branch/last-revision"
    for method in ("PUT", "DELETE", "PATCH"):
        assert httpx.request(method, url, content=b"0 null:\n").status_code in (404, 405)
    last = bzr_store.vcs_path / "omega" / "unchanged" / "main" / ".bzr" / "branch" / "last-revision"
    assert last.read_text().startswith("300 ")
