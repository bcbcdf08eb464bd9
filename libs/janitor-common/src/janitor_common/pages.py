"""The HTML the services answer with themselves: one look, one stylesheet, no fetches elsewhere.

Every page is a whole document that links ``/static/janitor.css``, served
by the same service. ``/docs`` (Swagger UI) and ``/redoc`` load their
scripts from the service too (the assets come from the fastapi-offline
package), so the pages work with no internet. A page served under another
site's path (the differ's HTML, which the platform's site fetches) carries
the stylesheet inline instead, so it fetches nothing.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, Response

STYLESHEET_URL = "/static/janitor.css"
DOCS_ASSETS = "/static/docs"
# The files fastapi-offline ships, and the only ones served from it.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_DOCS_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


@cache
def stylesheet() -> str:
    return resources.files(__package__).joinpath("static", "janitor.css").read_text()


def document(title: str, body: str, *, service: str, inline_style: bool = False) -> str:
    """A whole page: ``body`` (HTML, already escaped) under the common header."""
    style = (
        f"<style>\n{stylesheet()}</style>"
        if inline_style
        else f'<link rel="stylesheet" href="{STYLESHEET_URL}" type="text/css">'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="icon" href="/favicon.ico">{style}</head>\n'
        f'<body><header class="site"><a href="/">Janitor</a><span class="service">{html.escape(service)}</span>'
        f"</header>\n<main>\n{body}\n</main></body></html>\n"
    )


@cache
def _asset(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name == "redoc.standalone.js":
        # ReDoc's footer logo is fetched from its CDN; the service's own icon does instead.
        data = data.replace(REDOC_LOGO, (DOCS_ASSETS + "/favicon.png").encode())
    return data


def install_page_routes(app: FastAPI, *, docs: bool, index: bool) -> None:
    """The stylesheet and icon; with ``docs``, Swagger UI at ``/docs`` and ReDoc at ``/redoc`` with local
    assets; with ``index``, a page at ``/`` that lists them (for services with no page of their own there)."""

    assets = Path(str(resources.files("fastapi_offline").joinpath("static")))

    @app.get(STYLESHEET_URL, include_in_schema=False)
    async def janitor_css() -> Response:
        return Response(stylesheet(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    # Browsers ask every origin for one; diffoscope's pages name none.
    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return FileResponse(assets / "favicon.png", media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    title = app.title
    if index:

        @app.get("/", include_in_schema=False)
        async def index_page() -> HTMLResponse:
            links = [("/docs", "API (Swagger UI)"), ("/redoc", "API (ReDoc)"), ("/openapi.json", "OpenAPI document")]
            links = links if docs else []
            links += [("/health", "health"), ("/ready", "readiness"), ("/metrics", "metrics (Prometheus)")]
            items = "".join(f'<li><a href="{href}">{label}</a> <code>{href}</code></li>' for href, label in links)
            body = f'<h1>{html.escape(title)}</h1><ul class="plain">{items}</ul>'
            return HTMLResponse(document(title, body, service=title))

    if not docs:
        return

    @app.get(DOCS_ASSETS + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in _DOCS_FILES:
            return Response("not found\n", status_code=404, media_type="text/plain")
        headers = {"Cache-Control": "max-age=86400"}
        return Response(_asset(assets / name), media_type=_DOCS_FILES[name], headers=headers)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            # No badge fetched from the online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title}: API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
