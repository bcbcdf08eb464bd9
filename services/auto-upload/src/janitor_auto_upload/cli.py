"""``janitor-auto-upload``: the upload service (``serve``)."""

from __future__ import annotations

import argparse
import sys

from janitor_common.server import Listener, serve
from janitor_common.service import add_common_arguments, settings_from_args

from .app import create_app
from .settings import AutoUploadSettings

PROG = "janitor-auto-upload"


def add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dput-host", metavar="HOST", help="dput host to upload to (required)")
    parser.add_argument("--dput-config", metavar="FILE", help="dput configuration file (dput -c FILE)")
    parser.add_argument("--debsign-keyid", metavar="KEY", help="key to sign with (default: debsign's choice)")
    parser.add_argument(
        "--distribution",
        metavar="D",
        action="append",
        help="only builds for this distribution (repeatable; default: all)",
    )
    parser.add_argument("--source-only", action="store_true", default=None, help="upload only *_source.changes")
    parser.add_argument("--state-dir", metavar="DIR", help="per-run work directories (kept across restarts)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sign (debsign) and upload (dput) successful Debian builds, each exactly once.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="listen for results, catch up from the database, upload")
    add_upload_arguments(p)
    add_common_arguments(p, default_port=9933)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(AutoUploadSettings, PROG, args)
    try:
        app = create_app(settings)
    except ValueError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return serve([Listener(app, settings.listen_address, settings.port, "auto-upload")], graceful_timeout=18)


if __name__ == "__main__":
    sys.exit(main())
