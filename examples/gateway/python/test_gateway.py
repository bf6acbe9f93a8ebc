"""End-to-end tests of gateway.py: the fake model and the gateway run as processes on free
loopback ports (stopped in ``finally``, however a test ends), driven over HTTP with httpx.

The gateway runs with ``--frozen-clock``: no quota refills between requests, so every
remaining count in the headers is exact. Each test uses its own API key (its own buckets).
"""

from __future__ import annotations

import json
import re
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

import httpx
import pytest
from http_sfv.item import Item

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # processes.py, shared with demo.py
from processes import start, stop  # noqa: E402

FAKE_MODEL = HERE.parent / "fake_model.py"
GATEWAY = HERE / "gateway.py"
DIMENSIONS = ("requests", "input_tokens", "output_tokens")
LIMITS = {"requests": 60, "input_tokens": 100_000, "output_tokens": 20_000}


@contextmanager
def servers(*gateway_args: str) -> Iterator[str]:
    """The fake model and a gateway in front of it; yields the gateway's URL."""
    processes = []
    try:
        model, model_url = start([sys.executable, str(FAKE_MODEL), "--port", "0"])
        processes.append(model)
        gateway, url = start(
            [sys.executable, str(GATEWAY), "--port", "0", "--upstream", model_url, "--frozen-clock", *gateway_args]
        )
        processes.append(gateway)
        yield url
    finally:
        for process in reversed(processes):
            stop(process)


@pytest.fixture(scope="module")
def gateway() -> Iterator[httpx.Client]:
    with servers() as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def request(
    model: str, max_tokens: int, content: Any = "hi", *, stream: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
        **extra,
    }


def post(client: httpx.Client, key: str, body: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/messages", json=body, headers={"x-api-key": key})


# Strict parsers of the header values.


def sf_integer(value: str) -> int:
    """An RFC 9651 Integer (no sign, no spaces, no fraction), parsed by http_sfv."""
    item = Item()
    item.parse(value.encode("ascii"))
    assert type(item.value) is int and item.value >= 0 and not item.params, value
    return item.value


def delay_seconds(value: str) -> int:
    """``Retry-After`` as RFC 9110 delay-seconds: ``1*DIGIT``."""
    assert re.fullmatch(r"[0-9]+", value), value
    return int(value)


def rfc3339_utc_s(value: str) -> float:
    """An RFC 3339 UTC time (``2026-12-03T08:06:40Z``), as seconds from now."""
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", value), value
    at = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return at.timestamp() - time.time()


def duration_s(value: str) -> float:
    """An OpenAI-style duration: ``20ms``, ``59s``, ``6m0s``, ``1h0m0s``."""
    match = re.fullmatch(r"([0-9]+)ms|(?:([0-9]+)h)?(?:([0-9]+)m)?([0-9]+)s", value)
    assert match, value
    if match.group(1) is not None:
        return int(match.group(1)) / 1000
    hours, minutes, seconds = (int(group or 0) for group in match.groups()[1:])
    return hours * 3600 + minutes * 60 + seconds


def rate_limits(response: httpx.Response, style: str = "anthropic") -> dict[str, dict[str, float]]:
    """Every dimension's ``limit``, ``remaining`` and ``reset`` (seconds from now), parsed
    strictly; asserts that each of the nine headers is there exactly once."""
    result = {}
    for dimension in DIMENSIONS:
        name = dimension.replace("_", "-")
        fields: dict[str, float] = {}
        for field in ("limit", "remaining", "reset"):
            header = f"anthropic-ratelimit-{name}-{field}" if style == "anthropic" else f"x-ratelimit-{field}-{name}"
            values = response.headers.get_list(header)
            assert len(values) == 1, (header, values)
            if field == "reset":
                fields[field] = rfc3339_utc_s(values[0]) if style == "anthropic" else duration_s(values[0])
            else:
                fields[field] = sf_integer(values[0])
        assert fields["limit"] == LIMITS[dimension]
        result[dimension] = fields
    return result


def remaining(response: httpx.Response, style: str = "anthropic") -> tuple[int, int, int]:
    limits = rate_limits(response, style)
    return tuple(int(limits[dimension]["remaining"]) for dimension in DIMENSIONS)  # type: ignore[return-value]


def retry_after(response: httpx.Response) -> Optional[tuple[int, int]]:
    """``(retry-after, retry-after-ms)``, both or neither."""
    seconds, millis = response.headers.get("retry-after"), response.headers.get("retry-after-ms")
    assert (seconds is None) == (millis is None)
    return None if seconds is None else (delay_seconds(seconds), sf_integer(millis or ""))


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def test_exact_remaining_after_a_sequence(gateway: httpx.Client) -> None:
    # "hello": 5 bytes -> ceil(5 / 4) + 4 = 6 input tokens; 10 output tokens of 100 reserved.
    first = post(gateway, "seq", request("echo-10", 100, "hello"))
    assert first.status_code == 200
    assert remaining(first) == (59, 100_000 - 6, 20_000 - 10)
    assert retry_after(first) is None
    # system (14 bytes) + two messages (8 + 2 bytes): ceil(24 / 4) + 2 * 4 = 14.
    second_body = {
        "model": "echo-7",
        "max_tokens": 50,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "hi there"}, {"role": "user", "content": "ok"}],
    }
    second = post(gateway, "seq", second_body)
    assert remaining(second) == (58, 100_000 - 6 - 14, 20_000 - 10 - 7)
    # Text blocks, multibyte: "naïve café €" is 16 bytes of UTF-8 -> 4 + 4 = 8.
    blocks = [{"type": "text", "text": "naïve "}, {"type": "text", "text": "café €"}]
    third = post(gateway, "seq", request("echo-3", 3, blocks))
    assert remaining(third) == (57, 100_000 - 28, 20_000 - 20)
    # The model reports its own input count (not ours): it is not what is charged.
    assert third.json()["usage"]["input_tokens"] != 8
    limits = rate_limits(third)
    assert 0 < limits["requests"]["reset"] <= 4  # 3 requests of 60/min: full again in 3 s
    # Another key has its own buckets.
    assert remaining(post(gateway, "seq-other", request("echo-1", 1, "hello"))) == (59, 99_994, 19_999)


