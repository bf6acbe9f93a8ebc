"""What the ASGI and WSGI middleware share: default keys and the 429 response."""

from __future__ import annotations

from typing import Literal, Optional

from cellgate._cellgate import Decision, InvalidArgument, InvalidArgumentType, client_key

HeaderStyle = Literal["ietf", "legacy", "legacy_epoch"]
"""``"ietf"`` (``RateLimit-Policy`` and ``RateLimit``), ``"legacy"`` or ``"legacy_epoch"``
(``X-RateLimit-*``), as ``Decision.headers`` takes it."""

TABLE_FULL_BODY = b'{"error":"rate_limited","retry_after":1}'
"""The 429 body when the keyed table has no room for a new client: retry in a second."""


def address_key(address: Optional[str], ipv6_prefix: int) -> bytes:
    """The key of a client address: ``client_key`` of it when it is an IP address, its text
    otherwise (a Unix socket peer, a test client's made-up name), ``b""`` when unknown."""
    if not address:
        return b""
    try:
        return client_key(address, ipv6_prefix)
    except InvalidArgument:
        return address.encode("utf-8", "surrogateescape")


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
        type_error = InvalidArgumentType(f"trusted_hops: must be an int, not {type(trusted_hops).__name__}")
        type_error.argument = "trusted_hops"
        raise type_error
    if trusted_hops < 1:
        value_error = InvalidArgument(f"trusted_hops: must be at least 1, got {trusted_hops}")
        value_error.argument = "trusted_hops"
        raise value_error


def denial_headers(decision: Decision, style: HeaderStyle) -> list[tuple[str, str]]:
    """The headers of a 429: the rate-limit headers, then the JSON content type."""
    return decision.headers(style) + [("Content-Type", "application/json")]
