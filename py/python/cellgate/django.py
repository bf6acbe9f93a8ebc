"""Django: a settings-driven middleware and a view decorator in django-ratelimit's manner.

::

    # settings.py
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "cellgate.django.RateLimitMiddleware"]
    CELLGATE_LIMITS = "100/minute"
    CELLGATE_KEY = "user_or_ip"

    # views.py
    from cellgate.django import ratelimit
    @ratelimit("5/minute", key="user_or_ip", count="failed")
    def login(request): ...

Keys: ``"ip"`` (``REMOTE_ADDR`` through core's client key: IPv6 grouped by /56, as the WSGI
middleware groups it), ``"user"`` (``request.user``'s primary key; one shared key for anonymous
users), ``"user_or_ip"`` (the user when authenticated, else the address), ``"header:NAME"``
(a request header), a callable of the request, or the dotted path of one.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable, Optional, TypeVar, Union, cast

# Django ships no type information (django-stubs is a separate mypy plugin): its names are
# Any here, and cellgate's own signatures stay typed.
from django.core.exceptions import (  # type: ignore[import-untyped]
    BadRequest,
    ImproperlyConfigured,
    PermissionDenied,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

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
    check_on_exceeded,
    chosen_limiter,
    per_request,
    check_on_denied,
    check_options,
    denial_for,
    reject_unknown_options,
)
from cellgate._limiter import Key, Limiter, SyncLimiter

__all__ = ["ALL", "UNSAFE", "CountMode", "Denial", "RateLimitMiddleware", "key_of", "ratelimit"]

View = TypeVar("View", bound=Callable[..., Any])
KeySpec = Union[str, Callable[[HttpRequest], Key]]
"""``"ip"``, ``"user"``, ``"user_or_ip"``, ``"header:NAME"``, a dotted path, or a callable."""

UNSAFE: tuple[str, ...] = ("DELETE", "PATCH", "POST", "PUT")
"""The methods that change state (django-ratelimit's ``UNSAFE``)."""
ALL = None
"""Every method (django-ratelimit's ``ALL``)."""

ANONYMOUS_USER_KEY = b"user:anonymous"
"""The one key every anonymous user shares under ``key="user"``."""

SETTINGS: dict[str, str] = {
    "CELLGATE_LIMITS": "a rate string ('100/minute; 1000/day'), a cellgate.Limiter or a callable of the request returning one",
    "CELLGATE_KEY": "'ip', 'user', 'user_or_ip', 'header:NAME', a callable or its dotted path",
    "CELLGATE_COST": "an int",
    "CELLGATE_COUNT": "'all', 'failed' or 'successful'",
    "CELLGATE_EXEMPT": "a callable of the request returning true to exempt it, or its dotted path",
    "CELLGATE_HEADER_STYLE": "'ietf', 'legacy', 'legacy_epoch', 'anthropic' or 'openai'",
    "CELLGATE_HEADERS_ON_SUCCESS": "a bool",
    "CELLGATE_IPV6_PREFIX": "an int (56)",
    "CELLGATE_ALLOW_LIST": "keys and IP addresses let through unlimited (a list of str or bytes)",
    "CELLGATE_ON_EXCEEDED": "a callable of the request and the decision called on each denial, or its dotted path",
}
"""The settings ``RateLimitMiddleware`` reads; any other ``CELLGATE_*`` setting is an error."""


def _user_key(request: HttpRequest) -> Optional[bytes]:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return f"user:{user.pk}".encode()


def key_of(spec: KeySpec, ipv6_prefix: int = 56) -> Callable[[HttpRequest], Key]:
    """The key function a key name (or dotted path, or callable) stands for; raises
    ``InvalidArgument`` naming ``key`` for an unknown name."""
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        _raise(InvalidArgumentType, "key", f"must be a key name, a dotted path or a callable, not {type(spec).__name__}")

    def ip(request: HttpRequest) -> Key:
        return address_key(request.META.get("REMOTE_ADDR"), ipv6_prefix)

    if spec == "ip":
        return ip
    if spec == "user":
        return lambda request: _user_key(request) or ANONYMOUS_USER_KEY
    if spec == "user_or_ip":
        return lambda request: _user_key(request) or ip(request)
    if spec.startswith("header:"):
        meta = "HTTP_" + spec.removeprefix("header:").upper().replace("-", "_")
        return lambda request: "header:" + str(request.META.get(meta, ""))
    if "." in spec:
        try:
            return cast(Callable[[HttpRequest], Key], import_string(spec))
        except ImportError as error:
            _raise(InvalidArgument, "key", f"{spec!r} cannot be imported: {error}")
    _raise(InvalidArgument, "key", f"must be 'ip', 'user', 'user_or_ip', 'header:NAME', a dotted path or a callable, not {spec!r}")


def _limiter_of(value: Any, argument: str) -> Any:
    if isinstance(value, str):
        return Limiter(value)
    if value is None:
        _raise(ImproperlyConfigured, argument, "is required: a rate string ('100/minute') or a cellgate.Limiter")
    return value


def _status_of_error(error: BaseException) -> int:
    """The status Django answers an exception from a view with."""
    if isinstance(error, Http404):
        return 404
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, (SuspiciousOperation, BadRequest)):
        return 400
    return STATUS_OF_AN_ERROR


