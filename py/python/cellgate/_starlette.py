"""Per-route limits for Starlette and FastAPI: ``cellgate.asgi.limit`` (a decorator of an
endpoint) and ``cellgate.asgi.limit_dependency`` (a FastAPI dependency). Imported on first
use, so that ``cellgate.asgi`` itself needs no Starlette."""

from __future__ import annotations

import functools
import inspect
import json
import typing
from typing import Any, Awaitable, Callable, Iterable, Optional, TypeVar, Union, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

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
    check_allow_list,
    check_count,
    check_on_denied,
    check_options,
    checked_denial,
    reject_unknown_options,
)
from cellgate._limiter import AnyLimiter, Key

F = TypeVar("F", bound=Callable[..., Any])

RESPONSE_PARAMETER = "cellgate_response"
"""The keyword-only parameter the decorator adds to a FastAPI endpoint's signature, so that
FastAPI hands it the ``Response`` whose headers it merges into the answer of an endpoint that
returns a plain value (a dict, a model). Starlette never passes it."""


class RateLimitExceeded(HTTPException):
    """What ``limit_dependency`` raises for a denied request: an ``HTTPException`` with the
    denial's status (429) and headers, so that FastAPI's own handler answers it (never a 500)
    with ``{"detail": {"error": "rate_limited", "retry_after": N}}``. Register
    ``rate_limit_exceeded_handler`` for core's body itself (or ``on_denied``'s)."""

    def __init__(self, denial: Denial, decision: Decision) -> None:
        self.denial = denial
        self.decision = decision
        headers = {name: value for name, value in denial.headers if name.lower() != "content-type"}
        try:
            detail: Any = json.loads(denial.body)
        except ValueError:
            detail = denial.body.decode("utf-8", "replace")
        super().__init__(denial.status, detail=detail, headers=headers)


async def rate_limit_exceeded_handler(request: Request, exc: Exception) -> Response:
    """``app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)``: answers
    a ``RateLimitExceeded`` with its ``Denial`` as it is (core's 429 body by default)."""
    denial = cast(RateLimitExceeded, exc).denial
    return _response(denial)


def _response(denial: Denial) -> Response:
    headers = dict(denial.headers)
    media_type = headers.pop("Content-Type", None)
    return Response(denial.body, status_code=denial.status, headers=headers, media_type=media_type)


Decided = tuple[Key, int, Optional[Decision], Optional[Denial]]
"""A request's key, cost, decision and denial (``RouteLimit.decide``)."""


class RouteLimit:
    """The options of one route's limit, checked once (as ``RateLimitMiddleware`` checks
    them), and the decision of one request."""

    def __init__(
        self,
        where: str,
        limiter: AnyLimiter,
        key: Optional[Callable[[Request], Key]],
        cost: Union[int, Callable[[Request], int]],
        header_style: HeaderStyle,
        headers_on_success: bool,
        ipv6_prefix: int,
        count: CountMode,
        count_when: Optional[Callable[[int], bool]],
        on_denied: Optional[Callable[[Request, Decision], Denial]],
        unknown: dict[str, Any],
        allow_list: Optional[Iterable[Union[str, bytes]]] = None,
    ) -> None:
        reject_unknown_options(where, unknown)
        self.allow = check_allow_list(allow_list, ipv6_prefix)
        check_options(lambda: None, limiter, key, cost, None, header_style, headers_on_success, ipv6_prefix, awaits=True)
        from cellgate.redis import AsyncRedisLimiter

        self.where = where
        # An AsyncRedisLimiter is awaited: by async endpoints and the dependency only.
        self.awaits = isinstance(limiter, AsyncRedisLimiter)
        self.counts = check_count(count, count_when)
        check_on_denied(on_denied)
        self.limiter: Any = limiter
        self.key = key
        self.cost = cost
        self.header_style = header_style
        self.headers_on_success = headers_on_success
        self.ipv6_prefix = ipv6_prefix
        self.on_denied = on_denied
        self._misconfiguration = MisconfigurationLog()

    def _key_and_cost(self, request: Request) -> tuple[Key, Optional[int]]:
        """The request's key and cost; the cost None when the key is on the allow list."""
        if self.key is not None:
            key = self.key(request)
        else:
            client = request.scope.get("client")
            key = address_key(client[0] if client else None, self.ipv6_prefix)
        if allowed_key(self.allow, key):
            return key, None
        return key, self.cost(request) if callable(self.cost) else self.cost

    def _misconfigured(self, key: Key, cost: int, error: Exception) -> Decided:
        self._misconfiguration.report(self.where, error)
        return key, cost, None, Denial(500, [("Content-Type", "application/json")], MISCONFIGURED_BODY)

    def _judged(self, request: Request, key: Key, cost: int, decision: Decision) -> Decided:
        request.state.rate_limit = decision
        if decision.allowed:
            return key, cost, decision, None
        if self.on_denied is None:
            return key, cost, decision, Denial.default(decision, self.header_style)
        return key, cost, decision, checked_denial(self.on_denied(request, decision))

    def decide(self, request: Request) -> Decided:
        """The request's key, cost, decision (also put in ``request.state.rate_limit``; None
        when the key or cost is one the limiter refuses) and the ``Denial`` to answer it with
        (None when admitted); both None when the key is on the allow list (the endpoint runs
        unlimited, without headers). For a limiter that is not awaited."""
        key, cost = self._key_and_cost(request)
        if cost is None:
            return key, 0, None, None
        try:
            decision = self.limiter.check(key, cost)
        except (InvalidArgument, InvalidArgumentType) as error:
            return self._misconfigured(key, cost, error)
        return self._judged(request, key, cost, decision)

    async def decide_async(self, request: Request) -> Decided:
        """As ``decide``, awaiting an ``AsyncRedisLimiter`` (never blocking the loop)."""
        if not self.awaits:
            return self.decide(request)
        key, cost = self._key_and_cost(request)
        if cost is None:
            return key, 0, None, None
        try:
            decision = await self.limiter.check(key, cost)
        except (InvalidArgument, InvalidArgumentType) as error:
            return self._misconfigured(key, cost, error)
        return self._judged(request, key, cost, decision)

    def headers(self, decision: Decision) -> list[tuple[str, str]]:
        return decision.headers(self.header_style) if self.headers_on_success else []

    def settle(self, key: Key, cost: int, status: int) -> None:
        if self.counts is not None and not self.counts(status):
            self.limiter.refund(key, cost)

    async def settle_async(self, key: Key, cost: int, status: int) -> None:
        if self.counts is not None and not self.counts(status):
            refunded = self.limiter.refund(key, cost)
            if self.awaits:
                await refunded


