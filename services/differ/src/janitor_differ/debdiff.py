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
VERDICT_RE = re.compile(r"^(No differences were encountered between the control files of package) (.*)$")


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
    """The platform's Markdown: ``###`` titles, wdiff lines as a list, other sections as code blocks.

    wdiff changes stay GitLab-style ``[-old-]`` / ``{+new+}``; ``://`` gets a
    zero-width space so GitLab does not turn a URL into a link and lose the
    highlighting. List lines are escaped; code blocks need no escaping.
    """
    out: list[str] = []
    for section in parse_sections(text):
        if section.title is not None:
            out.append(f"### {_md_escape(section.title)}")
            if CONTROL_TITLE_RE.match(section.title):
                out += [f"* {_md_escape(line).replace('://', '&#8203;://')}" for line in section.lines if line.strip()]
            else:
                body = list(section.lines)
                while body and not body[-1].strip():
                    body.pop()
                out += [f"    {line}" for line in body]
            continue
        out.append("")
        for line in section.lines:
            m = VERDICT_RE.match(line)
            out.append(f"{m[1]} **{_md_escape(m[2])}**" if m else _md_escape(line) if line.strip() else "")
        while out and out[-1] == "":
            out.pop()
    return "\n".join(out).strip("\n") + "\n"


# The platform's markup for a wdiff change, which the site's pages style.
DELETED = '<span style="color:red;font-weight:bold">{}</span>'
INSERTED = '<span style="color:green;font-weight:bold">{}</span>'


def _wdiff_html(text: str) -> str:
    parts: list[str] = []
    pos = 0
    for m in WDIFF_RE.finditer(text):
        parts.append(html.escape(text[pos : m.start()]))
        if m.group(1) is not None:
            parts.append(DELETED.format(html.escape(m.group(1))))
        else:
            parts.append(INSERTED.format(html.escape(m.group(2))))
        pos = m.end()
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


def _fields(lines: list[str]) -> list[list[str]]:
    """A control section's lines grouped by field (continuation lines start with a space)."""
    fields: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        if fields and line.startswith(" "):
            fields[-1].append(line)
        else:
            fields.append([line])
    return fields


def render_html(text: str) -> str:
    """A fragment in the platform's markup: ``<h4>`` titles, a ``<ul>`` of wdiff fields, ``<pre>``, ``<p>``.

    The site styles that markup, so it is kept; unlike the platform's, every
    piece of debdiff's text is escaped (a file name or a field is not HTML).
    """
    out: list[str] = []
    for section in parse_sections(text):
        if section.title is not None:
            out.append(f"<h4>{html.escape(section.title)}</h4>")
            if CONTROL_TITLE_RE.match(section.title):
                out.append("<ul>")
                out += [f"<li><pre>{_wdiff_html(chr(10).join(field))}</pre></li>" for field in _fields(section.lines)]
                out.append("</ul>")
            else:
                body = list(section.lines)
                while body and not body[-1].strip():
                    body.pop()
                out += ["<pre>", *(html.escape(line) for line in body), "</pre>"]
            continue
        out.append("<p>")
        for line in section.lines:
            if line.strip():
                m = VERDICT_RE.match(line)
                out.append(f"{m[1]} <b>{html.escape(m[2])}</b>" if m else html.escape(line))
            else:
                out += ["</p>", "<p>"]
        if out[-1] == "<p>":
            out.pop()
        else:
            out.append("</p>")
    return "\n".join(out) + "\n"
