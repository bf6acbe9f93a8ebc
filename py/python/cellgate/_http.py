"""What the ASGI and WSGI middleware share: default keys and the 429 response."""

from __future__ import annotations

from typing import Literal, Optional

from cellgate._cellgate import Decision, InvalidArgument, client_key

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


def denial_headers(decision: Decision, style: HeaderStyle) -> list[tuple[str, str]]:
    """The headers of a 429: the rate-limit headers, then the JSON content type."""
    return decision.headers(style) + [("Content-Type", "application/json")]