def _response(denial: Denial) -> HttpResponse:
    headers = {name: value for name, value in denial.headers if name.lower() != "content-type"}
    content_type = next((value for name, value in denial.headers if name.lower() == "content-type"), None)
    return HttpResponse(denial.body, status=denial.status, headers=headers, content_type=content_type)


def _add_headers(response: HttpResponse, headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        if name in response.headers:
            response.headers[name] = f"{response.headers[name]}, {value}"
        else:
            response.headers[name] = value


class _Limit:
    """One limit with its options checked once: the middleware's or a decorated view's."""

    def __init__(
        self,
        where: str,
        limiter: Union[SyncLimiter, Callable[[HttpRequest], SyncLimiter]],
        key: KeySpec,
        cost: Union[int, Callable[[HttpRequest], int]],
        header_style: HeaderStyle,
        headers_on_success: bool,
        ipv6_prefix: int,
        count: CountMode,
        count_when: Optional[Callable[[int], bool]],
        on_denied: Optional[Callable[[HttpRequest, Decision], Denial]],
        allow_list: Optional[Iterable[Union[str, bytes]]] = None,
        on_exceeded: Optional[Callable[[HttpRequest, Decision], Any]] = None,
    ) -> None:
        check_options(lambda: None, limiter, None, cost, None, header_style, headers_on_success, ipv6_prefix)
        self.allow = check_allow_list(allow_list, ipv6_prefix)
        check_on_exceeded(on_exceeded)
        self.on_exceeded = on_exceeded
        self.per_request = per_request(limiter)
        self.where = where
        self.key = key_of(key, ipv6_prefix)
        self.counts = check_count(count, count_when)
        check_on_denied(on_denied)
        self.limiter: Any = limiter  # a limiter, or the callable choosing one (per_request)
        self.cost = cost
        self.header_style = header_style
        self.headers_on_success = headers_on_success
        self.on_denied = on_denied
        self._misconfiguration = MisconfigurationLog()

    def check(self, request: HttpRequest) -> Optional[tuple[Any, Key, int, Union[Decision, HttpResponse]]]:
        """The limiter, key, cost and decision (or the 500 of a misconfiguration) of a
        request; None when its key is on the allow list."""
        key = self.key(request)
        if allowed_key(self.allow, key):
            return None
        cost = self.cost(request) if callable(self.cost) else self.cost
        limiter = self.limiter
        try:
            if self.per_request:
                limiter = chosen_limiter(self.limiter(request), False)
            return limiter, key, cost, limiter.check(key, cost)
        except (InvalidArgument, InvalidArgumentType) as error:
            self._misconfiguration.report(self.where, error)
            return limiter, key, cost, _response(Denial(500, [("Content-Type", "application/json")], MISCONFIGURED_BODY))

    def deny(self, request: HttpRequest, decision: Decision) -> HttpResponse:
        call_on_exceeded(self.where, self.on_exceeded, request, decision)
        return _response(denial_for(self.on_denied, request, decision, self.header_style))

    def finish(self, response: HttpResponse, limiter: Any, key: Key, cost: int, decision: Decision) -> HttpResponse:
        if self.headers_on_success:
            _add_headers(response, decision.headers(self.header_style))
        self.settle(limiter, key, cost, response.status_code)
        return response

    def settle(self, limiter: Any, key: Key, cost: int, status: int) -> None:
        if self.counts is not None and not self.counts(status):
            limiter.refund(key, cost)


class RateLimitMiddleware:
    """Limits every request by the ``CELLGATE_*`` settings (see ``SETTINGS``); put it after
    ``AuthenticationMiddleware`` so ``"user"`` keys see ``request.user``.

    A denied request gets core's 429 (``Retry-After``, the rate-limit headers, the JSON
    body); an admitted one the headers, ``request.rate_limit`` (its decision) and, with
    ``CELLGATE_COUNT = "failed"`` (or ``"successful"``), a refund once the view answered a
    status that should not count (an exception counts as a 500). Settings are read when
    Django loads the middleware; a missing ``CELLGATE_LIMITS`` or an unknown ``CELLGATE_*``
    setting is ``ImproperlyConfigured`` naming it. It works in sync and async stacks (an
    async ``get_response`` keeps the request async).

    ``CELLGATE_LIMITS`` may be a callable of the request returning its limiter (one per
    plan); ``CELLGATE_ALLOW_LIST`` and ``CELLGATE_ON_EXCEEDED`` are the ``allow_list`` and
    ``on_exceeded`` of ``cellgate.asgi.RateLimitMiddleware``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        # Imported here, not at module level: a module attribute that is Django's lazy settings
        # object raises ImproperlyConfigured on any inspection (stubtest, help()) before
        # settings are configured.
        from django.conf import settings  # type: ignore[import-untyped]

        self.get_response = get_response
        self.is_async = inspect.iscoroutinefunction(get_response)
        if self.is_async:
            from asgiref.sync import markcoroutinefunction

            markcoroutinefunction(self)
        for name in dir(settings):
            if name.startswith("CELLGATE_") and name not in SETTINGS:
                raise ImproperlyConfigured(
                    f"{name}: is not a cellgate setting; the settings are {', '.join(sorted(SETTINGS))}"
                )
        exempt = getattr(settings, "CELLGATE_EXEMPT", None)
        on_exceeded = getattr(settings, "CELLGATE_ON_EXCEEDED", None)
        if isinstance(on_exceeded, str):
            on_exceeded = import_string(on_exceeded)
        self.exempt: Optional[Callable[[HttpRequest], bool]] = import_string(exempt) if isinstance(exempt, str) else exempt
        try:
            self.limit = _Limit(
                "cellgate.django.RateLimitMiddleware",
                _limiter_of(getattr(settings, "CELLGATE_LIMITS", None), "CELLGATE_LIMITS"),
                getattr(settings, "CELLGATE_KEY", "ip"),
                getattr(settings, "CELLGATE_COST", 1),
                getattr(settings, "CELLGATE_HEADER_STYLE", "ietf"),
                getattr(settings, "CELLGATE_HEADERS_ON_SUCCESS", True),
                getattr(settings, "CELLGATE_IPV6_PREFIX", 56),
                getattr(settings, "CELLGATE_COUNT", "all"),
                None,
                None,
                getattr(settings, "CELLGATE_ALLOW_LIST", None),
                on_exceeded,
            )
        except (InvalidArgument, InvalidArgumentType) as error:
            argument = str(getattr(error, "argument", ""))
            setting = "CELLGATE_LIMITS" if argument in ("limiter", "rate", "quotas") else f"CELLGATE_{argument.upper()}"
            raise ImproperlyConfigured(f"{setting}: {error}") from error

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        if self.exempt is not None and self.exempt(request):
            return self.get_response(request)
        checked = self.limit.check(request)
        if checked is None:
            return self.get_response(request)
        limiter, key, cost, decision = checked
        if isinstance(decision, HttpResponse):
            return decision
        request.rate_limit = decision
        if not decision.allowed:
            return self.limit.deny(request, decision)
        try:
            response = self.get_response(request)
        except BaseException as error:
            self.limit.settle(limiter, key, cost, _status_of_error(error))
            raise
        return self.limit.finish(response, limiter, key, cost, decision)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if self.exempt is not None and self.exempt(request):
            return await self.get_response(request)
        checked = self.limit.check(request)
        if checked is None:
            return await self.get_response(request)
        limiter, key, cost, decision = checked
        if isinstance(decision, HttpResponse):
            return decision
        request.rate_limit = decision
        if not decision.allowed:
            return self.limit.deny(request, decision)
        try:
            response = await self.get_response(request)
        except BaseException as error:
            self.limit.settle(limiter, key, cost, _status_of_error(error))
            raise
        return self.limit.finish(response, limiter, key, cost, decision)


def ratelimit(
    limiter: Union[SyncLimiter, str, Callable[[HttpRequest], SyncLimiter]],
    *,
    key: KeySpec = "ip",
    method: Union[str, Iterable[str], None] = ALL,
    block: bool = True,
    cost: Union[int, Callable[[HttpRequest], int]] = 1,
    count: CountMode = "all",
    count_when: Optional[Callable[[int], bool]] = None,
    on_denied: Optional[Callable[[HttpRequest, Decision], Denial]] = None,
    header_style: HeaderStyle = "ietf",
    headers_on_success: bool = True,
    ipv6_prefix: int = 56,
    allow_list: Optional[Iterable[Union[str, bytes]]] = None,
    on_exceeded: Optional[Callable[[HttpRequest, Decision], Any]] = None,
    **unknown: Any,
) -> Callable[[View], View]:
    """A view decorator in django-ratelimit's manner: ``@ratelimit("5/minute",
    key="user_or_ip", method=UNSAFE, block=True)``.

    ``limiter`` is a ``cellgate.Limiter`` or a rate string (a ``Limiter`` made once, here).
    Only requests whose method is in ``method`` (a name, a list, or ``ALL``) are checked.
    Every request gets ``request.limited`` (true when denied, or when an earlier decorator
    denied it); every checked one ``request.rate_limit`` (its decision). A denied request is answered
    with core's 429 (or ``on_denied``'s ``Denial``) with ``block=True``; with ``block=False``
    it is marked ``request.limited = True`` and reaches the view, which decides. ``count`` /
    ``count_when`` refund an admitted request whose status should not count (a successful
    login). Unknown options are an ``InvalidArgumentType`` naming them (``rate``: pass the
    limiter; ``group``: use ``key``).

    ``limiter`` may also be a callable of the request returning its limiter (one per plan);
    ``allow_list`` and ``on_exceeded`` are those of ``cellgate.asgi.RateLimitMiddleware``.
    An async view stays async (the wrapper is a coroutine function)."""
    reject_unknown_options("cellgate.django.ratelimit", unknown)
    if not isinstance(block, bool):
        _raise(InvalidArgumentType, "block", f"must be a bool, not {type(block).__name__}")
    methods: Optional[frozenset[str]]
    if method is None:
        methods = None
    elif isinstance(method, str):
        methods = frozenset([method.upper()])
    else:
        methods = frozenset(name.upper() for name in method)
    limit = _Limit(
        "cellgate.django.ratelimit",
        _limiter_of(limiter, "limiter"),
        key,
        cost,
        header_style,
        headers_on_success,
        ipv6_prefix,
        count,
        count_when,
        on_denied,
        allow_list,
        on_exceeded,
    )

    def admit(request: HttpRequest) -> Optional[tuple[Any, Key, int, Union[Decision, HttpResponse]]]:
        """None: call the view unlimited; else the check (a response to answer when its
        decision is an HttpResponse or a blocked denial)."""
        # Set even when the method is not checked, as django-ratelimit does: a view can
        # read request.limited whatever the method.
        request.limited = getattr(request, "limited", False)
        if methods is not None and (request.method or "").upper() not in methods:
            return None
        checked = limit.check(request)
        if checked is None or isinstance(checked[3], HttpResponse):
            return checked
        decision = checked[3]
        request.rate_limit = decision
        request.limited = getattr(request, "limited", False) or not decision.allowed
        if not decision.allowed:
            if block:
                return checked[0], checked[1], checked[2], limit.deny(request, decision)
            return None
        return checked

    def decorate(view: View) -> View:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                checked = admit(request)
                if checked is None:
                    return await view(request, *args, **kwargs)
                limiter, key, cost, decision = checked
                if isinstance(decision, HttpResponse):
                    return decision
                try:
                    response = await view(request, *args, **kwargs)
                except BaseException as error:
                    limit.settle(limiter, key, cost, _status_of_error(error))
                    raise
                return limit.finish(response, limiter, key, cost, decision)

            return cast(View, async_wrapper)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            checked = admit(request)
            if checked is None:
                return view(request, *args, **kwargs)
            limiter, key, cost, decision = checked
            if isinstance(decision, HttpResponse):
                return decision
            try:
                response = view(request, *args, **kwargs)
            except BaseException as error:
                limit.settle(limiter, key, cost, _status_of_error(error))
                raise
            return limit.finish(response, limiter, key, cost, decision)

        return cast(View, wrapper)

    return decorate