def _find_request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Request):
            return value
    raise TypeError(
        "cellgate.asgi.limit: the endpoint was called without a starlette Request; give it a "
        "`request: Request` parameter"
    )


def _status_of(result: Any, response: Optional[Response]) -> int:
    if isinstance(result, Response):
        return result.status_code
    if response is not None and response.status_code:
        return response.status_code
    return 200


def _status_of_error(error: BaseException) -> int:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else STATUS_OF_AN_ERROR


def _with_response_parameter(func: Callable[..., Any], wrapper: Callable[..., Any]) -> None:
    """Gives ``wrapper`` the signature of ``func`` (annotations resolved in ``func``'s module)
    plus the keyword-only ``cellgate_response: Response`` FastAPI fills in."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # an annotation that cannot be resolved: FastAPI would fail on it too
        hints = {}
    parameters = [
        parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
        for parameter in signature.parameters.values()
    ]
    if RESPONSE_PARAMETER in signature.parameters:
        _raise(InvalidArgument, RESPONSE_PARAMETER, "is a parameter name cellgate.asgi.limit adds; rename it")
    extra = inspect.Parameter(RESPONSE_PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Response)
    variadic = [index for index, parameter in enumerate(parameters) if parameter.kind is inspect.Parameter.VAR_KEYWORD]
    parameters.insert(variadic[0] if variadic else len(parameters), extra)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=hints.get("return", signature.return_annotation)
    )


def decorate(route: RouteLimit, func: F) -> F:
    """The endpoint ``func`` limited by ``route``: a denied request is answered with its
    ``Denial`` (a Response, never an exception); an admitted one gets the headers."""

    if inspect.iscoroutinefunction(func):
        async_func = cast(Callable[..., Awaitable[Any]], func)

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            response: Optional[Response] = kwargs.pop(RESPONSE_PARAMETER, None)
            key, cost, decision, denial = await route.decide_async(_find_request(args, kwargs))
            if denial is None and decision is None:
                return await async_func(*args, **kwargs)
            if denial is not None or decision is None:
                return _response(cast(Denial, denial))
            try:
                result = await async_func(*args, **kwargs)
            except BaseException as error:
                await route.settle_async(key, cost, _status_of_error(error))
                raise
            _add_headers(route, decision, result, response)
            await route.settle_async(key, cost, _status_of(result, response))
            return result

        _with_response_parameter(func, async_wrapper)
        return cast(F, async_wrapper)

    if route.awaits:
        _raise(
            InvalidArgumentType,
            "limiter",
            f"is an AsyncRedisLimiter, which {route.where} awaits: only an async endpoint "
            f"({getattr(func, '__name__', func)!r} is sync) can; use cellgate.redis.RedisLimiter here",
        )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        response: Optional[Response] = kwargs.pop(RESPONSE_PARAMETER, None)
        key, cost, decision, denial = route.decide(_find_request(args, kwargs))
        if denial is None and decision is None:
            return func(*args, **kwargs)
        if denial is not None or decision is None:
            return _response(cast(Denial, denial))
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            route.settle(key, cost, _status_of_error(error))
            raise
        _add_headers(route, decision, result, response)
        route.settle(key, cost, _status_of(result, response))
        return result

    _with_response_parameter(func, wrapper)
    return cast(F, wrapper)


def _add_headers(route: RouteLimit, decision: Decision, result: Any, response: Optional[Response]) -> None:
    headers = route.headers(decision)
    target = result if isinstance(result, Response) else response
    if target is not None:
        for name, value in headers:
            target.headers.append(name, value)


def dependency(route: RouteLimit) -> Callable[[Request, Response], Awaitable[Optional[Decision]]]:
    """A FastAPI dependency limiting the routes it is given to: returns the admitting
    decision (and sets its headers on the answer), raises ``RateLimitExceeded`` otherwise."""

    async def rate_limit(request: Request, response: Response) -> Optional[Decision]:
        key, cost, decision, denial = await route.decide_async(request)
        if decision is None and denial is None:
            return None  # an allowed key: no decision, no headers
        if decision is None:
            raise HTTPException(500, detail="rate_limit_misconfigured")
        if denial is not None:
            raise RateLimitExceeded(denial, decision)
        for name, value in route.headers(decision):
            response.headers.append(name, value)
        return decision

    return rate_limit
