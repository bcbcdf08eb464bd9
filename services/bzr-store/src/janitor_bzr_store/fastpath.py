"""Smart requests go straight to their endpoint, past FastAPI's routing.

A push or a fetch is a series of small smart requests, and each waits for
the last. Profiled under a stream of them, FastAPI's layers between the
server and the endpoint (exception handling, routing, the request/response
wrappers, each wrapping ``send``) took as much of the event loop as the
endpoint itself. This middleware sits outside them and hands
``<prefix>…/.bzr/smart`` requests to the endpoint directly; they keep the
access log and HTTP metrics (ObservabilityMiddleware, applied here) and the
500 on an unexpected error (Starlette's ServerErrorMiddleware, further out).
Everything else goes on to the app.
"""

from __future__ import annotations

from types import SimpleNamespace

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from janitor_common.errors import dependency_failure, dependency_response
from janitor_common.middleware import HttpMetrics, ObservabilityMiddleware

from .http import Interface
from .smart_http import smart_endpoint
from .store import SMART_SUFFIX


class SmartFastPath:
    def __init__(self, app: ASGIApp, *, prefix: str, interface: Interface, metrics: HttpMetrics) -> None:
        self.app = app
        self.prefix = prefix
        self.interface = interface
        # What the metrics call the route, as the app's own route is named.
        self.route = SimpleNamespace(path=prefix + "{path:path}")
        self.smart = ObservabilityMiddleware(self._smart, metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(self.prefix) and path.endswith(SMART_SUFFIX):
            await self.smart(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _smart(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route
        request = Request(scope, receive)
        try:
            response = await smart_endpoint(request, scope["path"][len(self.prefix) :], self.interface)
        except Exception as e:
            # Past FastAPI's handlers: the same 503 for PostgreSQL being away
            # (checking a codebase or uncached credentials), which Breezy
            # reports as a server problem rather than a 500.
            unavailable = dependency_failure(e)
            if unavailable is None:
                raise
            response = dependency_response(request, unavailable)
        await response(scope, receive, send)
