import signal
import subprocess
import time
from pathlib import Path

import httpx

from janitor_bzr_store.app import create_admin_app
from janitor_bzr_store.settings import BzrStoreSettings
from janitor_dev.devstack import free_port
from janitor_dev.testing import ServiceProcess, asgi_client, console_script, service_env


async def test_admin_app_health_ready_metrics(janitor_env: dict[str, str], tmp_path: Path) -> None:
    app = create_admin_app(BzrStoreSettings(vcs_path=tmp_path))
    async with asgi_client(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 200
        assert "http_requests_total" in (await client.get("/metrics")).text


def started_store(janitor_env: dict[str, str], tmp_path: Path, *options: str) -> tuple[ServiceProcess, int, int]:
    """``janitor-bzr-store`` on free ports (admin, public), started; its /health on 127.0.0.1 answers."""
    admin, public = free_port(), free_port()
    argv = [console_script("janitor-bzr-store"), "--vcs-path", str(tmp_path), "--port", str(admin)]
    proc = ServiceProcess(
        [*argv, "--public-port", str(public), *options],
        service_env(**janitor_env),
        f"http://127.0.0.1:{admin}/health",
        tmp_path / "bzr-store.log",
    )
    proc.start()
    return proc, admin, public


def test_console_script_serves_both_ports_and_stops(janitor_env: dict[str, str], tmp_path: Path) -> None:
    proc, _admin, public = started_store(janitor_env, tmp_path)
    assert httpx.get(f"http://127.0.0.1:{public}/health").status_code == 200
    started = time.monotonic()
    assert proc.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5


def test_missing_vcs_path_is_one_line(janitor_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [console_script("janitor-bzr-store"), "--vcs-path", str(tmp_path / "nope")],
        env=service_env(**janitor_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"janitor-bzr-store: vcs path {tmp_path / 'nope'} is not a directory"


def test_each_interface_listens_on_its_own_address(janitor_env: dict[str, str], tmp_path: Path) -> None:
    """The public interface can be opened wider than the admin one, which stays on loopback by default."""
    proc, admin, public = started_store(janitor_env, tmp_path, "--public-listen-address", "127.0.0.2")
    try:
        assert httpx.get(f"http://127.0.0.2:{public}/health").status_code == 200
        for refused in (f"http://127.0.0.1:{public}/health", f"http://127.0.0.2:{admin}/health"):
            try:
                httpx.get(refused, timeout=5)
            except httpx.ConnectError:
                continue
            raise AssertionError(f"{refused} answered")
    finally:
        proc.stop()


def test_listen_addresses_default_to_the_common_one() -> None:
    both = BzrStoreSettings(database_url="postgresql://u@h/db", vcs_path=Path("/x"), listen_address="10.0.0.1")
    assert (both.admin_address, both.public_address) == ("10.0.0.1", "10.0.0.1")
    split = BzrStoreSettings(database_url="postgresql://u@h/db", vcs_path=Path("/x"), public_listen_address="0.0.0.0")
    assert (split.admin_address, split.public_address) == ("127.0.0.1", "0.0.0.0")