def test_streamed_response_is_settled_at_its_end(gateway: httpx.Client) -> None:
    with gateway.stream("POST", "/v1/messages", json=request("echo-12", 200, stream=True), headers={"x-api-key": "stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        # Headers go out before the body: they show the reservation (200 output tokens).
        assert remaining(response) == (59, 100_000 - 5, 20_000 - 200)
        response.read()
    payloads = events(response)
    assert sum(p["type"] == "content_block_delta" for p in payloads) == 12
    assert payloads[-2]["usage"]["output_tokens"] == 12
    # Settled with the reported 12 before the stream's end reached the client.
    after = post(gateway, "stream", request("echo-0", 1))
    assert remaining(after) == (58, 100_000 - 10, 20_000 - 12)


def test_upstream_error_refunds_the_output_reservation(gateway: httpx.Client) -> None:
    failed = post(gateway, "error", request("error", 4000))
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "api_error"
    # The request and its input are charged; the 4000 output tokens are all refunded.
    assert remaining(failed) == (59, 100_000 - 5, 20_000)
    streamed = post(gateway, "error", request("error", 4000, stream=True))
    assert streamed.status_code == 500
    assert remaining(streamed) == (58, 100_000 - 10, 20_000)
    # The upstream closing the connection without an answer: 502, refunded too.
    cut = post(gateway, "error", request("cut-5", 4000))
    assert cut.status_code == 502
    assert remaining(cut) == (57, 100_000 - 15, 20_000)


def test_stream_cut_by_the_upstream_is_settled_with_what_was_streamed(gateway: httpx.Client) -> None:
    response = post(gateway, "cut", request("cut-5", 1000, stream=True))
    payloads = events(response)
    assert sum(p["type"] == "content_block_delta" for p in payloads) == 5
    assert payloads[-1] == {"type": "error", "error": {"type": "upstream_error"}}
    # 5 tokens of 4 bytes were streamed: ceil(20 / 4) = 5 charged, 995 refunded.
    after = post(gateway, "cut", request("echo-0", 1))
    assert remaining(after) == (58, 100_000 - 10, 20_000 - 5)


def test_client_sent_usage_changes_nothing(gateway: httpx.Client) -> None:
    honest = post(gateway, "honest", request("echo-40", 100))
    lie = {"input_tokens": 0, "output_tokens": 0}
    lying = post(gateway, "lying", request("echo-40", 100, usage=lie, metadata={"usage": lie}))
    assert lying.status_code == honest.status_code == 200
    assert remaining(lying) == remaining(honest) == (59, 100_000 - 5, 20_000 - 40)
    streamed = post(gateway, "lying", request("echo-40", 100, stream=True, usage=lie))
    assert streamed.status_code == 200
    after = post(gateway, "lying", request("echo-0", 1, usage={"output_tokens": -1000}))
    assert remaining(after) == (57, 100_000 - 15, 20_000 - 80)


def test_client_disconnect_mid_stream_is_settled(gateway: httpx.Client) -> None:
    # hang-7: 7 tokens, then the model waits 30 s. The client leaves after the 7th.
    body = request("hang-7", 500, stream=True)
    with gateway.stream("POST", "/v1/messages", json=body, headers={"x-api-key": "leaver"}) as response:
        assert remaining(response) == (59, 100_000 - 5, 20_000 - 500)
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data: ") and '"content_block_delta"' in line
            if seen == 7:
                break
    # Closed. The gateway settles 7 (what was streamed) once it notices: poll with requests
    # that net 0 output tokens (1 reserved, 0 used) until it has.
    deadline = time.monotonic() + 10
    polls = 0
    while True:
        polls += 1
        after = post(gateway, "leaver", request("echo-0", 1))
        requests_left, input_left, output_left = remaining(after)
        if output_left != 20_000 - 500 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (requests_left, input_left, output_left) == (59 - polls, 100_000 - 5 * (1 + polls), 20_000 - 7)


def test_429_when_requests_are_exhausted(gateway: httpx.Client) -> None:
    for _ in range(60):
        last = post(gateway, "burst", request("echo-0", 1))
        assert last.status_code == 200
    assert remaining(last) == (0, 100_000 - 300, 20_000)
    denied = post(gateway, "burst", request("echo-0", 1))
    assert denied.status_code == 429
    assert denied.json() == {"error": "rate_limited", "retry_after": 1}
    assert remaining(denied) == remaining(last)  # a denial charges nothing
    assert retry_after(denied) == (1, 1000)  # one request of 60/min: 1 s


def test_429_when_output_tokens_are_in_debt(gateway: httpx.Client) -> None:
    # The upstream reports 25,000 output tokens where 100 were reserved: the excess is
    # charged anyway, so the key owes 5,000 tokens.
    overrun = post(gateway, "debt", request("overrun-25000", 100))
    assert overrun.status_code == 200
    assert remaining(overrun) == (59, 99_995, 0)
    assert rate_limits(overrun)["output_tokens"]["reset"] == pytest.approx(75, abs=2)  # 25k at 20k/min
    assert retry_after(overrun) is not None  # in debt: the wait until it is repaid
    denied = post(gateway, "debt", request("echo-1", 100))
    assert denied.status_code == 429
    # 5,000 owed + 100 asked, at 20,000 per 60 s: 15.3 s.
    assert retry_after(denied) == (16, 15_300)
    assert remaining(denied) == (59, 99_995, 0)


def test_429_that_can_never_be_admitted_has_no_retry_after(gateway: httpx.Client) -> None:
    huge = "x" * 400_000  # 100,000 + 4 input tokens: above the burst
    denied = post(gateway, "huge", request("echo-1", 1, huge))
    assert denied.status_code == 429
    assert denied.json() == {"error": "rate_limited", "retry_after": None}
    assert retry_after(denied) is None
    assert remaining(denied) == (60, 100_000, 20_000)


def test_bad_requests_are_refused_and_charge_nothing(gateway: httpx.Client) -> None:
    assert gateway.post("/v1/messages", json=request("echo-1", 1)).status_code == 401
    assert post(gateway, "bad", {"model": "echo-1", "messages": []}).status_code == 400
    assert post(gateway, "bad", request("echo-1", 4097)).status_code == 400
    assert post(gateway, "bad", request("echo-1", True)).status_code == 400
    assert post(gateway, "bad", request("echo-1", 1, [{"type": "image"}])).status_code == 400
    bearer = gateway.post("/v1/messages", json=request("echo-1", 1), headers={"authorization": "Bearer bad"})
    assert bearer.status_code == 200
    assert remaining(bearer) == (59, 99_995, 19_999)


def test_openai_style() -> None:
    with servers("--header-style", "openai") as url, httpx.Client(base_url=url, timeout=10) as client:
        first = post(client, "k", request("echo-10", 100))
        assert first.status_code == 200
        assert remaining(first, "openai") == (59, 99_995, 19_990)
        assert not any(name.startswith("anthropic-") for name in first.headers)
        limits = rate_limits(first, "openai")
        assert limits["requests"]["reset"] == 1  # "1s"
        assert limits["output_tokens"]["reset"] == pytest.approx(0.03, abs=0.001)  # 10 of 20k/min: "30ms"
        for _ in range(59):
            post(client, "k", request("echo-0", 1))
        denied = post(client, "k", request("echo-0", 1))
        assert denied.status_code == 429
        assert retry_after(denied) == (1, 1000)
        assert remaining(denied, "openai") == (0, 100_000 - 300, 19_990)
