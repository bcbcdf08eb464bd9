"""What both of bzr-store's interfaces answer with: plain-text errors, blocking work off the loop, listings."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from typing import Literal

from fastapi import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from janitor_common.negotiate import negotiate
from janitor_common.pages import document

from .context import BzrContext

Interface = Literal["admin", "public"]
# Plain text first: what the platform's service answers a client with no preference.
LIST_TYPES = ["text/plain", "application/json", "text/html"]
# Anything but POST on a smart path gets 405 with "Allow: POST", as Breezy's own server does.
SMART_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]


def text_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


class Refused(Exception):
    """A request answered with ``status`` and a one-line plain-text reason (the platform's clients read it)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return text_error(exc.status, exc.message)


async def run_blocking(ctx: BzrContext, fn, *args):  # type: ignore[no-untyped-def]
    return await asyncio.get_running_loop().run_in_executor(ctx.executor, fn, *args)


async def repository_list(request: Request, ctx: BzrContext, base: str) -> Response:
    media_type = negotiate(request.headers.get("accept"), LIST_TYPES)
    names = await run_blocking(ctx, ctx.store.list_repositories)
    if media_type == "application/json":
        return JSONResponse(names)
    if media_type == "text/plain":
        return PlainTextResponse("".join(n + "\n" for n in names))
    items = "".join(f'<li><a href="{html.escape(base + n)}/">{html.escape(n)}</a></li>' for n in names)
    body = f'<h1>Codebases</h1><ul class="plain">{items}</ul>' if names else "<h1>Codebases</h1><p>None yet.</p>"
    if base == "/":  # the admin interface also lists every branch, with its tip
        body += '<p><a href="/repositories">Every branch, with its tip</a></p>'
    return HTMLResponse(document("Codebases", body, service="Bazaar store"))
