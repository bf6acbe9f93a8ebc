"""What the ASGI and WSGI middleware (and the Flask and Django integrations) share: option
checks, default keys, count modes, the 429 response and the answer to a request whose key or
cost the limiter refuses."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, NoReturn, Optional, cast, get_args

from cellgate import _cellgate
from cellgate._cellgate import Decision, InvalidArgument, InvalidArgumentType, client_key

HeaderStyle = Literal["ietf", "legacy", "legacy_epoch", "legacy-epoch", "anthropic", "openai", "draft-6", "draft-7"]
"""``"ietf"`` (``RateLimit-Policy`` and ``RateLimit``), ``"legacy"`` or ``"legacy_epoch"``
(also spelled ``"legacy-epoch"``, as in Node) (``X-RateLimit-*``), express-rate-limit's older
``"draft-6"`` and ``"draft-7"``, or per quota as LLM APIs send them, ``"anthropic"``
(``anthropic-ratelimit-{name}-*``) or ``"openai"`` (``x-ratelimit-*-{name}``), as
``Decision.headers`` takes it."""

MISCONFIGURED_BODY = b'{"error":"rate_limit_misconfigured"}'
"""The 500 body when the ``key`` or ``cost`` callable returned a value the limiter refuses:
the server's configuration is at fault, not the client, and the request is not let through."""

log = logging.getLogger("cellgate")
"""Where the middleware reports a misconfiguration it can only see at request time."""


def _raise(error_type: type[Exception], argument: str, message: str) -> NoReturn:
    error = error_type(f"{argument}: {message}")
    error.argument = argument  # type: ignore[attr-defined]
    raise error


def _type_name(value: object) -> str:
    return type(value).__name__


_COST_PROBE = _cellgate.Limiter("1/second", max_keys=1)
"""Checks a fixed cost for a limiter that cannot be peeked without a round trip (Redis)."""


def check_options(
    app: Any,
    limiter: Any,
    key: Any,
    cost: Any,
    exempt: Any,
    header_style: Any,
    headers_on_success: Any,
    ipv6_prefix: Any,
    awaits: bool = False,
) -> None:
    """Checks every argument of a ``RateLimitMiddleware`` when it is made, so that a mistake
    fails at startup as a typed error naming the argument (``InvalidArgumentType`` or
    ``InvalidArgument``), not as a 500 on every request."""
    if not callable(app):
        _raise(InvalidArgumentType, "app", f"must be the application to wrap (a callable), not {_type_name(app)}")
    from cellgate.redis import AsyncRedisLimiter
    from cellgate.redis import _RateLimiter as RemoteBase

    if per_request(limiter, awaits):
        # A callable of the request choosing the limiter: what it returns is checked per
        # request; the other options are checked against a probe.
        limiter = _COST_PROBE
    remote = isinstance(limiter, RemoteBase)
    if isinstance(limiter, AsyncRedisLimiter) and not awaits:
        # Only cellgate.asgi.RateLimitMiddleware awaits its limiter (`awaits`).
        _raise(
            InvalidArgumentType,
            "limiter",
            "is an AsyncRedisLimiter, which only cellgate.asgi.RateLimitMiddleware awaits: "
            "use cellgate.redis.RedisLimiter (sync) here",
        )
    if not isinstance(limiter, _cellgate.Limiter) and not remote:
        _raise(
            InvalidArgumentType,
            "limiter",
            "must be a cellgate.Limiter (such as Limiter('100/minute')), a cellgate.redis.RedisLimiter "
            f"or a callable of the request returning one, not {_type_name(limiter)}",
        )
    for argument, value in (("key", key), ("exempt", exempt)):
        if value is not None and not callable(value):
            _raise(
                InvalidArgumentType,
                argument,
                f"must be a callable of the request (or None), not {_type_name(value)}",
            )
    if not callable(cost):
        # The limiter's own check of a cost (an int 0..2**64-1, or an integral float; not a
        # bool), which names the argument `cost`; a peek changes nothing.
        (_COST_PROBE if remote else limiter).peek(b"", cost)
    if not isinstance(header_style, str):
        _raise(InvalidArgumentType, "header_style", f"must be a str, not {_type_name(header_style)}")
    styles = get_args(HeaderStyle)
    if header_style not in styles:
        _raise(InvalidArgument, "header_style", f"must be one of {', '.join(map(repr, styles))}, not {header_style!r}")
    # Renders the headers of a decision that changes nothing, so that a per-quota style whose
    # quota names cannot be header names fails here, not on every request.
    try:
        # (A Redis limiter's names are those of an in-process limiter of its rate.)
        probe = _cellgate.Limiter(limiter.rate, max_keys=1) if remote else limiter
        probe.peek(b"", 0).headers(cast(HeaderStyle, header_style))
    except InvalidArgument as error:
        _raise(InvalidArgument, "header_style", str(error).removeprefix("style: "))
    if not isinstance(headers_on_success, bool):
        _raise(InvalidArgumentType, "headers_on_success", f"must be a bool, not {_type_name(headers_on_success)}")
    client_key("::1", ipv6_prefix)


