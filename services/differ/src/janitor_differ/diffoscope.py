"""diffoscope: one comparison per package pair, combined into one JSON document.

Pairing by package name ourselves (rather than handing diffoscope two
directories) keeps packages whose versions differ from being matched
fuzzily or left out. Identical inputs give no output at all unless asked
(``--output-empty``); exit 1 means "differences", 2 an error of its own.
Rendering re-reads the stored JSON with diffoscope's own presenters in a
subprocess: its Python API keeps global state.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shlex
import tempfile
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from .debs import Pairing
from .limits import Limits, ToolResult, run_tool
from .runs import RunInfo

BORING_FIELDS = {"Date", "Distribution", "Version"}
FORMATS = {"text/html": "--html", "text/markdown": "--markdown", "text/plain": "--text"}


class DiffoscopeError(Exception):
    pass


def _reduce_paths(detail: dict[str, Any]) -> dict[str, Any]:
    for key in ("source1", "source2"):
        value = detail.get(key)
        if isinstance(value, str) and value.startswith("/"):
            detail[key] = os.path.basename(value)
    return detail


def _failure(result: ToolResult) -> str:
    lines = [line for line in result.stderr_text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"diffoscope exited with {result.returncode}"


async def compare_pair(command: list[str], old: Path, new: Path, limits: Limits) -> dict[str, Any] | None:
    argv = [*command, "--json=-", "--exclude-directory-metadata=yes", str(old), str(new)]
    result = await run_tool(argv, limits)
    if result.returncode == 0:
        return None  # identical
    if result.returncode != 1:
        raise DiffoscopeError(_failure(result))
    try:
        detail = json.loads(result.stdout)
    except ValueError:
        raise DiffoscopeError("diffoscope produced no valid JSON") from None
    detail.pop("diffoscope-json-version", None)
    return _reduce_paths(detail)


async def run_diffoscope(
    command_line: str, old_run: RunInfo, new_run: RunInfo, pairing: Pairing, limits: Limits
) -> dict[str, Any]:
    command = shlex.split(command_line)
    details: list[dict[str, Any]] = []
    for old, new in pairing.pairs:
        detail = await compare_pair(command, old.path, new.path, limits)
        if detail is not None:
            details.append(detail)
    for deb in pairing.removed:
        details.append(
            {
                "source1": deb.path.name,
                "source2": "/dev/null",
                "comments": ["Package only in the old run"],
                "unified_diff": None,
            }
        )
    for deb in pairing.added:
        details.append(
            {
                "source1": "/dev/null",
                "source2": deb.path.name,
                "comments": ["Package only in the new run"],
                "unified_diff": None,
            }
        )
    return {
        "diffoscope-json-version": 1,
        "source1": old_run.label(),
        "source2": new_run.label(),
        "unified_diff": None,
        "details": details,
    }


# ---------------------------------------------------------------- filter_boring


def _filter_udiff(udiff: str, old_version: str, new_version: str, display: str) -> str | None:
    """Replace both versions by ``display``; drop hunks whose changes were only that."""
    out: list[str] = []
    hunk: list[str] = []

    def flush() -> None:
        # A removed line whose text is also added (after the version swap) is
        # no change: it becomes one context line, which keeps the hunk's line
        # counts right for diffoscope's presenters.
        added = Counter(line[1:] for line in hunk if line.startswith("+"))
        unchanged: Counter[str] = Counter()
        kept: list[str] = []
        for line in hunk:
            if line.startswith("-") and added[line[1:]] > unchanged[line[1:]]:
                unchanged[line[1:]] += 1
                kept.append(" " + line[1:])
            else:
                kept.append(line)
        result: list[str] = []
        for line in kept:
            if line.startswith("+") and unchanged[line[1:]] > 0:
                unchanged[line[1:]] -= 1
                continue
            result.append(line)
        if any(line.startswith(("-", "+")) for line in result[1:]):
            out.extend(result)

    for line in udiff.splitlines(keepends=True):
        if line.startswith("@@"):
            flush()
            hunk = [line]
            continue
        if line.startswith("-"):
            line = "-" + line[1:].replace(old_version, display)
        elif line.startswith("+"):
            line = "+" + line[1:].replace(new_version, display)
        else:
            line = line.replace(old_version, display).replace(new_version, display)
        if hunk:
            hunk.append(line)
        else:
            out.append(line)
    flush()
    text = "".join(out)
    return text if any(line.startswith("@@") for line in text.splitlines()) else None


def _filter_detail(detail: dict[str, Any], old_version: str, new_version: str, display: str) -> bool:
    """Filter in place; False when no difference is left.

    As the platform's filter does, a difference that keeps neither a diff nor
    a sub-difference goes, even with comments (such as ``./md5sums``'s
    "Files in package differ", said of files shown elsewhere); ``details``
    is left out when empty, as diffoscope itself writes it.
    """
    if isinstance(detail.get("source1"), str):
        detail["source1"] = detail["source1"].replace(old_version, display)
    if isinstance(detail.get("source2"), str):
        detail["source2"] = detail["source2"].replace(new_version, display)
    if detail.get("unified_diff"):
        detail["unified_diff"] = _filter_udiff(detail["unified_diff"], old_version, new_version, display)
    kept = [
        sub
        for sub in detail.get("details") or []
        if not _boring(sub) and _filter_detail(sub, old_version, new_version, display)
    ]
    if kept:
        detail["details"] = kept
    else:
        detail.pop("details", None)
    return bool(detail.get("unified_diff") or kept)


def _boring(detail: dict[str, Any]) -> bool:
    source1, source2 = str(detail.get("source1", "")), str(detail.get("source2", ""))
    if source1 in BORING_FIELDS and source2 in BORING_FIELDS:
        return True
    return source1.endswith(".buildinfo") and source2.endswith(".buildinfo")


def filter_boring(diff: dict[str, Any], old_version: str, new_version: str) -> dict[str, Any]:
    """Version-only noise removed below the top level, whose labels stay as they are (as the platform's do).

    A package present in one run only has no diff to filter and stays.
    """
    result = copy.deepcopy(diff)
    display = re.sub(r"~[^~]*$", "", new_version)
    kept = []
    for detail in result.get("details") or []:
        if _boring(detail):
            continue
        changed = _filter_detail(detail, old_version, new_version, display)
        if changed or "/dev/null" in (detail.get("source1"), detail.get("source2")):
            kept.append(detail)
    result["details"] = kept
    return result


# ---------------------------------------------------------------- rendering


MAX_CSS_URL = 2048


def valid_css_url(value: str) -> bool:
    """An http(s) URL or an absolute path, printable and bounded: nothing else reaches a page."""
    if not value or len(value) > MAX_CSS_URL or not value.isprintable() or any(c.isspace() for c in value):
        return False
    if value.startswith("/"):
        return not value.startswith("//")
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def link_stylesheet(page: bytes, css_url: str) -> bytes:
    """``page`` with a stylesheet link before ``</head>``, where diffoscope's own ``--css`` puts it."""
    link = f'  <link href="{html.escape(css_url, quote=True)}" type="text/css" rel="stylesheet" />\n'.encode()
    head_end = page.find(b"</head>")
    if head_end == -1:
        return page
    return page[:head_end] + link + page[head_end:]


def set_title(page: bytes, title: str) -> bytes:
    """``page`` with ``title`` as its ``<title>``: diffoscope's own is its command line, temporary paths and all."""
    start, end = page.find(b"<title>"), page.find(b"</title>")
    if start == -1 or end < start:
        return page
    return page[: start + len(b"<title>")] + html.escape(title).encode() + page[end:]


async def render(
    command_line: str, diff: dict[str, Any], media_type: str, limits: Limits, css_url: str | None
) -> bytes:
    """Render stored JSON with diffoscope's presenters (in a subprocess)."""
    if media_type == "application/json":
        return json.dumps(diff, indent=2).encode() + b"\n"
    option = FORMATS[media_type]
    with tempfile.TemporaryDirectory(prefix="differ-render-") as tmp:
        src = Path(tmp) / "diff.json"
        out = Path(tmp) / "out"
        src.write_text(json.dumps(diff))
        argv = [*shlex.split(command_line), "--load-existing-diff", str(src), option, str(out)]
        if css_url and media_type == "text/html":
            argv += ["--css", css_url]
        result = await run_tool(argv, limits)
        if result.returncode not in (0, 1):
            raise DiffoscopeError(_failure(result))
        return out.read_bytes() if out.exists() else b""
