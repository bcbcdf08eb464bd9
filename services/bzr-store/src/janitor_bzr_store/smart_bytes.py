"""What the first bytes of a smart request or response say, read without running anything.

The public interface decides from a request's verb whether to ask for
credentials, and refuses a request whose verb cannot be found within
``REQUEST_HEAD_LIMIT`` before Breezy ever parses it; the metrics name a
response's outcome. All of it is byte inspection of Breezy's protocol
versions 1 to 3, kept apart from the threads that run requests (``smart``).
"""

from __future__ import annotations

import struct

from breezy.bzr.smart import protocol, request
from fastbencode import bdecode, bencode

V3_PREFIX: bytes = protocol.MESSAGE_VERSION_THREE  # b"bzr message 3 (bzr 1.6)\n"

V2_PREFIX = protocol.REQUEST_VERSION_TWO  # b"bzr request 2\n"

INCOMPLETE = b"error\x01incomplete request\n"

# Our answer when Breezy's protocol code itself fails on a malformed request
# (it does, for example, on a protocol-1 request whose verb is not ASCII).
BAD_REQUEST = b"error\x01Generic bzr smart protocol error: bad request\n"

# The longest protocol-1/2 request line, or protocol-3 header, we read a verb
# from; anything longer is refused before Breezy parses it.
REQUEST_HEAD_LIMIT = 64 * 1024


class Unknown:
    """Not enough bytes yet to tell the verb."""


def sniff_verb(data: bytes) -> bytes | type[Unknown] | None:
    """The verb of a smart request from its first bytes.

    Returns ``Unknown`` when more bytes are needed, ``None`` when the bytes
    are not a request we can parse (Breezy will answer with a protocol error).
    """
    if data.startswith(V3_PREFIX):
        rest = data[len(V3_PREFIX) :]
        if len(rest) < 4:
            return Unknown
        (hlen,) = struct.unpack("!L", rest[:4])
        if hlen > REQUEST_HEAD_LIMIT:
            return None
        rest = rest[4 + hlen :]
        if rest[:1] not in (b"", b"s"):
            return None
        if len(rest) < 5:
            return Unknown
        (alen,) = struct.unpack("!L", rest[1:5])
        if alen > REQUEST_HEAD_LIMIT:
            return None
        if len(rest) < 5 + alen:
            return Unknown
        try:
            args = bdecode(rest[5 : 5 + alen])
        except Exception:
            return None
        if isinstance(args, list | tuple) and args and isinstance(args[0], bytes):
            return bytes(args[0])
        return None
    if V3_PREFIX.startswith(data) or V2_PREFIX.startswith(data):
        return Unknown
    line_start = len(V2_PREFIX) if data.startswith(V2_PREFIX) else 0
    end = data.find(b"\n", line_start, line_start + REQUEST_HEAD_LIMIT + 1)
    if end == -1:
        return Unknown if len(data) - line_start <= REQUEST_HEAD_LIMIT else None
    verb = data[line_start:end].split(b"\x01", 1)[0]
    return verb or None


def request_args(head: bytes) -> list[bytes]:
    """The arguments (after the verb) of a protocol-3 request whose verb ``sniff_verb`` found; [] otherwise."""
    if not head.startswith(V3_PREFIX) or not isinstance(sniff_verb(head), bytes):
        return []
    rest = head[len(V3_PREFIX) :]
    (hlen,) = struct.unpack("!L", rest[:4])
    rest = rest[4 + hlen :]
    (alen,) = struct.unpack("!L", rest[1:5])
    args = bdecode(rest[5 : 5 + alen])
    return [bytes(a) for a in args[1:] if isinstance(a, bytes)]


def protocol_error(head: bytes) -> bytes:
    """Our answer to bytes that are no request we will run, in the protocol they claim."""
    if not head.startswith(V3_PREFIX):
        return BAD_REQUEST
    return error_response(head, b"error", b"bad request: no request within the first bytes")


def error_response(head: bytes, *args: bytes) -> bytes:
    """A smart error response to the request starting with ``head``, in its protocol (3, else 1)."""
    if not head.startswith(V3_PREFIX):
        return b"error\x01" + b"\x01".join(args) + b"\n"
    headers: bytes = bencode({})
    encoded: bytes = bencode(list(args))
    message: bytes = (
        V3_PREFIX
        + struct.pack("!L", len(headers))
        + headers
        + b"oE"
        + b"s"
        + struct.pack("!L", len(encoded))
        + encoded
        + b"e"
    )
    return message


