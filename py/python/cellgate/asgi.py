"""ASGI middleware (Starlette, FastAPI, any ASGI app): 429 with ``Retry-After``, the
rate-limit headers and a JSON body once a client is over its limit.

::

    from cellgate import Limiter
    from cellgate.asgi import RateLimitMiddleware
    app.add_middleware(RateLimitMiddleware, limiter=Limiter("100/minute"))

The login brute-force recipe, where only failed logins count::

    app.add_middleware(RateLimitMiddleware, limiter=Limiter("5/minute"), count="failed")
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, MutableMapping, Optional, TypeVar, Union

from cellgate._cellgate import Decision, InvalidArgument, InvalidArgumentType, client_key
from cellgate._http import (
    MISCONFIGURED_BODY,
    STATUS_OF_AN_ERROR,
    CountMode,
    Denial,
    HeaderStyle,
    MisconfigurationLog,
    address_key,
    allowed_key,
    check_allow_list,
    check_count,
    check_methods,
    check_on_exceeded,
    chosen_limiter,
    per_request,
    report_exceeded_error,
    check_on_denied,
    check_options,
    check_trusted_hops,
    checked_denial,
    forwarded_address,
    reject_unknown_options,
)
from cellgate._limiter import AnyLimiter, Key

if TYPE_CHECKING:
    from starlette.requests import Request

    from cellgate.redis import AsyncRedisLimiter
    from starlette.responses import Response

    from cellgate._starlette import RateLimitExceeded, rate_limit_exceeded_handler

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = [
    "ASGIApp",
    "CountMode",
    "Denial",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "client_address_key",
    "forwarded_for_key",
    "limit",
    "limit_dependency",
    "rate_limit_exceeded_handler",
]


def client_address_key(scope: Scope, ipv6_prefix: int = 56) -> bytes:
    """The default key: the client address the server put in ``scope["client"]``, IPv6
    grouped by ``ipv6_prefix`` bits.

    Which address that is depends on the server. uvicorn (``--proxy-headers``, on by default)
    replaces it, for a peer in ``--forwarded-allow-ips`` (default ``127.0.0.1,::1``; under
    gunicorn, gunicorn's ``forwarded_allow_ips``), with the right-most ``X-Forwarded-For``
    entry not in that list: behind a local proxy, the real client's address; behind a proxy
    on another host, the proxy's until it is listed; and a client that can connect from a
    listed address chooses its key. With ``--forwarded-allow-ips='*'`` uvicorn takes the
    left-most entry, which the client writes: every client chooses its key. Servers that do
    not rewrite it (gunicorn's own ASGI worker) report the connection's address, behind a
    proxy the proxy's. See ``forwarded_for_key`` and the README."""
    client = scope.get("client")
    return address_key(client[0] if client else None, ipv6_prefix)


def forwarded_for_key(trusted_hops: int = 1, ipv6_prefix: int = 56) -> Callable[[Scope], bytes]:
    """A ``key`` for an app behind ``trusted_hops`` proxies that each append the address they
    received a request from to ``X-Forwarded-For``: its ``trusted_hops``-th entry from the
    right (entries further left were written by the client and are not trusted), grouped as
    ``client_address_key`` groups addresses; ``client_address_key`` when the header is
    missing or shorter than that. It reads the header itself, whatever the server's proxy
    options did to ``scope["client"]``.

    A client that can reach the app through fewer than ``trusted_hops`` proxies (directly, or
    past the outer ones) chooses its key: the entry read is then one it wrote. Let only the
    innermost proxy connect to the app."""
    check_trusted_hops(trusted_hops)
    client_key("::1", ipv6_prefix)

    def key(scope: Scope) -> bytes:
        values = [value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"x-forwarded-for"]
        address = forwarded_address(",".join(values), trusted_hops)
        if address is None:
            return client_address_key(scope, ipv6_prefix)
        return address_key(address, ipv6_prefix)

    return key


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


class RateLimitMiddleware:
    """Limits HTTP requests per key; other scopes (websocket, lifespan) pass through.

    ``key(scope)`` returns the request's key (default: the client address);
    ``cost`` is an int or ``cost(scope)``; ``exempt(scope)`` returning true lets a request
    through unlimited and without headers. Admitted responses get the rate-limit headers
    (``headers_on_success``); denied requests get ``429`` with ``Retry-After``, the headers
    and ``{"error":"rate_limited","retry_after":N}``. A client that finds the keyed table
    full is denied like any other (``decision.reason == "table_full"``): the same 429, headers
    and body, with the ``Retry-After`` core computes (until a slot can be reclaimed).

    ``count`` says which admitted requests keep their cost once the response status is known:
    ``"all"`` (default), ``"failed"`` (status >= 400; a successful login costs nothing, a
    failed one counts) or ``"successful"`` (status < 400); ``count_when(status) -> bool``
    replaces it with a predicate. A request that should not count is refunded
    (``Limiter.refund`` of its key and cost) when its response starts; one whose app raised
    before starting a response counts as a 500. The headers of that response were rendered
    at admission, before the refund.

    ``on_denied(scope, decision)`` (sync or async) returns the ``Denial`` (status, headers,
    body) a denied request is answered with; by default ``Denial.default(decision,
    header_style)``. The decision of every limited request is in ``scope["state"]["rate_limit"]``
    (Starlette: ``request.state.rate_limit``). An unknown option is an ``InvalidArgumentType``
    (a ``TypeError``) naming it, with the cellgate name of a Flask-Limiter or slowapi one
    (``key_func``: ``key``, ``deduct_when``: ``count_when``...).

    ``limiter`` may be a callable of the scope (sync or async) returning the limiter of the
    request (one per plan: two users on different limits); a return that is not a limiter is
    answered 500 ``{"error":"rate_limit_misconfigured"}`` and logged once. ``allow_list`` is an
    iterable of keys let through unlimited and without headers, as ``exempt``: an entry that
    is an IP address becomes its key as the default key makes it (an IPv6 entry allows its
    /56 with the default ``ipv6_prefix``), any other is compared with the request's key as
    bytes (a str encoded UTF-8). ``methods`` limits only those HTTP methods (others pass
    unlimited). ``on_exceeded(scope, decision)`` (sync or async) is called on every denial
    before it is answered (metrics, logging); what it raises is logged and the denial is
    answered all the same (``on_denied`` chooses the answer).

    Every argument is checked here (``InvalidArgumentType`` / ``InvalidArgument`` naming it).
    A ``key`` or ``cost`` callable that returns a value the limiter refuses (a negative or
    fractional cost, a float key) is a configuration error: the request gets a 500 with
    ``{"error":"rate_limit_misconfigured"}`` and never reaches the app, and the error is
    logged once (logger ``"cellgate"``, without a traceback).
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: Union[
            AnyLimiter, Callable[[Scope], Union[AnyLimiter, Awaitable[AnyLimiter]]]
        ],
        *,
        key: Optional[Callable[[Scope], Key]] = None,
        cost: Union[int, Callable[[Scope], int]] = 1,
        exempt: Optional[Callable[[Scope], bool]] = None,
        header_style: HeaderStyle = "ietf",
        headers_on_success: bool = True,
        ipv6_prefix: int = 56,
        count: CountMode = "all",
        count_when: Optional[Callable[[int], bool]] = None,
        allow_list: Optional[Iterable[Union[str, bytes]]] = None,
        methods: Optional[Iterable[str]] = None,
        on_exceeded: Optional[Callable[[Scope, Decision], Any]] = None,
        on_denied: Optional[Callable[[Scope, Decision], Union[Denial, Awaitable[Denial]]]] = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_options("cellgate.asgi.RateLimitMiddleware", unknown)
        check_options(app, limiter, key, cost, exempt, header_style, headers_on_success, ipv6_prefix, awaits=True)
        self.counts = check_count(count, count_when)
        check_on_denied(on_denied)
        self.on_denied = on_denied
        self.allow = check_allow_list(allow_list, ipv6_prefix)
        self.methods = check_methods(methods)
        check_on_exceeded(on_exceeded)
        self.on_exceeded = on_exceeded
        self.per_request = per_request(limiter, True)
        self.app = app
        self.limiter: Any = limiter  # a limiter, or the callable choosing one (per_request)
        self.key = key
        self.cost = cost
        self.exempt = exempt
        self.header_style = header_style
        self.headers_on_success = headers_on_success
        self.ipv6_prefix = ipv6_prefix
        self._misconfiguration = MisconfigurationLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or (self.exempt is not None and self.exempt(scope))
            or (self.methods is not None and scope.get("method", "GET").upper() not in self.methods)
        ):
            await self.app(scope, receive, send)
            return
        key = self.key(scope) if self.key is not None else client_address_key(scope, self.ipv6_prefix)
        if allowed_key(self.allow, key):
            await self.app(scope, receive, send)
            return
        cost = self.cost(scope) if callable(self.cost) else self.cost
        try:
            if self.per_request:
                chosen = self.limiter(scope)
                if inspect.isawaitable(chosen):
                    chosen = await chosen
                limiter = chosen_limiter(chosen, True)
            else:
                limiter = self.limiter
            decision = limiter.check(key, cost)
            if inspect.isawaitable(decision):
                # An AsyncRedisLimiter: awaited, never blocking the event loop.
                decision = await decision
        except (InvalidArgument, InvalidArgumentType) as error:
            # The key or cost callable returned what the limiter refuses: a configuration
            # error, answered 500 and never let through (see MisconfigurationLog).
            self._misconfiguration.report("cellgate.asgi.RateLimitMiddleware", error)
            await _respond(send, 500, [("Content-Type", "application/json")], MISCONFIGURED_BODY)
            return
        scope.setdefault("state", {})["rate_limit"] = decision
        if not decision.allowed:
            await self._deny(scope, send, decision)
            return
        counts = self.counts
        if not self.headers_on_success and counts is None:
            await self.app(scope, receive, send)
            return
        extra = _encode(decision.headers(self.header_style)) if self.headers_on_success else []
        settled = False

        async def settle(status: int) -> None:
            # Once per request: refunds a request that the count mode says should not count.
            nonlocal settled
            if counts is not None and not settled:
                settled = True
                if not counts(status):
                    refunded = limiter.refund(key, cost)
                    if inspect.isawaitable(refunded):
                        await refunded

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if extra:
                    message = dict(message)
                    message["headers"] = list(message.get("headers", [])) + extra
                await settle(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            await settle(STATUS_OF_AN_ERROR)

    async def _deny(self, scope: Scope, send: Send, decision: Decision) -> None:
        if self.on_exceeded is not None:
            try:
                called = self.on_exceeded(scope, decision)
                if inspect.isawaitable(called):
                    await called
            except Exception:
                report_exceeded_error("cellgate.asgi.RateLimitMiddleware")
        if self.on_denied is None:
            denial = Denial.default(decision, self.header_style)
        else:
            answer = self.on_denied(scope, decision)
            denial = checked_denial(await answer if inspect.isawaitable(answer) else answer)
        await _respond(send, denial.status, denial.headers, denial.body)


async def _respond(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    encoded = _encode(headers) + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": body})


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def limit(
    limiter: AnyLimiter,
    *,
    key: Optional[Callable[[Request], Key]] = None,
    cost: Union[int, Callable[[Request], int]] = 1,
    header_style: HeaderStyle = "ietf",
    headers_on_success: bool = True,
    ipv6_prefix: int = 56,
    count: CountMode = "all",
    count_when: Optional[Callable[[int], bool]] = None,
    on_denied: Optional[Callable[[Request, Decision], Denial]] = None,
    allow_list: Optional[Iterable[Union[str, bytes]]] = None,
    **unknown: Any,
) -> Callable[[_Endpoint], _Endpoint]:
    """A decorator limiting one Starlette or FastAPI endpoint (sync or async; needs Starlette)::

        @app.post("/login")
        @limit(Limiter("5/minute"), count="failed")
        async def login(request: Request) -> dict[str, str]: ...

    The endpoint must take the ``Request`` (``request: Request`` in FastAPI). ``key(request)``,
    ``cost`` and the other options mean what they mean for ``RateLimitMiddleware``, with the
    Starlette ``Request`` instead of the scope, so a key can come from what an authentication
    middleware or dependency put on it. A denied request is answered with its ``Denial``
    (core's 429 body and headers by default) as a ``Response``, not an exception; an admitted
    one gets the rate-limit headers (on the returned ``Response``, or through the
    ``cellgate_response`` parameter the decorator adds for FastAPI when the endpoint returns a
    plain value) and its decision in ``request.state.rate_limit``. For the count modes the
    status is the returned ``Response``'s, an exception's ``status_code`` (``HTTPException``),
    500 for another exception, else the status FastAPI's ``Response`` parameter was given, else
    200 (a route's ``status_code=`` is not seen: return a ``Response`` for it). ``allow_list``
    is the middleware's: a listed key runs the endpoint unlimited, without headers."""
    from cellgate import _starlette

    route = _starlette.RouteLimit(
        "cellgate.asgi.limit", limiter, key, cost, header_style, headers_on_success, ipv6_prefix,
        count, count_when, on_denied, unknown, allow_list,
    )  # fmt: skip

    def decorate(endpoint: _Endpoint) -> _Endpoint:
        return _starlette.decorate(route, endpoint)

    return decorate


def limit_dependency(
    limiter: AnyLimiter,
    *,
    key: Optional[Callable[[Request], Key]] = None,
    cost: Union[int, Callable[[Request], int]] = 1,
    header_style: HeaderStyle = "ietf",
    headers_on_success: bool = True,
    ipv6_prefix: int = 56,
    on_denied: Optional[Callable[[Request, Decision], Denial]] = None,
    allow_list: Optional[Iterable[Union[str, bytes]]] = None,
    **unknown: Any,
) -> Callable[[Request, Response], Awaitable[Optional[Decision]]]:
    """A FastAPI dependency limiting the routes it is given to (``Depends(...)``, a router's
    ``dependencies=[...]``); its value is the admitting ``Decision``, whose headers it sets on
    the answer. A denied request raises ``cellgate.asgi.RateLimitExceeded``, an
    ``HTTPException`` FastAPI answers itself: the denial's status (429) and headers with
    ``{"detail": {"error": "rate_limited", "retry_after": N}}``; register
    ``rate_limit_exceeded_handler`` (``app.add_exception_handler(RateLimitExceeded,
    rate_limit_exceeded_handler)``) for core's body as it is. A dependency does not see the
    response status: for the count modes use ``limit`` or ``RateLimitMiddleware``. A key on
    ``allow_list`` is let through unlimited and the dependency's value is None."""
    from cellgate import _starlette

    for name in ("count", "count_when"):
        if name in unknown:
            from cellgate._http import _raise

            _raise(
                InvalidArgumentType,
                name,
                "is not an option of cellgate.asgi.limit_dependency (a dependency does not see the "
                "response status); use cellgate.asgi.limit or RateLimitMiddleware",
            )
    route = _starlette.RouteLimit(
        "cellgate.asgi.limit_dependency", limiter, key, cost, header_style, headers_on_success, ipv6_prefix,
        "all", None, on_denied, unknown, allow_list,
    )  # fmt: skip
    return _starlette.dependency(route)


def __getattr__(name: str) -> Any:
    # RateLimitExceeded and its handler need Starlette: imported when first asked for.
    if name in ("RateLimitExceeded", "rate_limit_exceeded_handler"):
        from cellgate import _starlette

        return getattr(_starlette, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
