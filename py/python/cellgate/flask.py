"""A Flask extension: default limits for every request, per-route limits and exemptions,
keys from ``flask.request`` and ``flask.g`` (so a key can be the authenticated user), the
count modes, the rate-limit headers and core's 429.

::

    from cellgate import Limiter
    from cellgate.flask import RateLimit
    rate_limit = RateLimit(app, limiter=Limiter("100/minute"))

    @app.post("/login")
    @rate_limit.limit(Limiter("5/minute"), count="failed")
    def login(): ...
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, TypeVar, Union

import flask

from cellgate._cellgate import Decision, InvalidArgument, InvalidArgumentType
from cellgate._http import (
    MISCONFIGURED_BODY,
    STATUS_OF_AN_ERROR,
    CountMode,
    Denial,
    HeaderStyle,
    MisconfigurationLog,
    _raise,
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
    denial_for,
    reject_unknown_options,
)
from cellgate._limiter import Key, Limiter, SyncLimiter

__all__ = ["CountMode", "Denial", "RateLimit", "client_address_key"]

View = TypeVar("View", bound=Callable[..., Any])

_STATE = "_cellgate_rate_limit"
"""Where the admitted request's limit, key and cost wait in ``flask.g`` for ``after_request``."""


def client_address_key(ipv6_prefix: int = 56) -> bytes:
    """The default key: ``flask.request.remote_addr`` (``REMOTE_ADDR``) through core's client
    key, IPv6 grouped by ``ipv6_prefix`` bits, as ``cellgate.wsgi.client_address_key``."""
    return address_key(flask.request.remote_addr, ipv6_prefix)


class _Limit:
    """One limit (the default one, or a route's), its options checked once."""

    __slots__ = (
        "limiter", "key", "cost", "counts", "on_denied", "header_style", "headers_on_success", "ipv6_prefix",
        "per_request", "allow", "methods", "on_exceeded",
    )  # fmt: skip

    def __init__(
        self,
        limiter: Union[SyncLimiter, Callable[[flask.Request], SyncLimiter]],
        key: Optional[Callable[[], Key]],
        cost: Union[int, Callable[[], int]],
        header_style: HeaderStyle,
        headers_on_success: bool,
        ipv6_prefix: int,
        count: CountMode,
        count_when: Optional[Callable[[int], bool]],
        on_denied: Optional[Callable[[flask.Request, Decision], Denial]],
        allow: Optional[frozenset[bytes]] = None,
        methods: Optional[frozenset[str]] = None,
        on_exceeded: Optional[Callable[[flask.Request, Decision], Any]] = None,
    ) -> None:
        check_options(lambda: None, limiter, key, cost, None, header_style, headers_on_success, ipv6_prefix)
        self.counts = check_count(count, count_when)
        check_on_denied(on_denied)
        self.per_request = per_request(limiter)
        self.limiter: Any = limiter  # a limiter, or the callable choosing one (per_request)
        self.allow = allow
        self.methods = methods
        self.on_exceeded = on_exceeded
        self.key = key
        self.cost = cost
        self.header_style = header_style
        self.headers_on_success = headers_on_success
        self.ipv6_prefix = ipv6_prefix
        self.on_denied = on_denied


