import signal
import time
from pathlib import Path

import httpx

from janitor_auto_upload.app import create_app
from janitor_auto_upload.settings import AutoUploadSettings
from janitor_common.devstack import free_port
from janitor_common.testing import ServiceProcess, asgi_client, console_script, service_env


async def test_app_health_ready_metrics(janitor_env: dict[str, str]) -> None:
    app = create_app(AutoUploadSettings(dput_host="local"), run_workers=False)  # type: ignore[call-arg]
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
