"""Real GnuPG key, real .changes (dpkg-source, dpkg-genchanges), a local dput target."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from janitor_auto_upload.settings import AutoUploadSettings


@dataclass
class Keyring:
    home: Path
    fingerprint: str


@pytest.fixture(scope="session")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Keyring:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Janitor Test <test@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["gpg", "--with-colons", "--list-secret-keys"], env=env, check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    return Keyring(home, fingerprint)


@pytest.fixture(autouse=True)
def gnupg_home(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNUPGHOME", str(keyring.home))


def add_build(
    database_url: str,
    run_id: str,
    source: str,
    version: str,
    *,
    distribution: str = "lintian-fixes",
    result_code: str = "success",
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO codebase (name) VALUES (%s) ON CONFLICT DO NOTHING", (source,))
        conn.execute("INSERT INTO change_set (id) VALUES (%s)", (run_id,))
        conn.execute(
            "INSERT INTO run (id, codebase, suite, result_code, change_set, finish_time)"
            " VALUES (%s, %s, 'lintian-fixes', %s, %s, now())",
            (run_id, source, result_code, run_id),
        )
        conn.execute(
            "INSERT INTO debian_build (run_id, version, distribution, source) VALUES (%s, %s, %s, %s)",
            (run_id, version, distribution, source),
        )


@dataclass
class Target:
    incoming: Path
    config: Path
    artifacts: Path
    state: Path

    def arrived(self) -> list[str]:
        return sorted(p.name for p in self.incoming.iterdir()) if self.incoming.exists() else []


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    config = tmp_path / "dput.cf"
    config.write_text(f"[local]\nmethod = local\nincoming = {incoming}\nallow_unsigned_uploads = 0\nrun_dinstall = 0\n")
    yield Target(incoming, config, tmp_path / "artifacts", tmp_path / "state")


def upload_settings(
    database_url: str, redis_url: str, target: Target, keyring: Keyring, **extra: object
) -> AutoUploadSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "artifact_location": str(target.artifacts),
        "dput_host": "local",
        "dput_config": target.config,
        "debsign_keyid": keyring.fingerprint,
        "state_dir": target.state,
        "retry_base_seconds": 0.1,
        "catchup_interval": 0.5,
    }
    values.update(extra)
    return AutoUploadSettings(**values)  # type: ignore[arg-type]


class UploadServer(ThreadingHTTPServer):
    """An HTTP upload target (dput's ``method = http``) that counts what arrives.

    A .changes file is the last file dput sends, so one arrival of it is one
    upload. ``hold()`` parks arriving .changes files unanswered, which lets a
    test kill the service at a moment it chooses; ``release(refuse=True)``
    then answers the parked ones 503 without storing them, as a target does
    when the uploader went away before the upload was complete.
    """

    daemon_threads = True

    def __init__(self, incoming: Path) -> None:
        super().__init__(("127.0.0.1", 0), _UploadHandler)
        self.incoming = incoming
        self.arrivals: Counter[str] = Counter()
        self.cond = threading.Condition()
        self.holding = False
        self.parked = 0
        self.epoch = 0
        self.refused_epochs: set[int] = set()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def hold(self) -> None:
        with self.cond:
            self.holding = True

    def release(self, *, refuse: bool) -> None:
        with self.cond:
            if refuse:
                self.refused_epochs.add(self.epoch)
            self.epoch += 1
            self.holding = False
            self.cond.notify_all()

    def uploads(self) -> Counter[str]:
        with self.cond:
            return Counter({k: v for k, v in self.arrivals.items() if k.endswith(".changes")})

    def wait_if_held(self) -> bool:
        """True when the upload is to be refused."""
        with self.cond:
            if not self.holding:
                return False
            epoch = self.epoch
            self.parked += 1
            self.cond.wait_for(lambda: self.epoch != epoch)
            self.parked -= 1
            return epoch in self.refused_epochs


class _UploadHandler(BaseHTTPRequestHandler):
    server: UploadServer

    def do_PUT(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if len(body) < length or not name or name.startswith("."):
            self.send_error(400)
            return
        if name.endswith(".changes") and self.server.wait_if_held():
            self.send_error(503)
            return
        part = self.server.incoming / f".{name}.part"
        part.write_bytes(body)
        part.rename(self.server.incoming / name)
        with self.server.cond:
            self.server.arrivals[name] += 1
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upload_server(target: Target) -> Iterator[UploadServer]:
    """``target``'s dput config now names host ``web``: this server, on loopback."""
    server = UploadServer(target.incoming)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    target.config.write_text(
        f"[web]\nmethod = http\nfqdn = 127.0.0.1:{server.port}\nincoming = /upload\nallow_unsigned_uploads = 0\n"
    )
    yield server
    server.release(refuse=True)
    server.shutdown()
    server.server_close()
