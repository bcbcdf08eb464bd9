"""Breezy's own WSGI smart server under a threaded wsgiref server (baseline (c) of bench/bzr_store.py).

Usage: python bench/bzr_wsgi_server.py ROOT PORT
"""

from __future__ import annotations

import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import breezy
import breezy.bzr
from breezy.transport.http.wsgi import make_app


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    with breezy.initialize():
        app = make_app(root, "/", path_var="PATH_INFO", readonly=False, load_plugins=False, enable_logging=False)
        server = make_server("127.0.0.1", port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler)
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
