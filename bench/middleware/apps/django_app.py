"""One Django app, three variants that differ only in the limiter on the view, chosen by the
environment variable ``BENCH_VARIANT``; served by gunicorn as ``django_app:app`` (the same
gthread worker as the Flask app).

``none``: no limiter. ``cellgate``: ``cellgate.django.ratelimit`` on the view (draft-10
``RateLimit``/``RateLimit-Policy`` headers). ``peer``: django-ratelimit's ``@ratelimit`` on the
view over Django's in-memory (locmem) cache, ``block=True`` (it sends no rate-limit headers).
Both decorators key by the client address and admit every request of the run (a billion a
minute). No database, no other middleware.
"""

from __future__ import annotations

import os

import django
from django.conf import settings

VARIANT = os.environ.get("BENCH_VARIANT", "none")
if VARIANT not in ("none", "cellgate", "peer"):
    raise ValueError(f"BENCH_VARIANT: expected none, cellgate or peer, got {VARIANT!r}")

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY="cellgate-bench",
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
    ROOT_URLCONF=__name__,
    DATABASES={},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    # django-ratelimit's system check refuses a cache it cannot verify as shared; locmem is
    # per process, which is what every other in-memory peer here is too.
    SILENCED_SYSTEM_CHECKS=["django_ratelimit.E003", "django_ratelimit.W001"],
)
django.setup()

from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

LIMIT = "1000000000/minute"


def index(request: object) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


if VARIANT == "cellgate":
    from cellgate import Limiter
    from cellgate.django import ratelimit

    index = ratelimit(Limiter(LIMIT), key="ip")(index)
elif VARIANT == "peer":
    from django_ratelimit.decorators import ratelimit as peer_ratelimit

    index = peer_ratelimit(key="ip", rate="1000000000/m", block=True)(index)

urlpatterns = [path("", index)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

app = get_wsgi_application()
