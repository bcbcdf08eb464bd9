"""``janitor-db``: schema migrations and the accounts the services check.

Reads the same settings as the services (environment, ``--config``), so an
operator points it at the database exactly as they point the services.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError, OperationalError

from ..config import CommonSettings, ConfigError, load_settings
from ..invalidation import WORKER_CHANNEL
from ..logs import setup_logging
from ..names import valid_codebase
from ..sshkeys import parse_public_key
from . import migrate
from .engine import make_sync_engine
from .models import Codebase, Worker, WorkerGrant, WorkerKey


def _password_from_stdin() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise SystemExit("error: passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@contextlib.contextmanager
def transaction(settings: CommonSettings) -> Iterator[Connection]:
    """One transaction on the configured database; the engine is closed after it."""
    engine = make_sync_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


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
    try:
        with transaction(settings) as conn:
            # The platform's schema keeps url and branch_url set together.
            conn.execute(insert(Codebase).values(name=args.name, url=args.url, branch_url=args.url))
    except IntegrityError:
        print(f"error: codebase {args.name} already exists", file=sys.stderr)
        return 1
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
    try:
        with transaction(settings) as conn:
            hashed = func.crypt(password, func.gen_salt("bf"))
            conn.execute(insert(Worker).values(name=args.name, password=hashed, link=args.link))
            announce_worker_change(conn, args.name)
    except IntegrityError:
        print(f"error: worker {args.name} already exists (remove-worker it first)", file=sys.stderr)
        return 1
    print(f"added worker {args.name}")
    return 0


def cmd_remove_worker(settings: CommonSettings, args: argparse.Namespace) -> int:
    try:
        with transaction(settings) as conn:
            conn.execute(delete(WorkerGrant).where(WorkerGrant.worker == args.name))
            conn.execute(delete(WorkerKey).where(WorkerKey.worker == args.name))
            result = conn.execute(delete(Worker).where(Worker.name == args.name))
            announce_worker_change(conn, args.name)
    except IntegrityError:
        print(f"error: worker {args.name} is referenced by runs and cannot be removed", file=sys.stderr)
        return 1
    if result.rowcount == 0:
        print(f"error: no such worker: {args.name}", file=sys.stderr)
        return 1
    print(f"removed worker {args.name}")
    return 0


def cmd_list_workers(settings: CommonSettings, args: argparse.Namespace) -> int:
    with transaction(settings) as conn:
        rows = conn.execute(select(Worker.name, Worker.link).order_by(Worker.name)).all()
        grants = conn.execute(
            select(WorkerGrant.worker, WorkerGrant.codebase, WorkerGrant.campaign).order_by(
                WorkerGrant.worker, WorkerGrant.codebase, WorkerGrant.campaign
            )
        ).all()
        keys = conn.execute(select(WorkerKey.worker, WorkerKey.fingerprint).order_by(WorkerKey.created_at)).all()
    by_worker: dict[str, list[str]] = {}
    for worker, codebase, campaign in grants:
        by_worker.setdefault(worker, []).append(f"codebase={codebase} campaign={campaign}")
    keys_of: dict[str, list[str]] = {}
    for worker, fingerprint in keys:
        keys_of.setdefault(worker, []).append(fingerprint)
    for name, link in rows:
        where = "; ".join(by_worker.get(name, [])) or "anywhere"
        fields = [name, link or "-", f"writes: {where}"]
        if name in keys_of:
            fields.append("ssh keys: " + ", ".join(keys_of[name]))
        print("\t".join(fields))
    return 0


def _worker_exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(Worker.name).where(Worker.name == name)).first() is not None


def _check_pattern(kind: str, pattern: str) -> str | None:
    if not pattern or len(pattern) > 200 or "/" in pattern or not pattern.isprintable():
        return f"invalid {kind} pattern {pattern!r} (a glob such as 'a*' or 'lintian-*', no '/')"
    return None


def cmd_grant(settings: CommonSettings, args: argparse.Namespace) -> int:
    problem = _check_pattern("codebase", args.codebase) or _check_pattern("campaign", args.campaign)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with transaction(settings) as conn:
        if not _worker_exists(conn, args.worker):
            print(f"error: no such worker: {args.worker}", file=sys.stderr)
            return 1
        conn.execute(
            pg_insert(WorkerGrant)
            .values(worker=args.worker, codebase=args.codebase, campaign=args.campaign, created_at=func.now())
            .on_conflict_do_nothing()
        )
        announce_worker_change(conn, args.worker)
    print(f"{args.worker} may write to codebases {args.codebase!r}, campaigns {args.campaign!r}")
    return 0


def cmd_revoke(settings: CommonSettings, args: argparse.Namespace) -> int:
    with transaction(settings) as conn:
        if not _worker_exists(conn, args.worker):
            print(f"error: no such worker: {args.worker}", file=sys.stderr)
            return 1
        query = delete(WorkerGrant).where(WorkerGrant.worker == args.worker)
        if not args.all:
            query = query.where(WorkerGrant.codebase == args.codebase, WorkerGrant.campaign == args.campaign)
        removed = conn.execute(query).rowcount
        left = conn.execute(
            select(func.count()).select_from(WorkerGrant).where(WorkerGrant.worker == args.worker)
        ).scalar_one()
        announce_worker_change(conn, args.worker)
    if removed == 0:
        print(f"error: {args.worker} has no such grant (list-workers shows them)", file=sys.stderr)
        return 1
    print(f"revoked {removed} grant(s) of {args.worker}")
    if left == 0:
        # No grant left means no limit: say so, as it widens what the worker may do.
        print(f"note: {args.worker} has no grants left, so it may write anywhere again (remove-worker to stop it)")
    return 0


def cmd_add_worker_key(settings: CommonSettings, args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as e:
        print(f"error: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        print(f"error: no public key in {args.file}", file=sys.stderr)
        return 2
    try:
        keys = [parse_public_key(line) for line in lines]
    except ValueError as e:
        print(f"error: {args.file}: {e}", file=sys.stderr)
        return 2
    with transaction(settings) as conn:
        if not _worker_exists(conn, args.worker):
            print(f"error: no such worker: {args.worker}", file=sys.stderr)
            return 1
        for key in keys:
            conn.execute(
                pg_insert(WorkerKey)
                .values(worker=args.worker, fingerprint=key.fingerprint, public_key=key.line, created_at=func.now())
                .on_conflict_do_nothing()
            )
        announce_worker_change(conn, args.worker)
    for key in keys:
        print(f"{args.worker} may log in over SSH with {key.fingerprint} ({key.key_type})")
    return 0


def cmd_remove_worker_key(settings: CommonSettings, args: argparse.Namespace) -> int:
    with transaction(settings) as conn:
        removed = conn.execute(
            delete(WorkerKey).where(WorkerKey.worker == args.worker, WorkerKey.fingerprint == args.fingerprint)
        ).rowcount
        announce_worker_change(conn, args.worker)
    if not removed:
        print(f"error: {args.worker} has no key {args.fingerprint} (list-workers shows them)", file=sys.stderr)
        return 1
    print(f"removed {args.fingerprint} of {args.worker}")
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

    p = sub.add_parser(
        "grant",
        help="let a worker write to matching codebases and campaigns in bzr-store; "
        "a worker with no grants writes anywhere, one with grants only where one matches",
    )
    p.add_argument("worker")
    p.add_argument("--codebase", default="*", metavar="PATTERN", help="glob of codebase names (default: *)")
    p.add_argument("--campaign", default="*", metavar="PATTERN", help="glob of campaign names (default: *)")
    p.set_defaults(func=cmd_grant)

    p = sub.add_parser("revoke", help="remove a grant given with the same patterns (or --all)")
    p.add_argument("worker")
    p.add_argument("--codebase", default="*", metavar="PATTERN", help="the grant's codebase pattern (default: *)")
    p.add_argument("--campaign", default="*", metavar="PATTERN", help="the grant's campaign pattern (default: *)")
    p.add_argument("--all", action="store_true", help="remove every grant of the worker")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("add-worker-key", help="let a worker log in to bzr-store over SSH with a public key")
    p.add_argument("worker")
    p.add_argument("file", help="an OpenSSH public key file (id_ed25519.pub), or - for standard input")
    p.set_defaults(func=cmd_add_worker_key)

    p = sub.add_parser("remove-worker-key", help="remove a worker's SSH key, named by its fingerprint")
    p.add_argument("worker")
    p.add_argument("fingerprint", help="SHA256:... as list-workers and ssh-keygen -lf show it")
    p.set_defaults(func=cmd_remove_worker_key)

    p = sub.add_parser("list-workers", help="list worker accounts: name, link, where each may write, SSH keys")
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
