"""How the differ's own failures are answered, one handler per kind.

A run that cannot be diffed is a 404 whatever the client accepts (with the
platform's ``unavailable_run_id`` header); a tool that runs out of time is
a 504, out of memory a 503 (another try may fit), and a broken package or a
tool's own failure a 500 that says which. The messages name the tool, which
is the first part of the path (``/debdiff/...``, ``/diffoscope/...``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from janitor_common.errors import error_response

from .debdiff import DebdiffError
from .debs import CorruptPackage
from .diffoscope import DiffoscopeError
from .limits import ToolOutOfMemory, ToolTimeout
from .runs import RunUnavailable


def _tool(request: Request) -> str:
    return request.url.path.strip("/").split("/", 1)[0] or "differ"


async def run_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RunUnavailable)
    return error_response(
        request, 404, exc.reason, headers={"unavailable_run_id": exc.run_id}, extra={"run_id": exc.run_id}
    )


async def tool_timeout(request: Request, exc: Exception) -> Response:
    return error_response(request, 504, f"{_tool(request)} timed out", details=str(exc))


async def tool_out_of_memory(request: Request, exc: Exception) -> Response:
    return error_response(request, 503, f"{_tool(request)} used too much memory", details=str(exc))


async def corrupt_package(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CorruptPackage)
    return error_response(request, 500, str(exc), extra={"run_id": exc.run_id})


async def tool_failed(request: Request, exc: Exception) -> Response:
    return error_response(request, 500, f"{_tool(request)} failed: {exc}", details=str(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RunUnavailable, run_unavailable)
    app.add_exception_handler(ToolTimeout, tool_timeout)
    app.add_exception_handler(ToolOutOfMemory, tool_out_of_memory)
    app.add_exception_handler(CorruptPackage, corrupt_package)
    app.add_exception_handler(DebdiffError, tool_failed)
    app.add_exception_handler(DiffoscopeError, tool_failed)
