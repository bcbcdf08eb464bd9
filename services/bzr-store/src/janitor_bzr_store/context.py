"""Per-app resources of bzr-store, opened in the lifespan."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from janitor_common.deps import from_state
from janitor_common.invalidation import watch_worker_changes

from .access import AddressLimit, AuthBrake, CodebaseCache, CredentialCache
from .audit import Auditor
from .metrics import StoreMetrics
from .settings import BzrStoreSettings
from .ssh import start_ssh_server
from .store import Store
from .stream import start_bzr_server


@dataclass
class BzrContext:
    settings: BzrStoreSettings
    store: Store
    metrics: StoreMetrics
    executor: concurrent.futures.ThreadPoolExecutor
    campaigns: frozenset[str]
    engine: AsyncEngine  # the app's, for what runs outside a request (stream connections)
    auditor: Auditor
    brake: AuthBrake
    codebases: CodebaseCache = field(default_factory=CodebaseCache)
    credentials: CredentialCache = field(default_factory=CredentialCache)
    # Stream connections (bzr://) open per client address.
    stream_limits: AddressLimit = field(default_factory=lambda: AddressLimit(16))
    # Smart requests in progress on this interface (event loop only).
    smart_active: int = 0


def context_lifespan(settings: BzrStoreSettings, metrics: StoreMetrics, name: str) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI, state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        # Breezy work runs here, never on the event loop.
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.smart_threads, thread_name_prefix=f"bzr-{name}"
        )
        ctx = BzrContext(
            settings=settings,
            store=Store(settings.vcs_path),
            metrics=metrics,
            executor=executor,
            campaigns=frozenset(settings.campaign_names()),
            engine=state["engine"],
            auditor=Auditor(state["engine"], metrics),
            stream_limits=AddressLimit(settings.max_connections_per_address),
            brake=AuthBrake(
                limit=settings.auth_failure_limit,
                window=settings.auth_failure_window,
                block=settings.auth_block_seconds,
            ),
        )
        # Only the public interface checks credentials.
        watcher = (
            asyncio.create_task(
                watch_worker_changes(settings.database_url, ctx.credentials.forget, ctx.credentials.forget_all),
                name="worker-changes",
            )
            if name == "public"
            else None
        )
        bzr_server = None
        if name == "public" and settings.bzr_port is not None:
            bzr_server = await start_bzr_server(ctx, settings.bzr_address, settings.bzr_port)
        ssh_server = None
        if name == "public" and settings.ssh_port is not None:
            if settings.ssh_host_key is None:
                raise ValueError("ssh_port needs ssh_host_key: where the SSH host key is (made on first start)")
            ssh_server = await start_ssh_server(ctx, settings.ssh_address, settings.ssh_port, settings.ssh_host_key)
        try:
            yield {"bzr": ctx}
        finally:
            if bzr_server is not None:
                bzr_server.close()
            if ssh_server is not None:
                ssh_server.close()
            await ctx.auditor.drain()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            executor.shutdown(wait=False, cancel_futures=True)

    return lifespan


def get_context(request: Request) -> BzrContext:
    ctx: BzrContext = request.state.bzr
    return ctx


Context = Annotated[BzrContext, Depends(from_state("bzr"))]
