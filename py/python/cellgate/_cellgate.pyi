"""Type stubs of the native module ``cellgate._cellgate`` (checked by ``mypy.stubtest``)."""

from os import PathLike
from typing import Literal, Mapping, Optional, Sequence, Union, final

from typing_extensions import disjoint_base

__all__ = [
    "Bucket",
    "DEFAULT_MAX_KEYS",
    "Decision",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidRate",
    "Limiter",
    "ManualClock",
    "NEVER_NS",
    "Policy",
    "Quota",
    "Reservation",
    "SharedMemory",
    "SharedMemoryBadFile",
    "SharedMemoryConfigMismatch",
    "SharedMemoryError",
    "SharedMemoryPermissionError",
    "SharedMemoryUnsupported",
    "__version__",
    "_RemoteCall",
    "_RemoteLimiter",
    "_RemoteReservation",
    "_duration_ns",
    "client_key",
]

_Key = Union[str, bytes, int]
_Number = Union[int, float]
_Rate = Union[str, Quota, Sequence[Union[str, Quota]]]
_Dimensions = Union[Mapping[str, _Rate], Sequence[tuple[str, _Rate]]]
_Style = Literal["ietf", "legacy", "legacy_epoch", "legacy-epoch", "anthropic", "openai", "draft-6", "draft-7"]
_Reason = Literal["limit", "table_full", "untracked", "fallback", "failed_open", "failed_closed"]
_OnFull = Literal["deny", "allow_untracked"]
_Stats = list[dict[str, int]]

NEVER_NS: int
"""``retry_after_ns`` of a cost that can never be admitted: ``2**64 - 1``."""
DEFAULT_MAX_KEYS: int
"""The default ``max_keys`` of ``Limiter`` and ``Policy``: 100,000."""
__version__: str

class InvalidArgument(ValueError):
    """An argument had a bad value. ``argument`` names the parameter."""

    argument: str

class InvalidArgumentType(TypeError):
    """An argument had the wrong type. ``argument`` names the parameter."""

    argument: str

class InvalidRate(InvalidArgument):
    """A rate string could not be parsed or is not a valid quota; ``offset`` is the byte
    offset (in its UTF-8) where it goes wrong."""

    rate: str
    offset: int

class SharedMemoryError(OSError):
    """A shared-memory table could not be opened or removed; ``path`` is the file's. A failed
    system call also sets ``errno``, ``strerror``, ``filename`` and ``operation``."""

    path: str
    operation: str

class SharedMemoryConfigMismatch(SharedMemoryError):
    """The file holds a table of another configuration. ``field`` names the first difference
    (of quota ``quota`` for a quota's field), ``file_value`` and ``our_value`` its values. A
    table is never resized: stop every worker, remove the file, start again."""

    field: str
    quota: Optional[int]
    file_value: int
    our_value: int

class SharedMemoryBadFile(SharedMemoryError):
    """The file is not a usable shared table (``problem``: ``"not_a_table"``, ``"corrupt"``,
    ``"truncated"``, ``"version"``, ``"not_regular_file"``, ``"wrong_kind"``)."""

    problem: str

class SharedMemoryUnsupported(SharedMemoryError):
    """No lock-free 128-bit atomics in hardware, or not a Unix system: a table cannot be
    shared safely here."""

class SharedMemoryPermissionError(SharedMemoryError):
    """The file is owned by another user (``file_uid``, ``our_uid``) or grants more than the
    access asked for (``file_mode``, ``allowed_mode``)."""

@final
class SharedMemory:
    """A table in a file mapping shared by every process that opens ``path`` (under
    ``/dev/shm``: memory). Pass it as ``store=`` to ``Limiter`` or ``Policy``."""

    def __new__(
        cls,
        path: Union[str, bytes, PathLike[str], PathLike[bytes]],
        *,
        access: Literal["owner", "group"] = "owner",
        allow_other_owner: bool = False,
    ) -> SharedMemory: ...
    @staticmethod
    def remove(path: Union[str, bytes, PathLike[str], PathLike[bytes]]) -> bool:
        """Removes the table's file (``False`` if there was none); stop every worker first."""
    @property
    def path(self) -> str: ...
    @property
    def access(self) -> Literal["owner", "group"]: ...
    @property
    def allow_other_owner(self) -> bool: ...
    def _allow_manual_clock(self) -> SharedMemory: ...

