"""``janitor-auto-upload``: the upload service (``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from prometheus_client import CollectorRegistry

from janitor_common.cliargs import add_common_arguments, add_logging_arguments, settings_from_args
from janitor_common.serving import Listener, serve

from .app import create_app, required_upload_settings
from .settings import AutoUploadSettings
from .signing import import_signing_key

PROG = "janitor-auto-upload"


def add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dput-host", metavar="HOST", help="dput host to upload to (required)")
    parser.add_argument("--dput-config", metavar="FILE", help="dput configuration file (dput -c FILE)")
    parser.add_argument("--debsign-keyid", metavar="KEY", help="key to sign with (default: debsign's choice)")
    parser.add_argument(
        "--signing-key",
        metavar="FILE",
        help="secret key (armoured) to import into GNUPGHOME at start; signs unless --debsign-keyid says otherwise",
    )
    parser.add_argument(
        "--distribution",
        metavar="D",
        action="append",
        help="only builds for this distribution (repeatable; default: all)",
    )
    parser.add_argument("--source-only", action="store_true", default=None, help="upload only *_source.changes")
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="absolute path of the per-run work directories, shared by replicas and kept across restarts"
        " (default: /var/lib/janitor-auto-upload)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sign (debsign) and upload (dput) successful Debian builds, each exactly once.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="listen for results, catch up from the database, upload (the default)")
    add_upload_arguments(p)
    add_common_arguments(p, default_port=9933)
    p.add_argument("--backfill", action="store_true", help="run a backfill (see below) first, then serve")
    p.add_argument("--verbose", action="store_true", help="debug logging (the same as --log-level DEBUG)")
    p = sub.add_parser("backfill", help="upload the newest build of each (distribution, source) not yet uploaded")
    add_upload_arguments(p)
    p.add_argument("--config", metavar="FILE", help="janitor.conf in protobuf text format (default: $JANITOR_CONFIG)")
    add_logging_arguments(p, default_level="WARNING")
    p = sub.add_parser("force", help="upload a run's .changes again, whatever the ledger says")
    p.add_argument("run_id")
    p.add_argument("changes_filename", nargs="?", help="one .changes file (default: all of the run's)")
    p.add_argument("--config", metavar="FILE", help="janitor.conf in protobuf text format (default: $JANITOR_CONFIG)")
    add_logging_arguments(p, default_level="WARNING")
    return parser


async def run_force(settings: AutoUploadSettings, run_id: str, changes_filename: str | None) -> int:
    from janitor_common.db.engine import make_async_engine

    from . import ledger

    engine = make_async_engine(settings.database_url)
    try:
        count = await ledger.force(engine, run_id, changes_filename)
    finally:
        await engine.dispose()
    if count == 0:
        print(
            f"{PROG}: nothing in the ledger for {run_id}{'/' + changes_filename if changes_filename else ''}",
            file=sys.stderr,
        )
        return 1
    print(f"queued {count} upload(s) of {run_id} again")
    return 0


async def run_backfill(settings: AutoUploadSettings, artifact_location: str) -> int:
    from janitor_common.artifacts import get_artifact_manager
    from janitor_common.db.engine import make_async_engine

    from .backfill import backfill
    from .metrics import make_metrics
    from .pipeline import worker_name
    from .uploader import Uploader

    engine = make_async_engine(settings.database_url)
    try:
        artifacts = get_artifact_manager(artifact_location)
        uploader = Uploader(settings, engine, artifacts, make_metrics(CollectorRegistry()), worker_name())
        summary = await backfill(uploader, engine, artifacts)
    finally:
        await engine.dispose()
    print(f"backfill: {summary.line()}")
    for failure in summary.failures:
        print(f"  failed: {failure}")
    return 1 if summary.failed else 0


def with_command(argv: list[str]) -> list[str]:
    """``serve`` when options come first: the platform's own auto-upload takes them with no command."""
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return ["serve", *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(with_command(sys.argv[1:] if argv is None else argv))
    if args.command in ("backfill", "force") and args.log_level is None:
        args.log_level = "WARNING"  # the progress bar is the output
    settings = settings_from_args(AutoUploadSettings, PROG, args)
    if args.command == "force":
        return asyncio.run(run_force(settings, args.run_id, args.changes_filename))
    try:
        if settings.signing_key is not None:
            fingerprint = import_signing_key(settings.signing_key)
            if settings.debsign_keyid is None:
                settings = settings.model_copy(update={"debsign_keyid": fingerprint})
        if args.command == "backfill":
            return asyncio.run(run_backfill(settings, required_upload_settings(settings)))
        if args.backfill:
            asyncio.run(run_backfill(settings, required_upload_settings(settings)))
        app = create_app(settings)
    except ValueError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return serve([Listener(app, settings.listen_address, settings.port, "auto-upload")], graceful_timeout=18)


if __name__ == "__main__":
    sys.exit(main())
