"""App factory for the auto-upload service's HTTP side (health, readiness, metrics)."""

from __future__ import annotations

from fastapi import FastAPI

from janitor_common.service import create_service_app

from .settings import AutoUploadSettings


def create_app(settings: AutoUploadSettings) -> FastAPI:
    return create_service_app("janitor auto-upload", settings)
