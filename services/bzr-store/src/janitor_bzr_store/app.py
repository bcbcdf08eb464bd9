"""App factories for bzr-store's two interfaces: admin (internal) and public."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from janitor_common.appfactory import create_service_app
from janitor_common.middleware import make_http_metrics

from . import patches
from .admin import admin_router
from .context import context_lifespan
from .fastpath import SmartFastPath
from .http import Refused, refused
from .manage import manage_router
from .metrics import make_metrics
from .pages import browse_router
from .public import public_router
from .reads import branch_reads_router
from .settings import BzrStoreSettings


def create_apps(settings: BzrStoreSettings, registry: CollectorRegistry | None = None) -> tuple[FastAPI, FastAPI]:
    """The admin and public apps; both report to one registry, served on the admin port."""
    patches.install()
    registry = registry if registry is not None else CollectorRegistry()
    http_metrics = make_http_metrics(registry)
    store_metrics = make_metrics(registry)
    admin = create_service_app(
        "janitor bzr-store (admin)",
        settings,
        registry=registry,
        http_metrics=http_metrics,
        extra_lifespan=context_lifespan(settings, store_metrics, "admin"),
        uses_redis=False,
        index_page=False,
    )
    admin.include_router(browse_router("/", "admin"))
    admin.include_router(manage_router)
    admin.include_router(branch_reads_router("/{campaign}/{codebase}/{role}"))
    admin.include_router(admin_router)
    admin.add_exception_handler(Refused, refused)
    admin.add_middleware(SmartFastPath, prefix="/", interface="admin", metrics=http_metrics)
    public = create_service_app(
        "janitor bzr-store",
        settings,
        registry=registry,
        http_metrics=http_metrics,
        extra_lifespan=context_lifespan(settings, store_metrics, "public"),
        docs=False,
        metrics_route=False,
        uses_redis=False,
        index_page=False,
    )
    public.include_router(browse_router("/bzr/", "public"))
    public.include_router(branch_reads_router("/bzr/{codebase}/{campaign}/{role}"))
    public.include_router(public_router)
    public.add_exception_handler(Refused, refused)
    public.add_middleware(SmartFastPath, prefix="/bzr/", interface="public", metrics=http_metrics)
    return admin, public


def create_admin_app(settings: BzrStoreSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    return create_apps(settings, registry)[0]


def create_public_app(settings: BzrStoreSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    return create_apps(settings, registry)[1]