@final
class ManualClock:
    """A clock that moves only when told to; limiters built with it share its time.

    ``Limiter.wait`` / ``acquire`` on such a limiter without a timeout last until someone
    advances the clock (forever if nobody does); a timeout also ends them in real time.
    """

    def __new__(cls, start_ns: int = 0) -> ManualClock: ...
    def advance(self, seconds: _Number) -> None: ...
    def advance_ns(self, ns: int) -> None: ...
    def set_ns(self, ns: int) -> None: ...
    def now_ns(self) -> int: ...

@final
class Quota:
    """``rate`` cost units per ``period`` seconds, at most ``burst`` at once."""

    def __new__(
        cls, rate: int, period: _Number = 1, *, burst: Optional[int] = None, name: Optional[str] = None
    ) -> Quota: ...
    @staticmethod
    def parse(text: str, *, name: Optional[str] = None) -> Quota: ...
    @staticmethod
    def parse_many(text: str) -> list[Quota]: ...
    @staticmethod
    def per_second(rate: int, *, burst: Optional[int] = None, name: Optional[str] = None) -> Quota: ...
    @staticmethod
    def per_minute(rate: int, *, burst: Optional[int] = None, name: Optional[str] = None) -> Quota: ...
    @staticmethod
    def per_hour(rate: int, *, burst: Optional[int] = None, name: Optional[str] = None) -> Quota: ...
    @staticmethod
    def per_day(rate: int, *, burst: Optional[int] = None, name: Optional[str] = None) -> Quota: ...
    @property
    def rate(self) -> int: ...
    @property
    def period(self) -> float: ...
    @property
    def period_ns(self) -> int: ...
    @property
    def burst(self) -> int: ...
    @property
    def name(self) -> Optional[str]: ...
    @property
    def header_name(self) -> str: ...
    def named(self, name: str) -> Quota: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Decision:
    """What a limiter answered; ``bool(decision) == decision.allowed``."""

    @property
    def allowed(self) -> bool: ...
    @property
    def limit(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def retry_after(self) -> float: ...
    @property
    def reset_after(self) -> float: ...
    @property
    def retry_after_ns(self) -> int: ...
    @property
    def reset_after_ns(self) -> int: ...
    @property
    def policy(self) -> str: ...
    @property
    def reason(self) -> _Reason:
        """``"limit"`` (the key's buckets decided), ``"table_full"`` (denied: the keyed table
        had no room for this new key; ``retry_after`` is the wait until a slot can be
        reclaimed) or ``"untracked"`` (admitted without being stored, ``on_full="allow_untracked"``)."""
    @property
    def decisions(self) -> list[Decision]: ...
    def headers(self, style: _Style = "ietf", now_unix: Optional[int] = None) -> list[tuple[str, str]]:
        """The rate-limit headers, rendered by core (the same bytes in every runtime).

        ``"ietf"``: ``RateLimit-Policy`` and ``RateLimit``; ``"legacy"``: ``X-RateLimit-*``
        with the reset in seconds; ``"legacy_epoch"``: the reset as Unix seconds;
        ``"anthropic"``: ``anthropic-ratelimit-{name}-limit/-remaining/-reset`` per quota, the
        reset in RFC 3339; ``"openai"``: ``x-ratelimit-limit-{name}``, ``-remaining-``,
        ``-reset-`` (``"6m0s"``). The two per-quota styles add ``retry-after-ms`` to
        ``retry-after`` on a denial, and need quota names of ASCII letters, digits, ``-`` and
        ``_`` (else ``InvalidArgument`` naming ``style``). ``now_unix`` (default: the wall
        clock) is read by ``"legacy_epoch"`` and ``"anthropic"``. ``"draft-6"`` and ``"draft-7"``:
        the older drafts' shapes that express-rate-limit sends (``RateLimit-Policy: 100;w=60``
        with ``RateLimit-Limit``/``-Remaining``/``-Reset``, or ``RateLimit: limit=100,
        remaining=99, reset=60``)."""
    def error_body(self) -> bytes: ...
    def __bool__(self) -> bool: ...
    def __eq__(self, value: object, /) -> bool: ...

@disjoint_base
class Limiter:
    """A rate limiter with one bucket per key in a bounded table (see ``cellgate.Limiter``)."""

    def __new__(
        cls,
        rate: _Rate,
        *,
        burst: Optional[int] = None,
        algorithm: Literal["gcra", "token_bucket"] = "gcra",
        refill: Optional[Literal["greedy", "interval"]] = None,
        max_keys: int = 100000,
        on_full: _OnFull = "deny",
        block_ms: int = 0,
        clock: Optional[ManualClock] = None,
        store: Optional[SharedMemory] = None,
    ) -> Limiter: ...
    def check(self, key: _Key, cost: int = 1) -> Decision: ...
    def peek(self, key: _Key, cost: int = 1) -> Decision: ...
    def force(self, key: _Key, cost: int = 1) -> Decision: ...
    def refund(self, key: _Key, cost: int = 1) -> Decision: ...
    def reset(self, key: _Key) -> None: ...
    def now_ns(self) -> int: ...
    @property
    def clock(self) -> Optional[ManualClock]: ...
    @property
    def store(self) -> Optional[SharedMemory]: ...
    @property
    def quotas(self) -> list[Quota]: ...
    @property
    def quota_names(self) -> list[str]: ...
    @property
    def max_keys(self) -> int: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def refill(self) -> str: ...
    @property
    def on_full(self) -> _OnFull: ...
    @property
    def block_ms(self) -> int: ...
    def stats(self) -> _Stats:
        """Core's counters per quota table: ``live_keys``, ``reclaimed``, ``rejected_full``,
        ``admitted_untracked``."""

@final
class Bucket:
    """One bucket without keys."""

    def __new__(
        cls,
        rate: _Rate,
        *,
        burst: Optional[int] = None,
        algorithm: Literal["gcra", "token_bucket"] = "gcra",
        refill: Optional[Literal["greedy", "interval"]] = None,
        initial_tokens: Optional[int] = None,
        clock: Optional[ManualClock] = None,
    ) -> Bucket: ...
    def check(self, cost: int = 1) -> Decision: ...
    def peek(self, cost: int = 1) -> Decision: ...
    def force(self, cost: int = 1) -> Decision: ...
    def refund(self, cost: int = 1) -> Decision: ...
    def reset(self) -> None: ...
    def now_ns(self) -> int: ...
    @property
    def quota(self) -> Quota: ...

@final
class Reservation:
    """A reserved estimate, truthy when admitted; settle it with ``Policy.settle``."""

    @property
    def allowed(self) -> bool: ...
    @property
    def decision(self) -> Decision: ...
    @property
    def estimate(self) -> list[tuple[str, int]]: ...
    @property
    def pending(self) -> bool: ...
    def __bool__(self) -> bool: ...

@final
class Policy:
    """Named dimensions with their quotas, decided all-or-nothing per key.

    Costs are keyword arguments, one per dimension. One dimension: a call naming none costs 1.
    Several: every dimension must be named (0 is a cost), else ``InvalidArgument`` naming the
    one left out. ``settle`` keeps the estimate of a dimension it does not name.
    """

    def __new__(
        cls,
        dimensions: Union[dict[str, _Rate], Sequence[tuple[str, _Rate]]],
        *,
        max_keys: int = 100000,
        on_full: _OnFull = "deny",
        block_ms: int = 0,
        clock: Optional[ManualClock] = None,
        store: Optional[SharedMemory] = None,
    ) -> Policy: ...
    def check(self, key: _Key, **costs: int) -> Decision: ...
    def peek(self, key: _Key, **costs: int) -> Decision: ...
    def force(self, key: _Key, **costs: int) -> Decision: ...
    def refund(self, key: _Key, **costs: int) -> Decision: ...
    def reset(self, key: _Key) -> None: ...
    def reserve(self, key: _Key, **estimate: int) -> Reservation: ...
    def settle(self, reservation: Reservation, **actual: int) -> Decision: ...
    def now_ns(self) -> int: ...
    @property
    def store(self) -> Optional[SharedMemory]: ...
    @property
    def dimensions(self) -> list[str]: ...
    @property
    def quota_names(self) -> list[str]: ...
    @property
    def max_keys(self) -> int: ...
    @property
    def on_full(self) -> _OnFull: ...
    @property
    def block_ms(self) -> int: ...
    def stats(self) -> _Stats: ...

def client_key(address: str, ipv6_prefix: int = 56) -> bytes: ...
def _duration_ns(seconds: _Number, argument: str) -> int: ...

@final
class _RemoteCall:
    """One encoded Redis call, held until its reply is decided (core's ``RemoteCall``)."""

@final
class _RemoteLimiter:
    """The native half of ``cellgate.redis``: core's ``RemoteLimiter`` (script, arguments,
    reply decoding, outage policy)."""
    def __new__(
        cls,
        rate: Optional[_Rate] = None,
        *,
        dimensions: Optional[_Dimensions] = None,
        burst: Optional[int] = None,
        algorithm: Literal["gcra", "token_bucket"] = "gcra",
        refill: Optional[Literal["greedy", "interval"]] = None,
        max_keys: Optional[int] = None,
        on_full: _OnFull = "deny",
        clock: Optional[ManualClock] = None,
        prefix: Optional[str] = None,
        outage: Literal["fallback", "open", "closed"] = "fallback",
        key_secret: Optional[bytes] = None,
        expiry_grace_ms: Optional[int] = None,
        outage_retry_after_ms: Optional[int] = None,
        block_ms: int = 0,
    ) -> _RemoteLimiter: ...
    @property
    def script(self) -> str: ...
    @property
    def sha1(self) -> str: ...
    @property
    def params(self) -> bytes: ...
    @property
    def outage(self) -> Literal["fallback", "open", "closed"]: ...
    @property
    def quota_names(self) -> list[str]: ...
    @property
    def dimensions(self) -> list[str]: ...
    def encode(
        self, op: str, key: _Key, cost: Union[int, Mapping[str, int], None] = None, now_ns: Optional[int] = None
    ) -> tuple[bytes, bytes, _RemoteCall]: ...
    def encode_reserve(
        self, key: _Key, estimate: Union[int, Mapping[str, int], None] = None, now_ns: Optional[int] = None
    ) -> tuple[bytes, bytes, _RemoteCall]: ...
    def settle(
        self,
        reservation: _RemoteReservation,
        actual: Union[int, Mapping[str, int], None] = None,
        now_ns: Optional[int] = None,
    ) -> Union[tuple[bytes, bytes, _RemoteCall], Decision]: ...
    def decode(self, call: _RemoteCall, reply: object) -> Optional[Decision]: ...
    def decode_reserve(
        self, call: _RemoteCall, reply: object
    ) -> Optional[tuple[Decision, Optional[_RemoteReservation], list[int]]]: ...
    def outage_decision(self, call: _RemoteCall) -> Decision: ...
    def outage_reserve(self, call: _RemoteCall) -> tuple[Decision, Optional[_RemoteReservation], list[int]]: ...

@final
class _RemoteReservation:
    """An admitted reserve's charge (core's ``RemoteReservation``), taken by its settle."""
    @property
    def pending(self) -> bool: ...
    @property
    def remote(self) -> bool: ...
