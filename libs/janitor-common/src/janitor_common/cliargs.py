"""What every service's command line shares: config, listen address, logging, settings loading.

Options are named like the settings they override, so ``settings_from_args``
can pass what was given and leave the rest to the environment and the
config file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TypeVar

from . import __version__
from .config import CommonSettings, ConfigError, load_settings
from .logs import setup_logging

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=CommonSettings)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_common_arguments(parser: argparse.ArgumentParser, *, default_port: int | None = None) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="janitor.conf in protobuf text format (default: $JANITOR_CONFIG)"
    )
    parser.add_argument(
        "--listen-address", metavar="ADDR", help="address to listen on (default: 127.0.0.1; 0.0.0.0 in containers)"
    )
    if default_port is not None:
        parser.add_argument("--port", type=int, metavar="PORT", help=f"port to listen on (default: {default_port})")
    add_logging_arguments(parser)


def add_logging_arguments(parser: argparse.ArgumentParser, *, default_level: str = "INFO") -> None:
    """``--log-level``, and the platform's own flags so its manifests start these programs unchanged."""
    levels = ", ".join(f"{level} (default)" if level == default_level else level for level in LEVELS)
    parser.add_argument("--log-level", metavar="LEVEL", help=levels)
    parser.add_argument("--debug", action="store_true", help="debug logging (the same as --log-level DEBUG)")
    parser.add_argument(
        "--gcp-logging",
        action="store_true",
        help="log one JSON object per line with 'severity', as Google Cloud's logging agent reads",
    )


def settings_from_args(cls: type[S], prog: str, args: argparse.Namespace) -> S:
    """Load settings or exit with one line naming the bad setting.

    Command-line options named like settings fields override them; options
    not given (None) leave the lower sources in charge.
    """
    values = {k: v for k, v in vars(args).items() if k in cls.model_fields}
    if getattr(args, "debug", False) or getattr(args, "verbose", False):
        values["log_level"] = "DEBUG"
    try:
        settings = load_settings(cls, **values)
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(settings.log_level, cloud_json=bool(getattr(args, "gcp_logging", False)))
    logger.info("%s %s starting", prog, __version__)
    return settings
