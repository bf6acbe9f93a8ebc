"""The host-wide demo app (``make demo-py``): FastAPI under ``uvicorn --workers 4``, limited to
5 requests per minute per client for the whole host, whichever worker answers. Each worker
opens the same shared-memory table ($CELLGATE_DEMO_TABLE, under /dev/shm); every response
says which worker's pid answered it."""

import os

from fastapi import FastAPI, Request

from cellgate import Limiter, SharedMemory
from cellgate.asgi import RateLimitMiddleware

app = FastAPI()
app.add_middleware(
    RateLimitMiddleware,
    limiter=Limiter("5/minute", store=SharedMemory(os.environ["CELLGATE_DEMO_TABLE"])),
)


@app.middleware("http")
async def worker_pid(request: Request, call_next):  # type: ignore[no-untyped-def]
    response = await call_next(request)
    response.headers["x-worker-pid"] = str(os.getpid())
    return response


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "hello"}