class RateLimit:
    """Rate limits for a Flask app: ``RateLimit(app, limiter=Limiter("100/minute"))`` or
    ``RateLimit(limiter=...)`` then ``init_app(app)``.

    With ``default=True`` every request (404s included) is checked against ``limiter`` in a
    ``before_request`` hook; ``default=False`` (or no ``limiter``) limits only the routes
    decorated with ``limit``. ``key()`` and ``cost()`` are called without arguments inside the
    request, so they read ``flask.request`` and ``flask.g``: a key can be the user an
    authentication hook registered before ``init_app`` set (``lambda: flask.g.user.id``);
    the default key is the client address (``REMOTE_ADDR`` through core's client key, /56 for
    IPv6). ``exempt()`` returning true lets a request through unlimited.

    A route decorated with ``limit(...)`` is checked against its own limit instead of the
    default one; one decorated with ``exempt`` against none. A denied request is answered with
    ``on_denied(flask.request, decision)``'s ``Denial``, by default core's 429 (``Retry-After``,
    the rate-limit headers, ``{"error":"rate_limited","retry_after":N}``). An admitted one gets
    the rate-limit headers (``headers_on_success``), its decision in ``flask.g.rate_limit``,
    and, with ``count="failed"`` / ``"successful"`` or ``count_when(status)``, a refund in
    ``after_request`` when its status says it should not count (an unhandled exception is
    Flask's 500). The other options mean what they mean for ``cellgate.wsgi``; an unknown
    option is an ``InvalidArgumentType`` naming it (and the cellgate name of a Flask-Limiter
    one: ``key_func``: ``key``, ``deduct_when``: ``count_when``...).

    ``limiter`` (here or in ``limit``) may be a callable of ``flask.request`` returning the
    request's limiter (one per plan); a return that is not a limiter is a logged 500.
    ``allow_list``, ``methods`` and ``on_exceeded(flask.request, decision)`` mean what they
    mean for ``cellgate.asgi.RateLimitMiddleware``.
    """

    def __init__(
        self,
        app: Optional[flask.Flask] = None,
        *,
        limiter: Union[SyncLimiter, Callable[[flask.Request], SyncLimiter], None] = None,
        key: Optional[Callable[[], Key]] = None,
        cost: Union[int, Callable[[], int]] = 1,
        default: bool = True,
        exempt: Optional[Callable[[], bool]] = None,
        header_style: HeaderStyle = "ietf",
        headers_on_success: bool = True,
        ipv6_prefix: int = 56,
        count: CountMode = "all",
        count_when: Optional[Callable[[int], bool]] = None,
        on_denied: Optional[Callable[[flask.Request, Decision], Denial]] = None,
        allow_list: Optional[Iterable[Union[str, bytes]]] = None,
        methods: Optional[Iterable[str]] = None,
        on_exceeded: Optional[Callable[[flask.Request, Decision], Any]] = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_options("cellgate.flask.RateLimit", unknown)
        allow = check_allow_list(allow_list, ipv6_prefix)
        limited_methods = check_methods(methods)
        check_on_exceeded(on_exceeded)
        if not isinstance(default, bool):
            _raise(InvalidArgumentType, "default", f"must be a bool, not {type(default).__name__}")
        if exempt is not None and not callable(exempt):
            _raise(InvalidArgumentType, "exempt", f"must be a callable (or None), not {type(exempt).__name__}")
        self._options: dict[str, Any] = {
            "key": key,
            "cost": cost,
            "header_style": header_style,
            "headers_on_success": headers_on_success,
            "ipv6_prefix": ipv6_prefix,
            "on_denied": on_denied,
            "allow": allow,
            "methods": limited_methods,
            "on_exceeded": on_exceeded,
        }
        self.limiter = limiter
        self.default: Optional[_Limit] = None
        if limiter is not None:
            self.default = _Limit(
                limiter, key, cost, header_style, headers_on_success, ipv6_prefix, count, count_when, on_denied,
                allow, limited_methods, on_exceeded,
            )  # fmt: skip
        elif count != "all" or count_when is not None:
            check_count(count, count_when)
        self.apply_default = default
        self.exempt_when = exempt
        self._routes: dict[Callable[..., Any], Optional[_Limit]] = {}
        self._misconfiguration = MisconfigurationLog()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Registers the hooks on ``app`` (``before_request``, ``after_request``,
        ``teardown_request``); limits run after the ``before_request`` hooks registered
        before this call."""
        app.extensions["cellgate"] = self
        app.before_request(self._before_request)
        app.after_request(self._after_request)
        app.teardown_request(self._teardown_request)

    def limit(
        self,
        limiter: Union[SyncLimiter, Callable[[flask.Request], SyncLimiter], None] = None,
        *,
        key: Optional[Callable[[], Key]] = None,
        cost: Union[int, Callable[[], int]] = 1,
        count: CountMode = "all",
        count_when: Optional[Callable[[int], bool]] = None,
        on_denied: Optional[Callable[[flask.Request, Decision], Denial]] = None,
        methods: Optional[Iterable[str]] = None,
        **unknown: Any,
    ) -> Callable[[View], View]:
        """A decorator giving one view its own limit (instead of the default one), above or
        below ``@app.route``. ``limiter`` defaults to the extension's, ``key`` to the
        extension's key, ``methods`` to the extension's; header options, ``allow_list`` and
        ``on_exceeded`` are the extension's."""
        reject_unknown_options("cellgate.flask.RateLimit.limit", unknown)
        route_methods = check_methods(methods) if methods is not None else self._options["methods"]
        chosen = limiter if limiter is not None else self.limiter
        if chosen is None:
            _raise(InvalidArgumentType, "limiter", "must be a cellgate.Limiter: the extension was made without one")
        options = self._options
        route = _Limit(
            chosen,
            key if key is not None else options["key"],
            cost,
            options["header_style"],
            options["headers_on_success"],
            options["ipv6_prefix"],
            count,
            count_when,
            on_denied if on_denied is not None else options["on_denied"],
            options["allow"],
            route_methods,
            options["on_exceeded"],
        )

        def decorate(view: View) -> View:
            self._routes[view] = route
            return view

        return decorate

    def exempt(self, view: View) -> View:
        """A decorator exempting one view from every limit (the default one included)."""
        self._routes[view] = None
        return view

    def _limit_of_request(self) -> Optional[_Limit]:
        view = flask.current_app.view_functions.get(flask.request.endpoint or "")
        if view is not None and view in self._routes:
            return self._routes[view]
        if not self.apply_default:
            return None
        if self.exempt_when is not None and self.exempt_when():
            return None
        return self.default

    def _before_request(self) -> Optional[flask.Response]:
        limit = self._limit_of_request()
        if limit is None or (limit.methods is not None and flask.request.method.upper() not in limit.methods):
            return None
        key = limit.key() if limit.key is not None else client_address_key(limit.ipv6_prefix)
        if allowed_key(limit.allow, key):
            return None
        cost = limit.cost() if callable(limit.cost) else limit.cost
        try:
            limiter = chosen_limiter(limit.limiter(flask.request), False) if limit.per_request else limit.limiter
            decision = limiter.check(key, cost)
        except (InvalidArgument, InvalidArgumentType) as error:
            self._misconfiguration.report("cellgate.flask.RateLimit", error)
            return _response(Denial(500, [("Content-Type", "application/json")], MISCONFIGURED_BODY))
        flask.g.rate_limit = decision
        if not decision.allowed:
            call_on_exceeded("cellgate.flask.RateLimit", limit.on_exceeded, flask.request, decision)
            return _response(denial_for(limit.on_denied, flask.request, decision, limit.header_style))
        setattr(flask.g, _STATE, (limit, limiter, key, cost, decision))
        return None

    def _after_request(self, response: flask.Response) -> flask.Response:
        state = flask.g.pop(_STATE, None)
        if state is None:
            return response
        limit, limiter, key, cost, decision = state
        if limit.headers_on_success:
            for name, value in decision.headers(limit.header_style):
                response.headers.add(name, value)
        _settle(limit, limiter, key, cost, response.status_code)
        return response

    def _teardown_request(self, error: Optional[BaseException]) -> None:
        # after_request did not run (an exception Flask did not turn into a response).
        state = flask.g.pop(_STATE, None)
        if state is not None:
            limit, limiter, key, cost, _ = state
            _settle(limit, limiter, key, cost, STATUS_OF_AN_ERROR)


def _settle(limit: _Limit, limiter: Any, key: Key, cost: int, status: int) -> None:
    if limit.counts is not None and not limit.counts(status):
        limiter.refund(key, cost)


def _response(denial: Denial) -> flask.Response:
    headers = [(name, value) for name, value in denial.headers if name.lower() != "content-type"]
    content_type = next((value for name, value in denial.headers if name.lower() == "content-type"), None)
    return flask.current_app.response_class(denial.body, status=denial.status, headers=headers, content_type=content_type)
