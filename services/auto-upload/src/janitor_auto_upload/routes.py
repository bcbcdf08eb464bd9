"""auto-upload's HTTP interface: what the ledger says about uploads."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from janitor_common.deps import Engine
from janitor_common.errors import error_response
from janitor_common.openapi import answers

from . import ledger

uploads_router = APIRouter()


@uploads_router.get("/uploads", responses=answers(["application/json"]))
async def uploads(request: Request, engine: Engine, state: str | None = None) -> Response:
    try:
        rows = await ledger.entries(engine, state)
    except ValueError as e:
        return error_response(request, 400, str(e))
    return JSONResponse(
        [
            {
                "run_id": r.run_id,
                "changes_filename": r.changes_filename,
                "state": r.state,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "output": r.output,
                "updated_at": r.updated_at.isoformat(),
                "uploaded_at": r.uploaded_at.isoformat() if r.uploaded_at else None,
            }
            for r in rows
        ]
    )
