"""What the ASGI and WSGI middleware share: option checks, default keys, the 429 response and
the answer to a request whose key or cost the limiter refuses."""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal, NoReturn, Optional, cast, get_args

from cellgate import _cellgate
from cellgate._cellgate import Decision, InvalidArgument, InvalidArgumentType, client_key

HeaderStyle = Literal["ietf", "legacy", "legacy_epoch", "anthropic", "openai"]
"""``"ietf"`` (``RateLimit-Policy`` and ``RateLimit``), ``"legacy"`` or ``"legacy_epoch"``
(``X-RateLimit-*``), or per quota as LLM APIs send them, ``"anthropic"``
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


def check_options(
    app: Any,
    limiter: Any,
    key: Any,
    cost: Any,
    exempt: Any,
    header_style: Any,
    headers_on_success: Any,
    ipv6_prefix: Any,
) -> None:
    """Checks every argument of a ``RateLimitMiddleware`` when it is made, so that a mistake
    fails at startup as a typed error naming the argument (``InvalidArgumentType`` or
    ``InvalidArgument``), not as a 500 on every request."""
    if not callable(app):
        _raise(InvalidArgumentType, "app", f"must be the application to wrap (a callable), not {_type_name(app)}")
    if not isinstance(limiter, _cellgate.Limiter):
        _raise(
            InvalidArgumentType,
            "limiter",
            f"must be a cellgate.Limiter (such as Limiter('100/minute')), not {_type_name(limiter)}",
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
        limiter.peek(b"", cost)
    if not isinstance(header_style, str):
        _raise(InvalidArgumentType, "header_style", f"must be a str, not {_type_name(header_style)}")
    styles = get_args(HeaderStyle)
    if header_style not in styles:
        _raise(InvalidArgument, "header_style", f"must be one of {', '.join(map(repr, styles))}, not {header_style!r}")
    # Renders the headers of a decision that changes nothing, so that a per-quota style whose
    # quota names cannot be header names fails here, not on every request.
    try:
        limiter.peek(b"", 0).headers(cast(HeaderStyle, header_style))
    except InvalidArgument as error:
        _raise(InvalidArgument, "header_style", str(error).removeprefix("style: "))
    if not isinstance(headers_on_success, bool):
        _raise(InvalidArgumentType, "headers_on_success", f"must be a bool, not {_type_name(headers_on_success)}")
    client_key("::1", ipv6_prefix)


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
