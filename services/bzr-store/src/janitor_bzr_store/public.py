"""The public interface: index page, repository list; under ``/bzr/`` the smart protocol and plain-HTTP reads."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from janitor_common.openapi import answers
from janitor_common.pages import document

from . import plain_http
from .context import Context
from .http import LIST_TYPES, SMART_METHODS, repository_list
from .smart_http import smart_endpoint
from .store import SMART_SUFFIX

public_router = APIRouter()


@public_router.get("/", responses=answers(["text/html"]))
async def index(request: Request) -> HTMLResponse:
    command = f"brz branch bzr+http://{request.url.netloc}/bzr/CODEBASE/CAMPAIGN/main"
    body = (
        "<h1>Janitor Bazaar store</h1>"
        '<p>The codebases and their branches: <a href="/bzr/">/bzr/</a>.</p>'
        f'<p>Get a branch with <code class="command">{html.escape(command)}</code>; anyone may read, '
        "workers push with their credentials in the URL. A client without the smart protocol may use "
        "<code>http://</code> in the same place: the branches' files are served as they are.</p>"
    )
    return HTMLResponse(document("Janitor Bazaar store", body, service="Bazaar store"))


@public_router.get("/bzr/", responses=answers(LIST_TYPES, 406))
async def list_repositories(request: Request, ctx: Context) -> Response:
    return await repository_list(request, ctx, "/bzr/")


async def smart(request: Request) -> Response:
    path: str = request.path_params["path"]
    if request.method in ("GET", "HEAD") and not ("/" + path).endswith(SMART_SUFFIX):
        return await plain_http.serve(request, path)
    return await smart_endpoint(request, path, "public")


public_router.add_route("/bzr/{path:path}", smart, methods=SMART_METHODS, include_in_schema=False)
