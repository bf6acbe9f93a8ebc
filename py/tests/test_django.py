"""cellgate.django under Django's own test Client: settings configured here, no project."""

from __future__ import annotations

from typing import Any

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="cellgate-tests",
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        ROOT_URLCONF=__name__,
        DATABASES={},
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from cellgate import InvalidArgumentType, Limiter, ManualClock  # noqa: E402
from cellgate.django import UNSAFE, ratelimit  # noqa: E402

clock = ManualClock()


class User:
    is_authenticated = True

    def __init__(self, pk: str) -> None:
        self.pk = pk


class FakeAuthMiddleware:
    """Stands in for AuthenticationMiddleware: the user named by the X-User header."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        name = request.META.get("HTTP_X_USER")
        request.user = User(name) if name else None
        return self.get_response(request)


LOGIN = Limiter("3/minute", clock=clock)
PER_VIEW = Limiter("2/minute", clock=clock)
MARKED = Limiter("1/minute", clock=clock)
POSTS = Limiter("1/minute", clock=clock)
USERS = Limiter("1/minute", clock=clock)


@ratelimit(LOGIN, key="ip", count="failed")
def login(request: Any) -> HttpResponse:
    ok = request.POST.get("password") == "right"
    return HttpResponse("welcome" if ok else "no", status=200 if ok else 401)


@ratelimit(PER_VIEW, key="ip")
def search(request: Any) -> HttpResponse:
    return HttpResponse("results")


@ratelimit(MARKED, key="ip", block=False)
def marked(request: Any) -> HttpResponse:
    return HttpResponse("limited" if request.limited else "fine")


@ratelimit(POSTS, key="ip", method=UNSAFE)
def posts(request: Any) -> HttpResponse:
    return HttpResponse("ok")


@ratelimit(USERS, key="user_or_ip")
def profile(request: Any) -> HttpResponse:
    return HttpResponse("me")


def plain(request: Any) -> HttpResponse:
    return HttpResponse("plain")


ASYNC = Limiter("1/minute", clock=clock)
PLANS = {"free": Limiter("1/minute", clock=clock), "pro": Limiter("3/minute", clock=clock)}
ALLOWED = Limiter("1/minute", clock=clock)
EXCEEDED: list[str] = []


@ratelimit(ASYNC, key="ip")
async def async_view(request: Any) -> HttpResponse:
    return HttpResponse("async")


@ratelimit(lambda request: PLANS[request.META.get("HTTP_X_PLAN", "free")], key="header:x-user")
def planned(request: Any) -> HttpResponse:
    return HttpResponse("planned")


def failing_hook(request: Any, decision: Any) -> None:
    EXCEEDED.append(request.path)
    raise RuntimeError("hook down")


@ratelimit(ALLOWED, key="ip", allow_list=["198.51.100.1", "2001:db8::1"], on_exceeded=failing_hook)
def allowed(request: Any) -> HttpResponse:
    return HttpResponse("allowed")


@ratelimit(lambda request: "1/minute", key="ip")
def misconfigured(request: Any) -> HttpResponse:
    return HttpResponse("never")


async def async_plain(request: Any) -> HttpResponse:
    return HttpResponse("async plain")


urlpatterns = [
    path("async", async_view),
    path("async_plain", async_plain),
    path("planned", planned),
    path("allowed", allowed),
    path("misconfigured", misconfigured),
    path("login", login),
    path("search", search),
    path("marked", marked),
    path("posts", posts),
    path("profile", profile),
    path("plain", plain),
]

AUTH = [f"{__name__}.FakeAuthMiddleware"]


@pytest.fixture(autouse=True)
def fresh() -> None:
    # Every limit here refills within an hour: each test starts from full buckets.
    clock.advance(3600)


def test_failed_logins_count_and_successful_ones_do_not() -> None:
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        assert client.post("/login", {"password": "right"}).status_code == 200
    for _ in range(3):
        assert client.post("/login", {"password": "wrong"}).status_code == 401
    denied = client.post("/login", {"password": "right"})
    assert denied.status_code == 429
    assert int(denied.headers["Retry-After"]) >= 1
    assert "RateLimit" in denied.headers


def test_per_view_limit_answers_429_with_headers() -> None:
    client = Client(REMOTE_ADDR="203.0.113.8")
    first = client.get("/search")
    assert first.status_code == 200
    assert "RateLimit" in first.headers
    assert client.get("/search").status_code == 200
    denied = client.get("/search")
    assert denied.status_code == 429
    assert denied.headers["Retry-After"]
    assert denied.headers["Content-Type"].startswith("application/json")
    # another view is not limited by this one
    assert client.get("/plain").status_code == 200


def test_block_false_marks_the_request_and_the_view_decides() -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert client.get("/marked").content == b"fine"
    response = client.get("/marked")
    assert response.status_code == 200
    assert response.content == b"limited"


def test_method_filter_limits_only_unsafe_methods() -> None:
    client = Client(REMOTE_ADDR="203.0.113.10")
    for _ in range(3):
        assert client.get("/posts").status_code == 200
    assert client.post("/posts").status_code == 200
    assert client.post("/posts").status_code == 429


@override_settings(MIDDLEWARE=AUTH)
def test_user_key_comes_after_auth() -> None:
    client = Client(REMOTE_ADDR="203.0.113.11")
    assert client.get("/profile", HTTP_X_USER="ada").status_code == 200
    assert client.get("/profile", HTTP_X_USER="ada").status_code == 429
    # same address, another user: its own key
    assert client.get("/profile", HTTP_X_USER="grace").status_code == 200


def test_ipv6_clients_in_one_56_share_a_key() -> None:
    assert Client(REMOTE_ADDR="2001:db8:0:1::1").get("/posts").status_code == 200
    assert Client(REMOTE_ADDR="2001:db8:0:1::1").post("/posts").status_code == 200
    assert Client(REMOTE_ADDR="2001:db8:0:2::2").post("/posts").status_code == 429


@override_settings(
    MIDDLEWARE=AUTH + ["cellgate.django.RateLimitMiddleware"],
    CELLGATE_LIMITS="2/minute",
    CELLGATE_KEY="user_or_ip",
)
def test_middleware_from_settings() -> None:
    client = Client(REMOTE_ADDR="203.0.113.12")
    ok = client.get("/plain", HTTP_X_USER="linus")
    assert ok.status_code == 200
    assert "RateLimit" in ok.headers
    assert client.get("/plain", HTTP_X_USER="linus").status_code == 200
    denied = client.get("/plain", HTTP_X_USER="linus")
    assert denied.status_code == 429
    assert denied.headers["Retry-After"]
    assert client.get("/plain", HTTP_X_USER="other").status_code == 200


@override_settings(MIDDLEWARE=["cellgate.django.RateLimitMiddleware"], CELLGATE_LIMITS="1/minute", CELLGATE_RATE="x")
def test_unknown_setting_is_an_error_naming_it() -> None:
    with pytest.raises(ImproperlyConfigured, match="CELLGATE_RATE"):
        Client().get("/plain")


def test_unknown_decorator_option_names_it_and_the_cellgate_name() -> None:
    with pytest.raises(InvalidArgumentType, match="rate"):
        ratelimit(Limiter("1/minute"), rate="1/m")
    with pytest.raises(InvalidArgumentType, match="nonsense"):
        ratelimit(Limiter("1/minute"), nonsense=True)


def test_unknown_key_name_is_an_error() -> None:
    with pytest.raises(Exception, match="key"):
        ratelimit("1/minute", key="ipp")


def test_async_view_stays_async_and_is_limited() -> None:
    import asyncio
    import inspect

    from django.test import AsyncClient

    assert inspect.iscoroutinefunction(async_view)

    async def run() -> list[int]:
        client = AsyncClient(REMOTE_ADDR="203.0.113.40")
        return [(await client.get("/async")).status_code for _ in range(2)]

    assert asyncio.run(run()) == [200, 429]


@override_settings(MIDDLEWARE=["cellgate.django.RateLimitMiddleware"], CELLGATE_LIMITS="1/minute",
                   CELLGATE_ALLOW_LIST=["ops"], CELLGATE_KEY="header:x-key")
def test_async_middleware_limits_an_async_view_and_allows_listed_keys() -> None:
    import asyncio

    from django.test import AsyncClient

    async def run() -> tuple[list[int], list[int]]:
        client = AsyncClient()
        limited = [(await client.get("/async_plain", headers={"x-key": "a"})).status_code for _ in range(2)]
        # key "header:" + value: the allow list entry is compared with the key as bytes
        listed = [(await client.get("/async_plain", headers={"x-key": "b"})).status_code for _ in range(2)]
        return limited, listed

    limited, listed = asyncio.run(run())
    assert limited == [200, 429]
    from asgiref.sync import iscoroutinefunction

    from cellgate.django import RateLimitMiddleware

    assert iscoroutinefunction(RateLimitMiddleware(async_plain)), "an async stack stays async"
    assert not iscoroutinefunction(RateLimitMiddleware(plain))
    assert listed == [200, 429], "'ops' is not the key 'header:b'"


@override_settings(MIDDLEWARE=["cellgate.django.RateLimitMiddleware"], CELLGATE_LIMITS="1/minute",
                   CELLGATE_ALLOW_LIST=["header:ops"], CELLGATE_KEY="header:x-key")
def test_middleware_allow_list_key_entry() -> None:
    client = Client()
    assert [client.get("/plain", headers={"x-key": "ops"}).status_code for _ in range(3)] == [200, 200, 200]
    assert [client.get("/plain", headers={"x-key": "z"}).status_code for _ in range(2)] == [200, 429]


def test_per_request_limiter_two_plans() -> None:
    client = Client()
    assert [client.get("/planned", headers={"x-user": "ann"}).status_code for _ in range(2)] == [200, 429]
    pro = {"x-user": "bob", "x-plan": "pro"}
    assert [client.get("/planned", headers=pro).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_allow_list_ip_entries_and_on_exceeded(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    EXCEEDED.clear()
    for address in ("198.51.100.1", "2001:db8:0:7::9"):
        assert [Client(REMOTE_ADDR=address).get("/allowed").status_code for _ in range(3)] == [200, 200, 200]
    with caplog.at_level(logging.ERROR, logger="cellgate"):
        statuses = [Client(REMOTE_ADDR="198.51.100.2").get("/allowed").status_code for _ in range(3)]
    assert statuses == [200, 429, 429]
    assert EXCEEDED == ["/allowed", "/allowed"]
    assert len([r for r in caplog.records if "on_exceeded raised" in r.getMessage()]) == 2


def test_misconfigured_per_request_limiter_is_a_500_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.ERROR, logger="cellgate"):
        answers = [Client().get("/misconfigured") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [500, 500, 500]
    assert answers[0].content == b'{"error":"rate_limit_misconfigured"}'
    assert len([r for r in caplog.records if r.name == "cellgate"]) == 1


def test_bad_new_decorator_options_name_themselves() -> None:
    from cellgate import InvalidArgumentType as Typed

    for options, argument in (({"allow_list": 3}, "allow_list"), ({"on_exceeded": 3}, "on_exceeded")):
        with pytest.raises(Typed) as raised:
            ratelimit("1/minute", **options)
        assert getattr(raised.value, "argument", None) == argument
