"""Connections that take too long to send a request's headers are closed.

uvicorn closes a kept-alive connection that stays idle, but not one that
sends a few bytes of a request and then trickles (or nothing) more: its
keep-alive timer is cancelled by the first byte, and nothing else times
the headers. 800 such connections were all still open after 20 s, each
holding a file descriptor. This protocol (uvicorn's httptools one, which
uvicorn picks when httptools is installed, as it is here) gives every
request ``HEADER_TIMEOUT`` seconds from the connection (or from the end of
the previous response's idle time) to its last header line; then the
connection is closed. A request's body is the application's business
(bzr-store times out stalled smart bodies itself).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

HEADER_TIMEOUT = 30.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout = HEADER_TIMEOUT
    _headers_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # from the first byte of a request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        if self._headers_deadline is None:
            self._headers_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None

    def _too_slow(self) -> None:
        self._headers_deadline = None
        if not self.transport.is_closing():
            logger.info("closing a connection that sent no complete request headers in %gs", self.header_timeout)
            self.transport.close()
