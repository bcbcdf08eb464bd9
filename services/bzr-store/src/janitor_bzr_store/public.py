"""The public interface: the index page, the repository list, and the smart protocol under ``/bzr/``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from janitor_common.openapi import answers

from .context import Context
from .http import LIST_TYPES, SMART_METHODS, repository_list
from .smart_http import smart_endpoint

public_router = APIRouter()


@public_router.get("/", responses=answers(["text/html"]))
async def index() -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><html><head><title>Janitor Bazaar store</title></head><body>"
        "<h1>Janitor Bazaar store</h1>"
        '<p>Repositories: <a href="/bzr/">/bzr/</a>. Branch with '
        "<code>brz branch bzr+http://HOST/bzr/CODEBASE/CAMPAIGN/main</code>.</p></body></html>"
    )


@public_router.get("/bzr/", responses=answers(LIST_TYPES, 406))
async def list_repositories(request: Request, ctx: Context) -> Response:
    return await repository_list(request, ctx, "/bzr/")


async def smart(request: Request) -> Response:
    return await smart_endpoint(request, request.path_params["path"], "public")


public_router.add_route("/bzr/{path:path}", smart, methods=SMART_METHODS, include_in_schema=False)
