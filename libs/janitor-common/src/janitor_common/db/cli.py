"""``janitor-db``: schema migrations and the accounts the services check.

Reads the same settings as the services (environment, ``--config``), so an
operator points it at the database exactly as they point the services.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from ..config import CommonSettings, ConfigError, load_settings
from ..invalidation import WORKER_CHANNEL
from ..logs import setup_logging
from ..names import valid_codebase
from . import migrate
from .engine import make_sync_engine
from .models import Codebase, Worker


def _password_from_stdin() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise SystemExit("error: passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def cmd_upgrade(settings: CommonSettings, args: argparse.Namespace) -> int:
    migrate.upgrade(settings.database_url, args.target)
    print(f"database at revision {migrate.current_revision(settings.database_url) or 'base'}")
    return 0


def cmd_downgrade(settings: CommonSettings, args: argparse.Namespace) -> int:
    migrate.downgrade(settings.database_url, args.target)
    print(f"database at revision {migrate.current_revision(settings.database_url) or 'base'}")
    return 0


def cmd_add_codebase(settings: CommonSettings, args: argparse.Namespace) -> int:
    if not valid_codebase(args.name):
        print(f"error: invalid codebase name {args.name!r} (lowercase letters, digits, + . -)", file=sys.stderr)
        return 2
    engine = make_sync_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            # The platform's schema keeps url and branch_url set together.
            conn.execute(insert(Codebase).values(name=args.name, url=args.url, branch_url=args.url))
    except IntegrityError:
        print(f"error: codebase {args.name} already exists", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"added codebase {args.name}")
    return 0


def announce_worker_change(conn: Connection, name: str) -> None:
    """Running services forget what they cached about the worker (delivered on commit)."""
    conn.execute(select(func.pg_notify(WORKER_CHANNEL, name)))


def cmd_add_worker(settings: CommonSettings, args: argparse.Namespace) -> int:
    password = _password_from_stdin()
    if not password:
        print("error: empty password (give it on standard input)", file=sys.stderr)
        return 2
    engine = make_sync_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            hashed = func.crypt(password, func.gen_salt("bf"))
            conn.execute(insert(Worker).values(name=args.name, password=hashed, link=args.link))
            announce_worker_change(conn, args.name)
    except IntegrityError:
        print(f"error: worker {args.name} already exists (remove-worker it first)", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"added worker {args.name}")
    return 0


def cmd_remove_worker(settings: CommonSettings, args: argparse.Namespace) -> int:
    engine = make_sync_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(delete(Worker).where(Worker.name == args.name))
            announce_worker_change(conn, args.name)
    except IntegrityError:
        print(f"error: worker {args.name} is referenced by runs and cannot be removed", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if result.rowcount == 0:
        print(f"error: no such worker: {args.name}", file=sys.stderr)
        return 1
    print(f"removed worker {args.name}")
    return 0


def cmd_list_workers(settings: CommonSettings, args: argparse.Namespace) -> int:
    engine = make_sync_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Worker.name, Worker.link).order_by(Worker.name)).all()
    finally:
        engine.dispose()
    for name, link in rows:
        print(f"{name}\t{link}" if link else name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="janitor-db",
        description="Manage the Janitor services' database schema and worker accounts. "
        "The database comes from JANITOR_DATABASE_URL or database_location in the config file.",
    )
    parser.add_argument("--config", help="janitor.conf (protobuf text format); default: $JANITOR_CONFIG")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("upgrade", help="apply migrations (to the newest by default)")
    p.add_argument("target", nargs="?", default="head", help="revision to upgrade to (default: head)")
    p.set_defaults(func=cmd_upgrade)

    p = sub.add_parser("downgrade", help="undo migrations (one step by default, 'base' for all)")
    p.add_argument("target", nargs="?", default="-1", help="revision to downgrade to (default: -1, one step)")
    p.set_defaults(func=cmd_downgrade)

    p = sub.add_parser("add-codebase", help="register a codebase (bzr-store hosts only known codebases)")
    p.add_argument("name")
    p.add_argument("--url", help="upstream repository URL (sets url and branch_url)")
    p.set_defaults(func=cmd_add_codebase)

    p = sub.add_parser("add-worker", help="add a worker account; the password is read from standard input")
    p.add_argument("name")
    p.add_argument("--link", help="URL describing the worker")
    p.set_defaults(func=cmd_add_worker)

    p = sub.add_parser("remove-worker", help="remove a worker account")
    p.add_argument("name")
    p.set_defaults(func=cmd_remove_worker)

    p = sub.add_parser("list-workers", help="list worker accounts")
    p.set_defaults(func=cmd_list_workers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging("WARNING")
    logging.getLogger("alembic").setLevel(logging.INFO)
    try:
        settings = load_settings(CommonSettings, config=args.config)
    except ConfigError as e:
        print(f"janitor-db: {e}", file=sys.stderr)
        return 2
    try:
        return int(args.func(settings, args))
    except OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        print(f"janitor-db: cannot use the database: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