def is_limiter(value: Any, awaits: bool) -> bool:
    """Whether ``value`` is a limiter the middleware can check: a ``cellgate.Limiter`` or a
    ``cellgate.redis`` limiter (an ``AsyncRedisLimiter`` only where the middleware
    ``awaits``)."""
    from cellgate.redis import AsyncRedisLimiter
    from cellgate.redis import _RateLimiter as RemoteBase

    if isinstance(value, AsyncRedisLimiter):
        return awaits
    return isinstance(value, (_cellgate.Limiter, RemoteBase))


def per_request(limiter: Any, awaits: bool = False) -> bool:
    """Whether ``limiter`` is a callable of the request choosing the limiter (one per plan,
    per tenant) rather than a limiter."""
    from cellgate.redis import _RateLimiter as RemoteBase

    return callable(limiter) and not isinstance(limiter, (_cellgate.Limiter, RemoteBase))


def chosen_limiter(value: Any, awaits: bool) -> Any:
    """The limiter a per-request ``limiter`` callable returned, or ``InvalidArgumentType``
    naming ``limiter`` (answered 500 and logged once, as a refused key or cost)."""
    if not is_limiter(value, awaits):
        _raise(
            InvalidArgumentType,
            "limiter",
            f"must return a cellgate.Limiter or a cellgate.redis limiter, not {_type_name(value)}",
        )
    return value


def check_allow_list(allow_list: Any, ipv6_prefix: int) -> Optional[frozenset[bytes]]:
    """The keys of ``allow_list`` (an iterable of str or bytes), or None when it is None or
    empty. An entry that is an IP address becomes its key as the default key makes it
    (``client_key`` under ``ipv6_prefix``: an IPv6 entry allows its whole /56); any other is
    compared with the request's key as bytes (a str encoded UTF-8)."""
    if allow_list is None:
        return None
    if isinstance(allow_list, (str, bytes)) or not hasattr(allow_list, "__iter__"):
        _raise(
            InvalidArgumentType,
            "allow_list",
            f"must be an iterable of keys (str or bytes), not {_type_name(allow_list)}",
        )
    keys: set[bytes] = set()
    for entry in allow_list:
        if isinstance(entry, str):
            text, raw = entry, entry.encode("utf-8", "surrogatepass")
        elif isinstance(entry, bytes):
            text, raw = entry.decode("latin-1"), entry
        else:
            _raise(InvalidArgumentType, "allow_list", f"entries must be str or bytes, not {_type_name(entry)}")
        try:
            keys.add(client_key(text, ipv6_prefix))
        except InvalidArgument:
            keys.add(raw)
    return frozenset(keys) or None


def allowed_key(allow: Optional[frozenset[bytes]], key: Any) -> bool:
    """Whether the request's key is on the allow list."""
    if allow is None:
        return False
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogatepass")
    return isinstance(key, bytes) and key in allow


def check_methods(methods: Any) -> Optional[frozenset[str]]:
    """The upper-cased HTTP methods that are limited, or None (every method)."""
    if methods is None:
        return None
    if isinstance(methods, (str, bytes)) or not hasattr(methods, "__iter__"):
        _raise(InvalidArgumentType, "methods", f"must be an iterable of HTTP method names, not {_type_name(methods)}")
    names: set[str] = set()
    for method in methods:
        if not isinstance(method, str):
            _raise(InvalidArgumentType, "methods", f"entries must be str, not {_type_name(method)}")
        if not method or not method.isascii() or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in method):
            _raise(InvalidArgument, "methods", f"{method!r} is not an HTTP method name")
        names.add(method.upper())
    if not names:
        _raise(InvalidArgument, "methods", "must name at least one method (or be None: every method)")
    return frozenset(names)


def check_on_exceeded(on_exceeded: Any) -> None:
    if on_exceeded is not None and not callable(on_exceeded):
        _raise(
            InvalidArgumentType,
            "on_exceeded",
            f"must be a callable of the request and the decision (or None), not {_type_name(on_exceeded)}",
        )


