"""App factory for the differ service."""

from __future__ import annotations

from fastapi import FastAPI

from janitor_common.service import create_service_app

from .settings import DifferSettings


def create_app(settings: DifferSettings) -> FastAPI:
    return create_service_app("janitor differ", settings)
