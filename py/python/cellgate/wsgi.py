"""WSGI middleware (Flask, Django, any WSGI app): 429 with ``Retry-After``, the rate-limit
headers and a JSON body once a client is over its limit.

::

    from cellgate import Limiter
    from cellgate.wsgi import RateLimitMiddleware
    app.wsgi_app = RateLimitMiddleware(app.wsgi_app, limiter=Limiter("100/minute"))

For Flask, ``cellgate.flask.RateLimit`` runs inside the app (keys after authentication,
per-route limits); for Django, ``cellgate.django``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Union

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
    call_on_exceeded,
    check_allow_list,
    check_count,
    check_methods,
    check_on_exceeded,
    chosen_limiter,
    per_request,
    check_on_denied,
    check_options,
    check_trusted_hops,
    denial_for,
    forwarded_address,
    reject_unknown_options,
)
from cellgate._limiter import Key, Limiter, SyncLimiter

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
else:
    StartResponse = Callable[..., Any]
    WSGIApplication = Callable[..., Iterable[bytes]]
    WSGIEnvironment = dict

__all__ = ["CountMode", "DECISION_KEY", "Denial", "RateLimitMiddleware", "client_address_key", "forwarded_for_key"]

DECISION_KEY = "cellgate.decision"
"""Where the middleware puts a limited request's ``Decision`` in the WSGI environ (Flask:
``request.environ["cellgate.decision"]``)."""


def client_address_key(environ: WSGIEnvironment, ipv6_prefix: int = 56) -> bytes:
    """The default key: ``REMOTE_ADDR``, IPv6 grouped by ``ipv6_prefix`` bits.

    gunicorn's WSGI workers and Werkzeug's server set it to the connection's address: behind
    a proxy, the proxy's (gunicorn's ``forwarded_allow_ips`` governs the scheme headers, not
    this address). Middleware such as Werkzeug's ``ProxyFix`` may rewrite it from
    ``X-Forwarded-For``. Behind proxies, see ``forwarded_for_key`` and the README."""
    return address_key(environ.get("REMOTE_ADDR"), ipv6_prefix)


def forwarded_for_key(trusted_hops: int = 1, ipv6_prefix: int = 56) -> Callable[[WSGIEnvironment], bytes]:
    """A ``key`` for an app behind ``trusted_hops`` proxies that each append to
    ``X-Forwarded-For`` (as ``cellgate.asgi.forwarded_for_key``); ``REMOTE_ADDR`` when the
    header is missing or too short. A client that can reach the app through fewer than
    ``trusted_hops`` proxies chooses its key (the entry read is then one it wrote): let only
    the innermost proxy connect to the app."""
    check_trusted_hops(trusted_hops)
    client_key("::1", ipv6_prefix)

    def key(environ: WSGIEnvironment) -> bytes:
        address = forwarded_address(environ.get("HTTP_X_FORWARDED_FOR"), trusted_hops)
        if address is None:
            return client_address_key(environ, ipv6_prefix)
        return address_key(address, ipv6_prefix)

    return key


class RateLimitMiddleware:
    """Limits requests per key, as ``cellgate.asgi.RateLimitMiddleware`` does for ASGI.

    ``key(environ)`` returns the request's key (default: ``REMOTE_ADDR``); ``cost`` is an
    int or ``cost(environ)``; ``exempt(environ)`` returning true lets a request through
    unlimited and without headers. Arguments are checked here, and a ``key`` or ``cost``
    callable returning a value the limiter refuses gets a logged 500, as in
    ``cellgate.asgi.RateLimitMiddleware``.

    ``count`` / ``count_when`` and ``on_denied(environ, decision)`` are those of
    ``cellgate.asgi.RateLimitMiddleware``: a request that should not count is refunded once
    its status is known and its body has been sent (the response iterable exhausted or
    closed); one whose app raised counts as a 500. The decision is in
    ``environ["cellgate.decision"]``. ``limiter`` may be a callable of the environ returning
    the limiter (one per plan); ``allow_list``, ``methods`` and ``on_exceeded`` are those of
    ``cellgate.asgi.RateLimitMiddleware``. Unknown options are an ``InvalidArgumentType`` naming
    them.
    """

    def __init__(
        self,
        app: WSGIApplication,
        limiter: Union[SyncLimiter, Callable[[WSGIEnvironment], SyncLimiter]],
        *,
        key: Optional[Callable[[WSGIEnvironment], Key]] = None,
        cost: Union[int, Callable[[WSGIEnvironment], int]] = 1,
        exempt: Optional[Callable[[WSGIEnvironment], bool]] = None,
        header_style: HeaderStyle = "ietf",
        headers_on_success: bool = True,
        ipv6_prefix: int = 56,
        count: CountMode = "all",
        count_when: Optional[Callable[[int], bool]] = None,
        allow_list: Optional[Iterable[Union[str, bytes]]] = None,
        methods: Optional[Iterable[str]] = None,
        on_exceeded: Optional[Callable[[WSGIEnvironment, Decision], Any]] = None,
        on_denied: Optional[Callable[[WSGIEnvironment, Decision], Denial]] = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_options("cellgate.wsgi.RateLimitMiddleware", unknown)
        check_options(app, limiter, key, cost, exempt, header_style, headers_on_success, ipv6_prefix)
        self.counts = check_count(count, count_when)
        check_on_denied(on_denied)
        self.on_denied = on_denied
        self.allow = check_allow_list(allow_list, ipv6_prefix)
        self.methods = check_methods(methods)
        check_on_exceeded(on_exceeded)
        self.on_exceeded = on_exceeded
        self.per_request = per_request(limiter)
        self.app = app
        self.limiter: Any = limiter  # a limiter, or the callable choosing one (per_request)
        self.key = key
        self.cost = cost
        self.exempt = exempt
        self.header_style = header_style
        self.headers_on_success = headers_on_success
        self.ipv6_prefix = ipv6_prefix
        self._misconfiguration = MisconfigurationLog()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (self.exempt is not None and self.exempt(environ)) or (
            self.methods is not None and environ.get("REQUEST_METHOD", "GET").upper() not in self.methods
        ):
            return self.app(environ, start_response)
        key = self.key(environ) if self.key is not None else client_address_key(environ, self.ipv6_prefix)
        if allowed_key(self.allow, key):
            return self.app(environ, start_response)
        cost = self.cost(environ) if callable(self.cost) else self.cost
        try:
            limiter = chosen_limiter(self.limiter(environ), False) if self.per_request else self.limiter
            decision = limiter.check(key, cost)
        except (InvalidArgument, InvalidArgumentType) as error:
            # As in cellgate.asgi: a configuration error, answered 500, never let through.
            self._misconfiguration.report("cellgate.wsgi.RateLimitMiddleware", error)
            return _respond(
                start_response, "500 Internal Server Error", [("Content-Type", "application/json")], MISCONFIGURED_BODY
            )
        environ[DECISION_KEY] = decision
        if not decision.allowed:
            call_on_exceeded("cellgate.wsgi.RateLimitMiddleware", self.on_exceeded, environ, decision)
            denial = denial_for(self.on_denied, environ, decision, self.header_style)
            return _respond(start_response, status_line(denial.status), denial.headers, denial.body)
        counts = self.counts
        if not self.headers_on_success and counts is None:
            return self.app(environ, start_response)
        extra = decision.headers(self.header_style) if self.headers_on_success else []
        started: list[int] = []

        def start_with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [_status_code(status)]
            return start_response(status, list(headers) + extra, exc_info)

        if counts is None:
            return self.app(environ, start_with_headers)

        def settle() -> None:
            if not counts(started[0] if started else STATUS_OF_AN_ERROR):
                limiter.refund(key, cost)

        try:
            body = self.app(environ, start_with_headers)
        except BaseException:
            settle()
            raise
        return _SettledAfterBody(body, settle)


class _SettledAfterBody:
    """The app's response iterable, calling ``settle`` once: when the body has been iterated
    to its end, when it raised, or when the server closes it, whichever comes first."""

    __slots__ = ("_body", "_settle")

    def __init__(self, body: Iterable[bytes], settle: Callable[[], None]) -> None:
        self._body = body
        self._settle: Optional[Callable[[], None]] = settle

    def _settle_once(self) -> None:
        settle, self._settle = self._settle, None
        if settle is not None:
            settle()

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        finally:
            self._settle_once()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._settle_once()


def status_line(status: int) -> str:
    """The WSGI status line of a status code (``429 Too Many Requests``)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _status_code(status: str) -> int:
    try:
        return int(status.split(None, 1)[0])
    except (ValueError, IndexError):
        return STATUS_OF_AN_ERROR


def _respond(start_response: StartResponse, status: str, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    start_response(status, headers + [("Content-Length", str(len(body)))])
    return [body]