def report_exceeded_error(where: str) -> None:
    """Logs (with the traceback) an exception raised by ``on_exceeded``: the denial is answered
    all the same."""
    log.exception("%s: on_exceeded raised; the denial is answered all the same", where)


def call_on_exceeded(where: str, on_exceeded: Optional[Callable[[Any, Decision], Any]], request: Any, decision: Decision) -> None:
    """Calls ``on_exceeded(request, decision)`` for a denial; what it raises is logged."""
    if on_exceeded is None:
        return
    try:
        on_exceeded(request, decision)
    except Exception:
        report_exceeded_error(where)


class MisconfigurationLog:
    """Logs, once per argument, that the ``key`` or ``cost`` callable of a middleware returned
    a value the limiter refuses: every such request is answered 500, and one line in the log
    says why, without a traceback per request."""

    __slots__ = ("_lock", "_logged")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logged: set[str] = set()

    def report(self, middleware: str, error: Exception) -> None:
        argument = str(getattr(error, "argument", "?"))
        with self._lock:
            if argument in self._logged:
                return
            self._logged.add(argument)
        log.error(
            "%s: the %s callable returned a value the limiter refuses (%s); such requests are "
            "answered 500 without reaching the application (logged once)",
            middleware,
            argument,
            error,
        )


def address_key(address: Optional[str], ipv6_prefix: int) -> bytes:
    """The key of a client address: ``client_key`` of it when it is an IP address, its text
    otherwise (a Unix socket peer, a test client's made-up name), ``b""`` when unknown."""
    if not address:
        return b""
    try:
        return client_key(address, ipv6_prefix)
    except InvalidArgument:
        return address.encode("utf-8", "surrogatepass")


def forwarded_address(header: Optional[str], trusted_hops: int) -> Optional[str]:
    """The client address in an ``X-Forwarded-For`` value written by ``trusted_hops`` proxies
    that each append the address they received from: the ``trusted_hops``-th entry from the
    right. Entries further left were written by the client and are not trusted. ``None`` when
    the header is absent or holds fewer entries than that."""
    if not header:
        return None
    hops = [hop.strip() for hop in header.split(",")]
    if len(hops) < trusted_hops or not hops[-trusted_hops]:
        return None
    return hops[-trusted_hops]


def check_trusted_hops(trusted_hops: int) -> None:
    """Raises the package's typed errors for a ``trusted_hops`` that is not an int >= 1."""
    if isinstance(trusted_hops, bool) or not isinstance(trusted_hops, int):
        _raise(InvalidArgumentType, "trusted_hops", f"must be an int, not {_type_name(trusted_hops)}")
    if trusted_hops < 1:
        _raise(InvalidArgument, "trusted_hops", f"must be at least 1, got {trusted_hops}")


def denial_headers(decision: Decision, style: HeaderStyle) -> list[tuple[str, str]]:
    """The headers of a 429: the rate-limit headers, then the JSON content type."""
    return decision.headers(style) + [("Content-Type", "application/json")]


CountMode = Literal["all", "failed", "successful"]
"""Which admitted requests keep their cost once the response is known: ``"all"`` (every
one, the default), ``"failed"`` (only those answered with a status >= 400: the login
brute-force recipe, a successful login costs nothing) or ``"successful"`` (only those
answered < 400). A request that should not count is refunded (``Limiter.refund``) when its
status is known."""

COUNT_MODES: tuple[str, ...] = get_args(CountMode)

STATUS_OF_AN_ERROR = 500
"""The status a request is counted as when the application raised (or ended) without
starting a response: the one the server answers it with."""


def failed_status(status: int) -> bool:
    """``count="failed"``: the request keeps its cost when its status is >= 400."""
    return status >= 400


def successful_status(status: int) -> bool:
    """``count="successful"``: the request keeps its cost when its status is < 400."""
    return status < 400


def check_count(count: Any, count_when: Any) -> Optional[Callable[[int], bool]]:
    """The predicate of the status deciding whether an admitted request keeps its cost, or
    None when every request counts (nothing to do after the response). ``count_when`` (a
    callable of the status) replaces ``count``; giving both is an error."""
    if count_when is not None:
        if not callable(count_when):
            _raise(
                InvalidArgumentType,
                "count_when",
                f"must be a callable of the response status returning a bool (or None), not {_type_name(count_when)}",
            )
        if count != "all":
            _raise(InvalidArgument, "count_when", f"replaces count; give one of them, not count={count!r} as well")
        return cast(Callable[[int], bool], count_when)
    if not isinstance(count, str):
        _raise(InvalidArgumentType, "count", f"must be a str, not {_type_name(count)}")
    if count not in COUNT_MODES:
        _raise(InvalidArgument, "count", f"must be one of {', '.join(map(repr, COUNT_MODES))}, not {count!r}")
    return {"all": None, "failed": failed_status, "successful": successful_status}[count]


