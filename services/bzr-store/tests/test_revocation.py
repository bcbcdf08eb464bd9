"""A removed worker is refused by every running bzr-store process within 2 s."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import pytest

from janitor_dev.devstack import RedisServer
from janitor_dev.testing import console_script, service_env

from .conftest import PASSWORD, WORKER, BzrStore, running_store, store_database
from .test_http import v3_request


@pytest.mark.timeout(120)
def test_remove_worker_takes_effect_within_2s_on_every_process(
    database_factory: Callable[[], str], redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    database_url = store_database(database_factory)
    token = base64.b64encode(f"{WORKER}:{PASSWORD}".encode()).decode()
    auth = {"Authorization": f"Basic {token}"}
    with ExitStack() as stack:
        stores = [
            stack.enter_context(running_store(database_url, redis_server.url, tmp_path_factory.mktemp(f"r{i}")))
            for i in range(2)
        ]

        def status(store: BzrStore) -> int:
            url = f"{store.public_url}/bzr/foo/.bzr/smart"
            return httpx.post(url, content=v3_request(b"hello"), headers=auth, timeout=10).status_code

        assert [status(s) for s in stores] == [200, 200]  # verified, and now cached by both
        time.sleep(0.5)  # both listeners are connected by now
        removed = subprocess.run(
            [console_script("janitor-db"), "remove-worker", WORKER],
            env=service_env(JANITOR_DATABASE_URL=database_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert removed.returncode == 0, removed.stderr
        started = time.monotonic()
        while [status(s) for s in stores] != [401, 401]:
            assert time.monotonic() - started < 2.0, "still accepted 2 s after remove-worker"
            time.sleep(0.05)
        assert all("cached credentials are dropped" in s.process.log() for s in stores)
