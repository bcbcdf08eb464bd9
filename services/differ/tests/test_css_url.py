"""css_url reaches the page only as a stylesheet link: no script, no render and no cache entry per value."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import World, calls

URL = "/diffoscope/old-run/new-run"
HTML = {"Accept": "text/html"}
PAYLOAD = '"><script>document.documentElement.setAttribute("data-pwned","1")</script>'


@pytest.mark.parametrize(
    "css_url",
    [PAYLOAD, "javascript:alert(1)", "//evil.example/x.css", "data:text/css,x", "a b", "x" * 3000, "relative.css"],
)
async def test_a_css_url_that_is_no_url_or_path_is_400(client: httpx.AsyncClient, css_url: str) -> None:
    response = await client.get(URL, params={"css_url": css_url}, headers=HTML)
    assert response.status_code == 400 and "invalid css_url" in response.text
    assert "<script>" not in response.text


async def test_any_number_of_stylesheets_cost_one_rendering(client: httpx.AsyncClient, world: World) -> None:
    first = await client.get(URL, params={"css_url": 'https://example.com/a.css?x=1&y="2"'}, headers=HTML)
    assert first.status_code == 200
    assert '<link href="https://example.com/a.css?x=1&amp;y=&quot;2&quot;" type="text/css"' in first.text
    renders = len([c for c in calls(world, "diffoscope") if "--load-existing-diff" in c])
    for i in range(50):
        page = await client.get(URL, params={"css_url": f"/static/style-{i}.css"}, headers=HTML)
        assert page.status_code == 200 and f'href="/static/style-{i}.css"' in page.text
    assert len([c for c in calls(world, "diffoscope") if "--load-existing-diff" in c]) == renders
    cached = [p.name for p in world.cache.rglob("render-text-html*")]
    assert len(cached) == 1, cached


def dom_after_scripts(chromium: str, page: Path) -> str:
    """The page's DOM as headless Chromium leaves it once its scripts have run."""
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def test_no_script_from_a_parameter_runs_in_a_browser(client: httpx.AsyncClient, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (make system-deps installs it)")
    # The payload inside a URL that is valid: the page is served, with it escaped.
    sneaky = "https://example.com/x.css?q=" + PAYLOAD
    served = await client.get(URL, params={"css_url": sneaky}, headers=HTML)
    assert served.status_code == 200
    refused = await client.get(URL, params={"css_url": PAYLOAD}, headers=HTML)
    # The check itself can fail: the payload written into a page unescaped runs.
    control = served.text.replace("</head>", f'<link href="{PAYLOAD}"></head>', 1)
    for name, text, pwned in (
        ("served", served.text, False),
        ("refused", refused.text, False),
        ("control", control, True),
    ):
        page = tmp_path / f"{name}.html"
        page.write_text(text)
        dom = dom_after_scripts(chromium, page)
        assert "<html" in dom
        assert ('data-pwned="1"' in dom) is pwned, name
