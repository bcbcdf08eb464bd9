"""The differ's HTTP interface: diffs of two runs, and asking for them ahead of time."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from janitor_common.errors import error_response
from janitor_common.negotiate import negotiate
from janitor_common.openapi import answers
from janitor_common.pages import document

from .deps import DifferDep, PrecacherDep
from .differ import DEBDIFF_TYPES, DIFFOSCOPE_TYPES, title
from .diffoscope import valid_css_url
from .precache import all_pairs

diffs = APIRouter()
precaching = APIRouter()


@diffs.get("/debdiff/{old_id}/{new_id}", responses=answers(DEBDIFF_TYPES, 404, 406, 500, 504))
async def get_debdiff(request: Request, differ: DifferDep, old_id: str, new_id: str) -> Response:
    # A run that cannot be diffed is a 404 whatever the client accepts: runs first.
    old, new = await differ.runs(old_id, new_id)
    await differ.ensure_available("debdiff", old, new)
    media_type = negotiate(request.headers.get("accept"), DEBDIFF_TYPES)
    # text/x-diff is the plain text rendering under its own name.
    plain = "text/plain" if media_type == "text/x-diff" else media_type
    body = await differ.debdiff(old, new, plain, "filter_boring" in request.query_params)
    if media_type == "text/html" and request.headers.get("sec-fetch-dest") == "document":
        # A browser opening the URL gets a whole page; others (the platform's
        # site embeds the answer in its own page) the fragment, as before.
        name = f"debdiff: {title(old, new)}"
        page = document(name, f"<h1>{html.escape(name)}</h1>\n{body.decode()}", service="differ", inline_style=True)
        body = page.encode()
    return Response(body, media_type=media_type)


@diffs.get("/diffoscope/{old_id}/{new_id}", responses=answers(DIFFOSCOPE_TYPES, 400, 404, 406, 500, 504))
async def get_diffoscope(request: Request, differ: DifferDep, old_id: str, new_id: str) -> Response:
    old, new = await differ.runs(old_id, new_id)
    await differ.ensure_available("diffoscope", old, new)
    media_type = negotiate(request.headers.get("accept"), DIFFOSCOPE_TYPES)
    css_url = request.query_params.get("css_url") or None
    if css_url is not None and not valid_css_url(css_url):
        return error_response(request, 400, "invalid css_url: an http(s) URL or a path is expected")
    body = await differ.diffoscope(old, new, media_type, "filter_boring" in request.query_params, css_url)
    return Response(body, media_type=media_type)


@precaching.post(
    "/precache/{old_id}/{new_id}", status_code=202, responses=answers(["application/json"], 404, ok_status=202)
)
async def precache(request: Request, differ: DifferDep, precacher: PrecacherDep, old_id: str, new_id: str) -> Response:
    # As the platform's differ: a run that cannot be diffed is a 404 now, not a job that fails later.
    # (One check: both tools need the same packages; listing them twice would repeat the same I/O.)
    old, new = await differ.runs(old_id, new_id)
    await differ.ensure_available("diffoscope", old, new)
    if not precacher.submit(old_id, new_id):
        return error_response(request, 503, "precache queue is full")
    return JSONResponse({"old_id": old_id, "new_id": new_id}, status_code=202)


@precaching.post("/precache-all", status_code=202, responses=answers(["application/json"], ok_status=202))
async def precache_all(differ: DifferDep, precacher: PrecacherDep) -> Response:
    pairs = await all_pairs(differ.engine)
    count = sum(precacher.submit(o, n) for o, n in pairs)
    return JSONResponse({"count": count}, status_code=202)  # queued, as the platform answers
