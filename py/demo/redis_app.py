"""Instance B of ``make demo-redis``: FastAPI under uvicorn, limited through Redis by an
``AsyncRedisLimiter`` with the same rate and prefix as the Express instance beside it, so the two
share one limit per client (the same Redis key, the same record, decided by the same script)."""

import contextlib
import os
from collections.abc import AsyncIterator

import redis.asyncio
from fastapi import FastAPI, Request

from cellgate.asgi import RateLimitMiddleware
from cellgate.redis import AsyncRedisLimiter

client = redis.asyncio.Redis.from_url(os.environ["CELLGATE_REDIS_URL"])


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await client.aclose()


app = FastAPI(lifespan=lifespan)
app.add_middleware(RateLimitMiddleware, limiter=AsyncRedisLimiter("5 per 10 seconds", client=client, prefix="demo:"))


@app.get("/hello")
async def hello(request: Request) -> dict[str, object]:
    return {"instance": "B", "remaining": request.state.rate_limit.remaining}
