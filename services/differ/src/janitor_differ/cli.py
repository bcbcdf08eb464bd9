"""``janitor-differ``: serve the diff API."""

from __future__ import annotations

import argparse
import sys

from janitor_common.cliargs import add_common_arguments, settings_from_args
from janitor_common.serving import Listener, serve

from .app import create_app
from .settings import DifferSettings

PROG = "janitor-differ"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Compare the binary packages of two runs with debdiff and diffoscope."
    )
    add_common_arguments(parser, default_port=9920)
    parser.add_argument(
        "--cache-path",
        metavar="DIR",
        help="where results are cached: a directory, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"
        " (default: differ-cache in the current directory)",
    )
    parser.add_argument(
        "--task-memory-limit", type=int, metavar="MB", help="address-space limit per diff in MB (default: 1500)"
    )
    parser.add_argument("--task-timeout", type=float, metavar="S", help="time limit per diff in seconds (default: 60)")
    parser.add_argument("--diffoscope-command", metavar="CMD", help="diffoscope executable (default: diffoscope)")
    parser.add_argument(
        "--platform-cache-layout",
        action="store_true",
        default=None,
        help="also write raw results where the platform's differ keeps them (CACHE/debdiff/OLD_NEW, "
        "CACHE/diffoscope/OLD_NEW.json); they are read from there in any case",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(DifferSettings, PROG, args)
    try:
        app = create_app(settings)
    except ValueError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return serve([Listener(app, settings.listen_address, settings.port, "differ")])


if __name__ == "__main__":
    sys.exit(main())
