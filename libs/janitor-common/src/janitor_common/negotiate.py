"""``Accept`` header negotiation: q-values, wildcards, server preference on ties."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class NotAcceptable(Exception):
    def __init__(self, offered: Sequence[str]) -> None:
        super().__init__("not acceptable; available: " + ", ".join(offered))
        self.offered = list(offered)


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    def specificity(self) -> int:
        return (self.type != "*") + (self.subtype != "*")

    def matches(self, media_type: str) -> bool:
        t, _, s = media_type.partition("/")
        return self.type in ("*", t) and self.subtype in ("*", s)


def parse_accept(header: str) -> list[MediaRange]:
    ranges: list[MediaRange] = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        mt = fields[0].lower()
        if not mt:
            continue
        if mt == "*":
            mt = "*/*"  # sent by some old clients
        t, sep, s = mt.partition("/")
        if not sep or not t or not s:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append(MediaRange(t, s, q))
    return ranges


def quality(ranges: list[MediaRange], media_type: str) -> float:
    best: MediaRange | None = None
    for r in ranges:
        if r.matches(media_type) and (best is None or r.specificity() > best.specificity()):
            best = r
    return best.q if best is not None else 0.0


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """Pick the offered type the client likes best; the first offered wins ties.

    A missing or empty header means ``*/*``. Raises ``NotAcceptable``.
    """
    if not offered:
        raise ValueError("nothing offered")
    if accept is None or not accept.strip():
        return offered[0]
    ranges = parse_accept(accept)
    if not ranges:
        return offered[0]
    best_type, best_q = None, 0.0
    for media_type in offered:
        q = quality(ranges, media_type)
        if q > best_q:
            best_type, best_q = media_type, q
    if best_type is None:
        raise NotAcceptable(offered)
    return best_type


def prefers_json(accept: str | None) -> bool:
    """Errors are plain text unless the client prefers JSON over text."""
    try:
        return negotiate(accept, ["text/plain", "application/json"]) == "application/json"
    except NotAcceptable:
        return False