def verb_info(verb: bytes) -> str:
    """Breezy's own class of a verb ('read', 'mutate', 'stream', 'idem', ...), '?' for an unknown one."""
    try:
        info: str = request.request_handlers.get_info(verb)
    except KeyError:
        return "?"
    return info


def verb_class(verb: bytes) -> str | None:
    """'read' or 'write' for a verb Breezy's server knows, None for any other."""
    try:
        info = request.request_handlers.get_info(verb)
    except KeyError:
        return None
    return "read" if info == "read" else "write"


def response_outcome(first: bytes) -> str:
    """'success' or 'error' from the start of a protocol-3 response, else 'other'."""
    if not first.startswith(V3_PREFIX):
        return "error" if first.startswith(b"error") else "other"
    rest = first[len(V3_PREFIX) :]
    if len(rest) < 4:
        return "other"
    (hlen,) = struct.unpack("!L", rest[:4])
    status = rest[4 + hlen : 4 + hlen + 2]
    if status == b"oS":
        return "success"
    if status == b"oE":
        return "error"
    return "other"


def v3_complete(data: bytes | bytearray) -> bool | None:
    """Whether ``data`` is exactly one whole protocol-3 message; None when it is not protocol 3.

    A message is the version line, a length-prefixed headers part, then
    parts: ``o`` + status byte, ``s`` + length-prefixed structure, ``b`` +
    length-prefixed body (one, or one per chunk of a stream), and ``e`` last.
    """
    if not data.startswith(V3_PREFIX):
        return None
    pos = len(V3_PREFIX)
    if len(data) < pos + 4:
        return False
    pos += 4 + struct.unpack_from("!L", data, pos)[0]
    while pos < len(data):
        kind = data[pos : pos + 1]
        pos += 1
        if kind == b"e":
            return bool(pos == len(data))
        if kind == b"o":
            pos += 1
        elif kind in (b"s", b"b"):
            if len(data) < pos + 4:
                return False
            pos += 4 + struct.unpack_from("!L", data, pos)[0]
        else:
            return False
    return False


class NotProtocolThree(ValueError):
    """A stream that does not hold protocol-3 messages (the only version stream transports speak here)."""


class MessageSplitter:
    """Cuts a stream of protocol-3 messages at their ends, as bytes arrive, holding none of a body.

    ``feed`` returns the input as pieces, each with whether it ends a
    message, so a request's bytes can go on to be run while its body is
    still arriving, and the next request starts exactly where one ended.
    The state is a few counters: a part's length is read, then that many
    bytes pass through.
    """

    _PREFIX, _HEADER_LENGTH, _SKIP, _KIND, _STATUS, _PART_LENGTH = range(6)

    def __init__(self) -> None:
        self._state = self._PREFIX
        self._need = len(V3_PREFIX)
        self._small = b""  # the bytes of a prefix or a length being read
        self._after_skip = self._KIND

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        pieces: list[tuple[bytes, bool]] = []
        start = pos = 0
        while pos < len(data):
            if self._state == self._SKIP:
                step = min(self._need, len(data) - pos)
                pos += step
                self._need -= step
                if self._need == 0:
                    self._state = self._after_skip
                continue
            take = data[pos : pos + self._need - len(self._small)] if self._state != self._KIND else data[pos : pos + 1]
            pos += len(take)
            if self._state == self._KIND:
                kind = take
                if kind == b"e":
                    pieces.append((data[start:pos], True))
                    start = pos
                    self._state, self._need = self._PREFIX, len(V3_PREFIX)
                elif kind == b"o":
                    self._state, self._need = self._SKIP, 1
                    self._after_skip = self._KIND
                elif kind in (b"s", b"b"):
                    self._state, self._need, self._small = self._PART_LENGTH, 4, b""
                else:
                    raise NotProtocolThree(f"unknown message part {kind!r}")
                continue
            self._small += take
            if len(self._small) < self._need:
                continue
            if self._state == self._PREFIX:
                if self._small != V3_PREFIX:
                    raise NotProtocolThree("not a protocol-3 message")
                self._state, self._need, self._small = self._HEADER_LENGTH, 4, b""
            else:  # a length: of the headers, or of a part
                (length,) = struct.unpack("!L", self._small)
                self._small = b""
                self._after_skip = self._KIND
                if length:
                    self._state, self._need = self._SKIP, length
                else:
                    self._state = self._KIND
        if start < len(data):
            pieces.append((data[start:], False))
        return pieces

    @property
    def between_messages(self) -> bool:
        return self._state == self._PREFIX and not self._small
