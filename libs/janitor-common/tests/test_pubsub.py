import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from janitor_common.pubsub import ResultMessage, ResultSubscriber, publish_result
from janitor_dev.devstack import RedisServer, free_port


def test_message_model_tolerates_extras_and_empty_target() -> None:
    msg = ResultMessage.model_validate_json(
        json.dumps({"log_id": "r1", "code": "success", "target": {}, "duration": 12, "tags": [["a", "b"]]})
    )
    assert msg.target.name is None and msg.target.details == {}
    assert msg.is_success and msg.build_distribution is None
    assert msg.model_extra == {"duration": 12, "tags": [["a", "b"]]}
    msg = ResultMessage.model_validate(
        {
            "log_id": "r2",
            "code": "build-failed",
            "target": {"name": "debian", "details": {"build_distribution": "lintian-fixes"}},
        }
    )
    assert msg.build_distribution == "lintian-fixes" and not msg.is_success
    assert ResultMessage.model_validate({"log_id": "r3", "code": "success", "target": None}).target.name is None


class Collector:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.event = asyncio.Event()

    async def __call__(self, msg: ResultMessage) -> None:
        if msg.log_id == "explode":
            raise RuntimeError("handler failure")
        self.seen.append(msg.log_id)
        self.event.set()

    async def wait_for(self, log_id: str, timeout: float = 20) -> None:
        async def until() -> None:
            while log_id not in self.seen:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(until(), timeout)


@pytest.fixture
async def private_redis() -> AsyncIterator[RedisServer]:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="janitor-test-redis-")), free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


async def test_keeps_receiving_after_bad_messages(redis_url: str) -> None:
    collector = Collector()
    sub = ResultSubscriber(redis_url, collector)
    stop = asyncio.Event()
    task = asyncio.create_task(sub.run(stop))
    client = aioredis.from_url(redis_url)
    try:
        await asyncio.wait_for(sub.subscribed.wait(), 10)
        await client.publish("result", b"{not json")
        await client.publish("result", json.dumps({"code": "success"}))  # no log_id
        await client.publish("result", b"\xff\xfe")
        await publish_result(client, {"log_id": "explode", "code": "success"})
        await publish_result(client, ResultMessage(log_id="good", code="success"))
        await collector.wait_for("good")
        assert collector.seen == ["good"]
        assert sub.malformed == 3 and sub.handler_errors == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()


async def test_resubscribes_after_redis_is_killed_and_restarted(private_redis: RedisServer) -> None:
    collector = Collector()
    sub = ResultSubscriber(private_redis.url, collector, min_backoff=0.05, max_backoff=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(sub.run(stop))
    try:
        await asyncio.wait_for(sub.subscribed.wait(), 10)
        client = aioredis.from_url(private_redis.url)
        await publish_result(client, {"log_id": "before", "code": "success"})
        await collector.wait_for("before")
        await client.aclose()

        private_redis.kill()
        await asyncio.sleep(1.0)  # several reconnect attempts fail meanwhile
        assert not sub.subscribed.is_set()
        private_redis.start()

        await asyncio.wait_for(sub.subscribed.wait(), 20)
        client = aioredis.from_url(private_redis.url)
        await publish_result(client, {"log_id": "after", "code": "success"})
        await collector.wait_for("after")
        await client.aclose()
        assert sub.reconnects >= 1
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
