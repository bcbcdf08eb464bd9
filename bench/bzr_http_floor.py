"""The least an HTTP smart server can do for Breezy's client: the floor of bench/bzr_store_ab.py.

Breezy's protocol on a threaded HTTP/1.1 server with kept-alive connections:
each POST's body is read whole, run through Breezy's protocol, and answered
with a Content-Length. A write verb without credentials gets the same 401
challenge bzr-store gives (credentials are then accepted unchecked), so the
client makes the same requests. No database, no name checks, no jail, no
streaming, no metrics: what is left of a push's cost against this server,
compared with `brz serve`, is what Breezy's HTTP client itself costs.

Usage: python bench/bzr_http_floor.py ROOT PORT
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import breezy
import breezy.bzr
from breezy import urlutils
from breezy.bzr.smart import medium
from breezy.transport import get_transport_from_url

from janitor_bzr_store.smart_bytes import sniff_verb, verb_class

SUFFIX = "/.bzr/smart"


def make_handler(root: str) -> type[BaseHTTPRequestHandler]:
    root_url = urlutils.local_path_to_url(root)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            verb = sniff_verb(body)
            if isinstance(verb, bytes) and verb_class(verb) == "write" and "Authorization" not in self.headers:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="janitor"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = self.path.removeprefix("/bzr/")
            path = path[: -len(SUFFIX)] if path.endswith(SUFFIX) else path
            jail_root = get_transport_from_url(root_url)
            transport = jail_root.clone(path)
            out: list[bytes] = []
            factory, unused = medium._get_protocol_factory_for_bytes(body)
            protocol = factory(transport, out.append, None, jail_root)
            protocol.accept_bytes(unused)
            data = b"".join(out)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    with breezy.initialize():
        server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(root))
        server.daemon_threads = True
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
