"""The store's HTML pages: codebases, a codebase's branches, a branch's latest revisions and their diffs.

The same pages on both interfaces, under ``/bzr/`` (public) and ``/``
(admin). Each shows the exact ``brz branch`` command for the host and port
the browser used. A revision's diff is shown on its branch's page
(``?revision=N``), so no link leads to a download.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from janitor_common import proc
from janitor_common.pages import document

from . import browse, diffcmd
from .context import BzrContext, Context
from .http import Refused, run_blocking
from .locate import branch_at, repository_at

# The most of a diff a page shows; the rest is left out, and the page says so.
DIFF_SHOWN = 512 * 1024


def branch_command(request: Request, prefix: str, codebase: str, path: str) -> str:
    return f"brz branch bzr+http://{request.url.netloc}{prefix}{codebase}/{path}"


def page(title: str, body: str, interface: str) -> HTMLResponse:
    label = "Bazaar store" if interface == "public" else "Bazaar store (admin)"
    return HTMLResponse(document(title, body, service=label))


def browse_router(prefix: str, interface: str) -> APIRouter:
    """Pages under ``prefix`` (``/bzr/`` or ``/``), to be included before the smart catch-all route."""
    router = APIRouter()

    @router.get(prefix + "{codebase}/", include_in_schema=False)
    async def codebase_page(request: Request, ctx: Context, codebase: str) -> Response:
        repo = await repository_at(ctx, codebase)
        found = await run_blocking(ctx, browse.branches, repo)
        rows = "".join(
            f'<tr><td><a href="{html.escape(quote(b.path))}/">{html.escape(b.path)}</a></td><td>{b.revno}</td>'
            f"<td>{b.last_change.strftime('%Y-%m-%d %H:%M UTC') if b.last_change else '-'}</td>"
            f'<td><code class="command">{html.escape(branch_command(request, prefix, codebase, b.path))}</code>'
            "</td></tr>"
            for b in found
        )
        body = f'<p><a href="{prefix}">All codebases</a></p><h1>{html.escape(codebase)}</h1>' + (
            f"<table><tr><th>branch</th><th>revno</th><th>last change</th><th>get it</th></tr>{rows}</table>"
            if found
            else '<p class="muted">No branches yet.</p>'
        )
        return page(f"{codebase}: branches", body, interface)

    async def branch_page(request: Request, ctx: BzrContext, codebase: str, relpath: str) -> Response:
        repo = await repository_at(ctx, codebase)
        path = await branch_at(ctx, codebase, relpath)
        entries = await run_blocking(ctx, browse.log, path)
        wanted = request.query_params.get("revision")
        shown = next((e for e in entries if str(e.revno) == wanted), None)
        if wanted is not None and shown is None:
            raise Refused(404, f"no revision {wanted[:20]!r} among the latest {browse.LOG_LENGTH} of this branch")
        rows = "".join(
            f"<tr><td>{e.revno}</td><td>{html.escape(e.author)}</td><td>{e.date.strftime('%Y-%m-%d %H:%M')}</td>"
            f"<td>{html.escape(e.message.strip().splitlines()[0] if e.message.strip() else '')}</td>"
            f'<td><a href="?revision={e.revno}">diff</a></td></tr>'
            for e in entries
        )
        body = (
            f'<p><a href="{prefix}{html.escape(quote(codebase))}/">{html.escape(codebase)}</a></p>'
            f"<h1>{html.escape(codebase)}/{html.escape(relpath)}</h1>"
            f'<p><code class="command">{html.escape(branch_command(request, prefix, codebase, relpath))}</code></p>'
        )
        if shown is not None:
            body += await revision_section(ctx, repo, shown)
        body += (
            f"<h2>Latest revisions</h2><table><tr><th>revno</th><th>author</th><th>date (UTC)</th>"
            f"<th>message</th><th></th></tr>{rows}</table>"
        )
        return page(f"{codebase}/{relpath}", body, interface)

    @router.get(prefix + "{codebase}/{campaign}/", include_in_schema=False)
    async def campaign_branch(request: Request, ctx: Context, codebase: str, campaign: str) -> Response:
        return await branch_page(request, ctx, codebase, campaign)

    @router.get(prefix + "{codebase}/{campaign}/{role}/", include_in_schema=False)
    async def role_branch(request: Request, ctx: Context, codebase: str, campaign: str, role: str) -> Response:
        return await branch_page(request, ctx, codebase, f"{campaign}/{role}")

    return router


async def revision_section(ctx: BzrContext, repo: Path, entry: browse.LogEntry) -> str:
    try:
        done = await proc.run(
            [sys.executable, "-m", diffcmd.__name__, str(repo), entry.parent_id, entry.revision_id],
            time_limit=ctx.settings.diff_timeout,
        )
    except proc.TimedOut:
        took = f"The diff took longer than {ctx.settings.diff_timeout:g}s."
        return f'<h2>Revision {entry.revno}</h2><p class="muted">{took}</p>'
    if done.returncode != 0:
        return f'<h2>Revision {entry.revno}</h2><p class="muted">No diff: {html.escape(done.stderr.decode())}</p>'
    text = done.stdout[:DIFF_SHOWN].decode("utf-8", "replace")
    lines = []
    for line in text.splitlines():
        escaped = html.escape(line)
        if line.startswith("+") and not line.startswith("+++"):
            escaped = f"<ins>{escaped}</ins>"
        elif line.startswith("-") and not line.startswith("---"):
            escaped = f"<del>{escaped}</del>"
        lines.append(escaped)
    cut = f'<p class="muted">Cut at {DIFF_SHOWN // 1024} KiB.</p>' if len(done.stdout) > DIFF_SHOWN else ""
    return (
        f"<h2>Revision {entry.revno}</h2><p>{html.escape(entry.message.strip())}</p>"
        f"<pre>{chr(10).join(lines)}</pre>{cut}"
    )
