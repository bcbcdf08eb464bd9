"""``janitor-bzr-store``: serve the admin and public interfaces from one process."""

from __future__ import annotations

import argparse
import os
import sys

from janitor_common.cliargs import add_common_arguments, settings_from_args
from janitor_common.serving import Listener, serve

from .app import create_apps
from .settings import BzrStoreSettings
from .ssh import host_key

PROG = "janitor-bzr-store"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Host Bazaar repositories over HTTP (Breezy smart protocol). "
        "The admin interface (--port) is for the deployment only; the public one (--public-port) "
        "is read-only for anonymous clients and writable for workers.",
    )
    parser.add_argument(
        "--vcs-path", metavar="DIR", help="directory holding the repositories (required; or $JANITOR_VCS_PATH)"
    )
    add_common_arguments(parser, default_port=9929)
    parser.add_argument("--public-port", type=int, metavar="PORT", help="public interface port (default: 9930)")
    parser.add_argument(
        "--admin-listen-address",
        metavar="ADDR",
        help="the admin interface's address (default: --listen-address's, 127.0.0.1); it has no authentication",
    )
    parser.add_argument(
        "--public-listen-address",
        metavar="ADDR",
        help="the public interface's address (default: --listen-address's, 127.0.0.1)",
    )
    parser.add_argument(
        "--bzr-port",
        type=int,
        metavar="PORT",
        help="also serve bzr:// (anonymous, read-only) on this port (default: off; 4155 is bzr's own)",
    )
    parser.add_argument(
        "--bzr-listen-address", metavar="ADDR", help="bzr://'s address (default: the public interface's)"
    )
    parser.add_argument(
        "--ssh-port",
        type=int,
        metavar="PORT",
        help="also serve bzr+ssh on this port (default: off; 9931 by convention); needs --ssh-host-key",
    )
    parser.add_argument(
        "--ssh-host-key",
        metavar="FILE",
        help="the SSH host key, made on first start if missing (a mounted secret in a deployment)",
    )
    parser.add_argument(
        "--ssh-listen-address", metavar="ADDR", help="bzr+ssh's address (default: the public interface's)"
    )
    parser.add_argument(
        "--client-max-size",
        type=int,
        metavar="BYTES",
        help="largest request body accepted (default: 2147483648, 2 GiB)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(BzrStoreSettings, PROG, args)
    if not settings.vcs_path.is_dir():
        print(f"{PROG}: vcs path {settings.vcs_path} is not a directory", file=sys.stderr)
        return 2
    if not os.access(settings.vcs_path, os.W_OK | os.X_OK):
        print(f"{PROG}: vcs path {settings.vcs_path} is not writable", file=sys.stderr)
        return 2
    if settings.ssh_port is not None:
        if settings.ssh_host_key is None:
            print(
                f"{PROG}: --ssh-port needs --ssh-host-key (the host key's file; made on first start)", file=sys.stderr
            )
            return 2
        try:
            host_key(settings.ssh_host_key, settings.vcs_path)  # made now, or checked: a clear error before serving
        except ValueError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            return 2
    admin, public = create_apps(settings)
    return serve(
        [
            Listener(admin, settings.admin_address, settings.port, "admin"),
            Listener(public, settings.public_address, settings.public_port, "public"),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
