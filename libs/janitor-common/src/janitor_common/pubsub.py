"""The runner's ``result`` message and a subscriber that does not give up.

The subscriber is the services' fast path for finished runs: it resubscribes
with capped exponential backoff when Redis goes away, and one bad message
(malformed JSON, a handler that raises) is logged and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RESULT_CHANNEL = "result"


class ResultTarget(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    details: dict[str, Any] = {}

    @field_validator("details", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class ResultMessage(BaseModel):
    """Fields of the runner's ``result`` message that the services read; others are kept."""

    model_config = ConfigDict(extra="allow")

    log_id: str
    code: str
    codebase: str | None = None
    campaign: str | None = None
    revision: str | None = None
    main_branch_revision: str | None = None
    change_set: str | None = None
    target: ResultTarget = ResultTarget()

    @field_validator("target", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v

    @property
    def is_success(self) -> bool:
        return self.code == "success"

    @property
    def build_distribution(self) -> str | None:
        value = self.target.details.get("build_distribution")
        return value if isinstance(value, str) else None


async def publish_result(client: aioredis.Redis, message: ResultMessage | dict[str, Any]) -> int:
    """Publish a result; returns how many subscribers received it."""
    is_model = isinstance(message, ResultMessage)
    payload = message.model_dump_json(exclude_none=True) if is_model else json.dumps(message)  # type: ignore[union-attr]
    return int(await client.publish(RESULT_CHANNEL, payload))


def _describe(data: bytes | str) -> str:
    """An id for log lines: the run id when the message has one, else its start."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("log_id"), str):
            return f"log_id={parsed['log_id']}"
    except ValueError:
        pass
    snippet = text[:60].replace("\n", " ")
    return f"message {snippet!r}{'...' if len(text) > 60 else ''}"


Handler = Callable[[ResultMessage], Awaitable[None]]


class ResultSubscriber:
    """Subscribes to ``result`` and calls ``handler`` for each well-formed message."""

    def __init__(
        self,
        redis_url: str,
        handler: Handler,
        *,
        channel: str = RESULT_CHANNEL,
        min_backoff: float = 0.2,
        max_backoff: float = 30.0,
    ) -> None:
        self.redis_url = redis_url
        self.handler = handler
        self.channel = channel
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.subscribed = asyncio.Event()
        self.received = 0
        self.malformed = 0
        self.handler_errors = 0
        self.reconnects = 0

    async def handle_raw(self, data: bytes | str) -> None:
        self.received += 1
        try:
            message = ResultMessage.model_validate_json(data)
        except ValidationError as e:
            self.malformed += 1
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "message"
            logger.warning("skipping malformed result %s: %s: %s", _describe(data), where, first["msg"])
            return
        try:
            await self.handler(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.handler_errors += 1
            logger.exception("handling result log_id=%s failed; continuing with the next message", message.log_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set; reconnect on any connection loss."""
        backoff = self.min_backoff
        while not stop.is_set():
            client = aioredis.from_url(self.redis_url, socket_connect_timeout=5, health_check_interval=15)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                if self.reconnects:
                    logger.info("resubscribed to %s", self.channel)
                self.subscribed.set()
                backoff = self.min_backoff
                while not stop.is_set():
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        await self.handle_raw(msg["data"])
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                self.subscribed.clear()
                self.reconnects += 1
                logger.warning("lost Redis subscription (%s); retrying in %.1fs", e, backoff)
                try:
                    await asyncio.wait_for(stop.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(self.max_backoff, backoff * 2)
            finally:
                self.subscribed.clear()
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
                except (RedisConnectionError, OSError):
                    pass
