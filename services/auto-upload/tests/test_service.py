import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from janitor_auto_upload.app import create_app
from janitor_auto_upload.settings import AutoUploadSettings
from janitor_dev.debbuild import build_upload
from janitor_dev.devstack import free_port
from janitor_dev.testing import ServiceProcess, asgi_client, console_script, service_env

from .conftest import Keyring, Target, add_build


async def test_app_health_ready_metrics(janitor_env: dict[str, str]) -> None:
    app = create_app(AutoUploadSettings(dput_host="local"), run_workers=False)
    async with asgi_client(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 200
        assert "http_requests_total" in (await client.get("/metrics")).text


def test_console_script_serves_and_stops_on_sigint(janitor_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    proc = ServiceProcess(
        [
            console_script("janitor-auto-upload"),
            "serve",
            "--port",
            str(port),
            "--dput-host",
            "local",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        service_env(**janitor_env),
        f"http://127.0.0.1:{port}/health",
        tmp_path / "auto-upload.log",
    )
    proc.start()
    assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
    started = time.monotonic()
    assert proc.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 5


def test_signing_key_file_is_imported_and_signs(
    janitor_env: dict[str, str], keyring: Keyring, target: Target, tmp_path: Path
) -> None:
    # As in a container: an empty GnuPG home, the key arrives as a mounted secret file.
    key = tmp_path / "signing-key.asc"
    key.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export-secret-keys", keyring.fingerprint],
            env={**os.environ, "GNUPGHOME": str(keyring.home)},
            check=True,
            capture_output=True,
        ).stdout
    )
    build_upload(target.artifacts / "run-1", "keyed", "1.0", binary=False)
    add_build(janitor_env["JANITOR_DATABASE_URL"], "run-1", "keyed", "1.0")
    empty_home = tmp_path / "empty-gnupg"
    env = service_env(**{**janitor_env, "JANITOR_ARTIFACT_LOCATION": str(target.artifacts)}, GNUPGHOME=str(empty_home))
    argv = [
        console_script("janitor-auto-upload"),
        "backfill",
        "--dput-host",
        "local",
        "--dput-config",
        str(target.config),
        "--state-dir",
        str(target.state),
        "--signing-key",
        str(key),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "backfill: uploaded 1, skipped 0, failed 0"
    verify = subprocess.run(
        ["gpg", "--verify", str(target.incoming / "keyed_1.0_source.changes")],
        env={**os.environ, "GNUPGHOME": str(keyring.home)},
        capture_output=True,
    )
    assert verify.returncode == 0

    key.write_text("")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"janitor-auto-upload: signing key {key}: the file is empty"


def test_the_platforms_command_lines_are_accepted() -> None:
    from janitor_auto_upload.cli import build_parser, with_command

    args = build_parser().parse_args(
        with_command(["--dput-host", "ftp-master", "--backfill", "--verbose", "--gcp-logging", "--distribution", "x"])
    )
    assert (args.command, args.dput_host, args.backfill, args.verbose, args.gcp_logging) == (
        "serve",
        "ftp-master",
        True,
        True,
        True,
    )
    assert build_parser().parse_args(with_command(["backfill", "--debug"])).debug is True


def test_gcp_logging_writes_one_json_object_per_line(capsys) -> None:  # type: ignore[no-untyped-def]
    import json
    import logging

    from janitor_common.logs import setup_logging

    setup_logging("INFO", cloud_json=True)
    logging.getLogger("janitor.test").warning("hello %s", "there")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["severity"] == "WARNING" and entry["message"] == "hello there" and entry["time"].endswith("Z")
    setup_logging("INFO")
