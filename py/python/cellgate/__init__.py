"""cellgate: exact, lock-free rate limiting for Python, on one Rust core.

::

    from cellgate import Limiter
    limiter = Limiter("100/minute", burst=20)
    decision = limiter.check("user:42")
    if not decision:
        ...  # 429, Retry-After: decision.retry_after seconds

GCRA and token bucket with exact integer arithmetic, keyed with bounded memory, several
quotas at once ("10/second; 1000/day"), policies over several dimensions with reserve and
settle, asyncio and blocking waiting, a decorator, ASGI (``cellgate.asgi``) and WSGI
(``cellgate.wsgi``) middleware, and host-wide limits shared by every worker process
(``store=SharedMemory("/dev/shm/myapp")``). See the package README for the full guide.
"""

from cellgate._cellgate import (
    DEFAULT_MAX_KEYS,
    NEVER_NS,
    Bucket,
    Decision,
    InvalidArgument,
    InvalidArgumentType,
    InvalidRate,
    ManualClock,
    Policy,
    Quota,
    Reservation,
    SharedMemory,
    SharedMemoryBadFile,
    SharedMemoryConfigMismatch,
    SharedMemoryError,
    SharedMemoryPermissionError,
    SharedMemoryUnsupported,
    __version__,
    client_key,
)
from cellgate._http import CountMode, Denial
from cellgate._limiter import Key, Limiter, RateLimited

__all__ = [
    "DEFAULT_MAX_KEYS",
    "NEVER_NS",
    "Bucket",
    "CountMode",
    "Decision",
    "Denial",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidRate",
    "Key",
    "Limiter",
    "ManualClock",
    "Policy",
    "Quota",
    "RateLimited",
    "Reservation",
    "SharedMemory",
    "SharedMemoryBadFile",
    "SharedMemoryConfigMismatch",
    "SharedMemoryError",
    "SharedMemoryPermissionError",
    "SharedMemoryUnsupported",
    "__version__",
    "client_key",
]
