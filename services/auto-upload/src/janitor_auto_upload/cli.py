"""``janitor-auto-upload``: the upload service (``serve``)."""

from __future__ import annotations

import argparse
import sys

from janitor_common.server import Listener, serve
from janitor_common.service import add_common_arguments, settings_from_args

from .app import create_app
from .settings import AutoUploadSettings

PROG = "janitor-auto-upload"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Sign and upload successful Debian builds.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="run the service (health, readiness and metrics on --port)")
    add_common_arguments(p, default_port=9933)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(AutoUploadSettings, PROG, args)
    return serve([Listener(create_app(settings), settings.listen_address, settings.port, "auto-upload")])


if __name__ == "__main__":
    sys.exit(main())
