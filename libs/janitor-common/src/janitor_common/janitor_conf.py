"""The platform's ``janitor.conf``, read with protobuf's own text-format parser.

The schema is ``janitor_conf.proto``: the subset of the platform's messages
the services use, with the platform's names and numbers. Its compiled
descriptor (``janitor_conf.desc``, built by ``make proto``) is loaded at run
time rather than generated Python code, because a descriptor does not tie
us to the protoc version that made it. Fields the subset does not declare
are skipped, so a real configuration with everything else the platform
keeps there is accepted; a syntax error or a wrong type is reported with
its line and column.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message

CONFIG_MESSAGE = "janitor.Config"


class ConfSyntaxError(ValueError):
    """What is wrong, and where: ``line L column C: ...``."""


@cache
def _config_class() -> type[Message]:
    data = resources.files(__package__).joinpath("janitor_conf.desc").read_bytes()
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        pool.Add(file)
    config_class: type[Message] = message_factory.GetMessageClass(pool.FindMessageTypeByName(CONFIG_MESSAGE))
    return config_class


def parse(text: str) -> Any:
    """A ``janitor.Config`` message (typed ``Any``: its class is built at run time).

    A field given twice keeps its last value, as the platform's reader does.
    """
    message = _config_class()()
    try:
        text_format.Merge(text, message, allow_unknown_field=True)
    except text_format.ParseError as e:
        reason = re.sub(r"^\d+:\d+ : (?:'.*?': )?", "", str(e))
        raise ConfSyntaxError(f"line {e.GetLine()} column {e.GetColumn()}: {reason}") from None
    return message
