"""The Python framework examples of the README, run as written: each ``<!-- example: NAME -->``
block is extracted from README.md, executed, and its app exercised with the framework's own
test client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def example(name: str) -> dict[str, Any]:
    """The namespace the README's ``name`` block leaves after running."""
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)\n```", README.read_text(), re.S)
    assert match, f"README.md has no {name} example"
    namespace: dict[str, Any] = {"__name__": f"readme_{name}"}
    exec(compile(match.group(1), f"README.md ({name})", "exec"), namespace)
    return namespace


def test_fastapi_example() -> None:
    pytest.importorskip("fastapi")
    from starlette.testclient import TestClient

    client = TestClient(example("fastapi")["app"])
    for _ in range(6):
        assert client.post("/login?password=hunter2").status_code == 200, "successful logins are refunded"
    for _ in range(5):
        assert client.post("/login?password=wrong").status_code == 401
    denied = client.post("/login?password=hunter2")
    assert denied.status_code == 429
    assert int(denied.headers["retry-after"]) >= 1


def test_flask_example() -> None:
    pytest.importorskip("flask")
    client = example("flask")["app"].test_client()
    for _ in range(6):
        assert client.post("/login", data={"password": "hunter2"}).status_code == 200
    for _ in range(5):
        assert client.post("/login", data={"password": "wrong"}).status_code == 401
    denied = client.post("/login", data={"password": "hunter2"})
    assert denied.status_code == 429
    assert "RateLimit" in denied.headers


def test_django_example() -> None:
    django = pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(ALLOWED_HOSTS=["*"], SECRET_KEY="cellgate-tests", INSTALLED_APPS=[], DATABASES={})
        django.setup()
    from django.test import RequestFactory

    login = example("django")["login"]
    factory = RequestFactory(REMOTE_ADDR="198.51.100.1")
    assert login(factory.get("/login")).status_code == 200, "GET is not an unsafe method: not limited"
    for _ in range(5):
        assert login(factory.post("/login")).content == b"welcome"
    limited = login(factory.post("/login"))
    assert limited.status_code == 429 and limited.content == b"slow down"
