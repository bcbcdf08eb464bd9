from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Query
from prometheus_client import CollectorRegistry

from janitor_common.appfactory import create_service_app
from janitor_common.config import CommonSettings
from janitor_common.negotiate import NotAcceptable, negotiate, prefers_json
from janitor_dev.testing import asgi_client

OFFERED = ["text/plain", "text/markdown", "text/html", "application/json"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/plain"),
        ("", "text/plain"),
        ("*/*", "text/plain"),
        ("text/html", "text/html"),
        ("text/*;q=0.5, application/json", "application/json"),
        ("text/html;q=0.2, text/markdown;q=0.9", "text/markdown"),
        ("application/json;q=0, */*;q=0.1", "text/plain"),
        ("text/*, text/plain;q=0", "text/markdown"),
        ("image/png, */*;q=0.01", "text/plain"),
        ("TEXT/HTML", "text/html"),
        ("text/html;level=1;q=0.7, application/json;q=0.6", "text/html"),
        ("garbage, text/html", "text/html"),
        ("text/html;q=bogus, application/json", "application/json"),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept, OFFERED) == expected


@pytest.mark.parametrize("accept", ["image/png", "application/json;q=0", "text/plain;q=0, application/*;q=0"])
def test_not_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept, ["text/plain", "application/json"] if "application/*" in accept else ["text/plain"])


def test_prefers_json() -> None:
    assert prefers_json("application/json")
    assert not prefers_json(None)
    assert not prefers_json("*/*")
    assert not prefers_json("text/plain, application/json;q=0.5")


@pytest.fixture
async def app_client(janitor_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = CommonSettings()
    app = create_service_app("test", settings, registry=CollectorRegistry())

    @app.get("/needs")
    async def needs(old: str = Query(), new: str = Query()) -> dict[str, str]:
        return {"old": old, "new": new}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/pick")
    async def pick(accept: str | None = None) -> str:
        return negotiate(accept, ["text/plain"])

    async with asgi_client(app) as client:
        yield client


async def test_health_ready_metrics(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/health")).text == "ok"
    ready = await app_client.get("/ready")
    assert ready.status_code == 200, ready.text
    await app_client.get("/needs", params={"old": "a", "new": "b"})
    metrics = (await app_client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/needs",status="200"} 1.0' in metrics
    assert 'http_request_duration_seconds_count{method="GET",route="/needs"} 1.0' in metrics


async def test_errors_are_plain_text_unless_json_preferred(app_client: httpx.AsyncClient) -> None:
    missing = await app_client.get("/needs", params={"old": "a"})
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("text/plain")
    assert missing.text == "missing query parameter 'new'\n"
    as_json = await app_client.get("/needs", headers={"Accept": "application/json"})
    assert as_json.status_code == 400 and "missing query parameter 'old'" in as_json.json()["error"]
    boom = await app_client.get("/boom")
    assert boom.status_code == 500 and boom.text == "internal server error\n"
    assert "kaboom" not in boom.text


async def test_ready_503_with_reason_when_redis_is_down(
    monkeypatch: pytest.MonkeyPatch, janitor_env: dict[str, str]
) -> None:
    from janitor_dev.devstack import free_port

    monkeypatch.setenv("JANITOR_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    app = create_service_app("test", CommonSettings())
    async with asgi_client(app) as client:
        ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.text.startswith("not ready: redis:")
    assert "postgresql" not in ready.text


async def test_head_is_answered_wherever_get_is(app_client: httpx.AsyncClient) -> None:
    for path in ("/health", "/ready", "/metrics", "/needs?old=a&new=b"):
        get = await app_client.get(path)
        head = await app_client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    # Still refused where GET is: a missing query parameter is 400 for both.
    assert (await app_client.head("/needs")).status_code == (await app_client.get("/needs")).status_code == 400
    assert (await app_client.head("/no-such-route")).status_code == 404


def test_header_values_are_made_safe() -> None:
    from janitor_common.errors import header_value

    assert header_value("run-1") == "run-1"
    for hostile in ("\r\nX-Injected: 1", "\x00", "€", "\udcc0"):
        safe = header_value(hostile)
        assert safe.isascii() and safe.isprintable() and "\r" not in safe
