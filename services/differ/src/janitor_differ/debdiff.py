"""debdiff: run it, filter version-only noise, render it as Markdown or HTML.

debdiff exits 0 (no differences) or 1 (differences); on a fatal error it
exits with whatever errno happened to be (25, 2, 255, even 1), so its
"fatal error" message on stderr is what marks an error.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from .limits import Limits, run_tool

WDIFF_RE = re.compile(r"\[-(.*?)-\]|\{\+(.*?)\+\}")
CONTROL_TITLE_RE = re.compile(r"^Control files(?: of package (?P<package>\S+))?: lines which differ \(wdiff format\)$")
BORING_FIELDS = ("Version", "Installed-Size")


class DebdiffError(Exception):
    pass


async def run_debdiff(old: list[Path], new: list[Path], limits: Limits) -> str:
    argv = ["debdiff", "--from", *map(str, old), "--to", *map(str, new)]
    result = await run_tool(argv, limits)
    if "debdiff: fatal error" in result.stderr_text or result.returncode not in (0, 1):
        message = result.stderr_text.strip() or f"debdiff exited with {result.returncode}"
        raise DebdiffError(message)
    return result.stdout.decode("utf-8", "replace")


@dataclass
class Section:
    title: str | None  # None for text before the first heading
    lines: list[str]


def parse_sections(text: str) -> list[Section]:
    """debdiff's output as sections: a title line underlined with dashes, then its lines."""
    lines = text.splitlines()
    sections = [Section(None, [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        underline = lines[i + 1] if i + 1 < len(lines) else ""
        if line and underline and set(underline) == {"-"} and len(underline) == len(line):
            sections.append(Section(line, []))
            i += 2
            continue
        if line.startswith("No differences were encountered"):
            # A one-line verdict standing on its own, between sections.
            sections.append(Section(None, [line]))
        else:
            sections[-1].lines.append(line)
        i += 1
    return [s for s in sections if s.title is not None or any(line.strip() for line in s.lines)]


def join_sections(sections: list[Section]) -> str:
    out: list[str] = []
    for s in sections:
        if s.title is not None:
            out += [s.title, "-" * len(s.title)]
        out += s.lines
    return "\n".join(out).rstrip("\n") + "\n"


def wdiff_sides(line: str) -> tuple[str, str]:
    """The old and the new text of a wdiff line, with white space collapsed."""
    old = WDIFF_RE.sub(lambda m: m.group(1) if m.group(1) is not None else "", line)
    new = WDIFF_RE.sub(lambda m: m.group(2) if m.group(2) is not None else "", line)
    return " ".join(old.split()), " ".join(new.split())


def filter_boring(text: str, old_version: str, new_version: str) -> str:
    """Drop Version/Installed-Size changes and changes that only swap the version."""
    sections = parse_sections(text)
    out: list[Section] = []
    for section in sections:
        m = CONTROL_TITLE_RE.match(section.title or "")
        if m is None:
            out.append(section)
            continue
        kept = []
        for line in section.lines:
            if not line.strip():
                continue
            field = line.split(":", 1)[0]
            if field in BORING_FIELDS:
                continue
            if WDIFF_RE.search(line):
                old, new = wdiff_sides(line)
                if old.replace(old_version, new_version) == new:
                    continue
            kept.append(line)
        if kept:
            out.append(Section(section.title, [*kept, ""]))
        elif m["package"]:
            out.append(
                Section(
                    None, [f"No differences were encountered between the control files of package {m['package']}", ""]
                )
            )
        else:
            out.append(Section(None, ["No differences were encountered in the control files", ""]))
    return join_sections(out)


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_#<>|])", r"\\\1", text)


def render_markdown(text: str) -> str:
    """Sections as headings; wdiff changes kept as GitLab-style ``[-old-]`` / ``{+new+}``."""
    out: list[str] = []
    for section in parse_sections(text):
        if section.title is not None:
            out += [f"### {_md_escape(section.title)}", ""]
        in_list = False
        for line in section.lines:
            if not line.strip():
                if in_list:
                    out.append("")
                    in_list = False
                continue
            if line.startswith("[") and line.rstrip().endswith("]") and section.title is None:
                out += [f"*{_md_escape(line.strip('[]'))}*", ""]
                continue
            escaped = WDIFF_RE.sub(
                lambda m: f"[-{m.group(1)}-]" if m.group(1) is not None else f"{{+{m.group(2)}+}}",
                _md_escape(line).replace("://", "&#8203;://"),
            )
            out.append(f"* {escaped}")
            in_list = True
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render_html(text: str) -> str:
    """A fragment: sections as headings, wdiff changes as ``<del>`` / ``<ins>``, all escaped."""
    out: list[str] = ['<div class="debdiff">']
    for section in parse_sections(text):
        if section.title is not None:
            out.append(f"<h3>{html.escape(section.title)}</h3>")
        body = [line for line in section.lines if line.strip()]
        if not body:
            continue
        out.append("<pre>")
        for line in body:
            parts: list[str] = []
            pos = 0
            for m in WDIFF_RE.finditer(line):
                parts.append(html.escape(line[pos : m.start()]))
                if m.group(1) is not None:
                    parts.append(f'<del class="deletion">{html.escape(m.group(1))}</del>')
                else:
                    parts.append(f'<ins class="insertion">{html.escape(m.group(2))}</ins>')
                pos = m.end()
            parts.append(html.escape(line[pos:]))
            out.append("".join(parts))
        out.append("</pre>")
    out.append("</div>")
    return "\n".join(out) + "\n"
