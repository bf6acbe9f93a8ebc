"""The demo app (``make demo-py``): FastAPI limited to 5 requests per 10 seconds per client,
in three lines of cellgate."""

from fastapi import FastAPI

from cellgate import Limiter
from cellgate.asgi import RateLimitMiddleware

app = FastAPI()
app.add_middleware(RateLimitMiddleware, limiter=Limiter("5/10 seconds"))


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "hello"}