def check_on_denied(on_denied: Any) -> None:
    if on_denied is not None and not callable(on_denied):
        _raise(
            InvalidArgumentType,
            "on_denied",
            f"must be a callable of the request and the decision returning a Denial (or None), not {_type_name(on_denied)}",
        )


@dataclass(frozen=True)
class Denial:
    """The response to a denied request: what ``on_denied(request, decision)`` returns.

    ``Denial.default(decision, header_style)`` is the middleware's own: ``429``, the
    rate-limit headers with ``Retry-After`` and ``Content-Type: application/json``, and core's
    body ``{"error":"rate_limited","retry_after":N}``; ``dataclasses.replace`` of it changes
    one field. ``Content-Length`` is added by the middleware."""

    status: int = 429
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def default(cls, decision: Decision, header_style: HeaderStyle = "ietf") -> Denial:
        # 503 for a denial of the outage policy "closed": Redis could not be asked, the
        # service is unavailable, the client is not over its limit.
        status = 503 if decision.reason == "failed_closed" else 429
        return cls(status, denial_headers(decision, header_style), decision.error_body())


def denial_for(
    on_denied: Optional[Callable[[Any, Decision], Denial]], request: Any, decision: Decision, header_style: HeaderStyle
) -> Denial:
    """What a denied request is answered with: ``on_denied``'s ``Denial``, or the default."""
    if on_denied is None:
        return Denial.default(decision, header_style)
    return checked_denial(on_denied(request, decision))


def checked_denial(denial: Any) -> Denial:
    """``on_denied``'s answer, which must be a ``Denial``."""
    if not isinstance(denial, Denial):
        _raise(InvalidArgumentType, "on_denied", f"must return a cellgate.Denial, not {_type_name(denial)}")
    return denial


FOREIGN_OPTIONS: dict[str, str] = {
    # Flask-Limiter and slowapi
    "key_func": "key (a callable of the request returning its key)",
    "default_limits": "limiter (a cellgate.Limiter such as Limiter('100/minute'))",
    "application_limits": "limiter (a cellgate.Limiter such as Limiter('100/minute'))",
    "limits": "limiter (a cellgate.Limiter such as Limiter('100/minute'))",
    "deduct_when": "count_when (a callable of the response status) or count='failed' / 'successful'",
    "default_limits_deduct_when": "count_when (a callable of the response status) or count='failed' / 'successful'",
    "exempt_when": "exempt (a callable of the request)",
    "request_filter": "exempt (a callable of the request) or allow_list (keys and IP addresses)",
    "exempt_ips": "allow_list (keys and IP addresses)",
    "whitelist": "allow_list (keys and IP addresses)",
    "on_breach_callback": "on_exceeded (a callable of the request and the decision, called on each denial)",
    "default_limits_exempt_when": "exempt (a callable of the request)",
    "default_limits_cost": "cost",
    "headers_enabled": "headers_on_success",
    "on_breach": "on_exceeded (called on each denial) or on_denied (returns the Denial answered)",
    "storage_uri": "limiter (the limiter holds its store)",
    "strategy": "limiter (Limiter(..., algorithm='gcra' or 'token_bucket'))",
    "key_prefix": "key",
    "key_style": "key",
    # django-ratelimit
    "rate": "limiter (a cellgate.Limiter such as Limiter('5/minute'), or a callable of the request returning one)",
    "group": "key",
}
"""Option names of the frameworks' usual rate limiters that cellgate names otherwise: an
unknown option naming one of them says which cellgate option to use."""


def reject_unknown_options(where: str, options: dict[str, Any]) -> None:
    """Raises ``InvalidArgumentType`` (a ``TypeError``) naming the first unknown option, with
    the cellgate name when it is a Flask-Limiter, slowapi or django-ratelimit name, so that a
    half-migrated configuration fails at startup instead of running with defaults."""
    for name in options:
        hint = FOREIGN_OPTIONS.get(name)
        suffix = f"; cellgate calls it {hint}" if hint else ""
        _raise(InvalidArgumentType, name, f"is not an option of {where}{suffix}")
