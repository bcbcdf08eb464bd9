import signal
import time
from pathlib import Path

import httpx

from janitor_dev.devstack import free_port
from janitor_dev.testing import ServiceProcess, asgi_client, console_script, service_env
from janitor_differ.app import create_app
from janitor_differ.settings import DifferSettings


async def test_app_health_ready_metrics(janitor_env: dict[str, str], tmp_path: Path) -> None:
    app = create_app(DifferSettings(cache_path=str(tmp_path / "cache")))
    async with asgi_client(app) as client:
        assert (await client.get("/health")).status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert "http_requests_total" in (await client.get("/metrics")).text


def test_console_script_serves_and_stops_on_sigterm(janitor_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    proc = ServiceProcess(
        [console_script("janitor-differ"), "--port", str(port), "--cache-path", str(tmp_path / "cache")],
        service_env(**janitor_env),
        f"http://127.0.0.1:{port}/health",
        tmp_path / "differ.log",
    )
    proc.start()
    assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
    started = time.monotonic()
    assert proc.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert "SIGTERM received" in proc.log()
