"""App factories for bzr-store's two interfaces: admin (internal) and public."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from janitor_common.service import create_service_app

from .settings import BzrStoreSettings


def create_admin_app(settings: BzrStoreSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    return create_service_app("janitor bzr-store (admin)", settings, registry=registry)


def create_public_app(settings: BzrStoreSettings) -> FastAPI:
    # The public side has its own registry: /metrics is served on the admin port.
    return create_service_app("janitor bzr-store", settings, docs=False)
