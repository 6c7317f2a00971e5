"""The per-key limiter and the redaction helpers, on their own."""

from __future__ import annotations

import pytest

from orchestrator.auth.limits import Bucket, RateLimiter, _duration
from orchestrator.auth.principal import OPEN_ACCESS, Principal
from orchestrator.errors import RateLimited
from orchestrator.redaction import mask_url, redact
from orchestrator.settings import Settings

ALICE = Principal(key_id="key_a", user_id="alice")


def limiter(**env: str) -> RateLimiter:
    return RateLimiter(Settings.from_env(env))


def test_bucket_refills_at_the_steady_rate() -> None:
    bucket = Bucket(capacity=60.0, per_second=1.0)
    bucket.updated = 0.0
    for _ in range(60):
        assert bucket.take(1, now=0.0) == 0.0
    assert bucket.take(1, now=0.0) == pytest.approx(1.0)  # one more in a second
    assert bucket.take(1, now=0.5) == pytest.approx(0.5)
    assert bucket.take(1, now=1.0) == 0.0
    headers = bucket.headers("requests", now=1.0)
    assert headers == {"x-ratelimit-limit-requests": "60",
                       "x-ratelimit-remaining-requests": "0",
                       "x-ratelimit-reset-requests": "1m0s"}


def test_a_charge_larger_than_the_allowance_passes_once_then_waits() -> None:
    bucket = Bucket(capacity=10.0, per_second=1.0)
    bucket.updated = 0.0
    assert bucket.take(25, now=0.0) == 0.0  # a long upload on a full bucket
    assert bucket.level == -15.0
    assert bucket.take(1, now=10.0) == pytest.approx(6.0)  # repaid before anything else


async def test_request_limit_raises_with_retry_after() -> None:
    limits = limiter(RATE_LIMIT_REQUESTS_PER_MINUTE="2")
    await limits.request(ALICE)
    assert (await limits.request(ALICE))["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(RateLimited) as over:
        await limits.request(ALICE)
    assert over.value.status == 429 and over.value.headers["retry-after"] == "30"
    assert int(over.value.headers["retry-after-ms"]) > 29000
    assert await limits.request(Principal(key_id="key_b", user_id="bob"))  # its own bucket


async def test_open_access_and_zero_limits_are_unlimited() -> None:
    limits = limiter(RATE_LIMIT_REQUESTS_PER_MINUTE="1", RATE_LIMIT_REALTIME_SESSIONS="1")
    for _ in range(5):
        assert await limits.request(OPEN_ACCESS) == {}
    unlimited = limiter(RATE_LIMIT_REQUESTS_PER_MINUTE="0",
                        RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE="0")
    for _ in range(5):
        assert await unlimited.request(ALICE) == {} and await unlimited.audio(ALICE, 1000) == {}


async def test_realtime_slots_are_released_once() -> None:
    limits = limiter(RATE_LIMIT_REALTIME_SESSIONS="2")
    first, second = await limits.open_realtime(ALICE), await limits.open_realtime(ALICE)
    with pytest.raises(RateLimited, match="2 realtime sessions"):
        await limits.open_realtime(ALICE)
    first()
    first()  # a second release of the same slot changes nothing
    third = await limits.open_realtime(ALICE)
    with pytest.raises(RateLimited):
        await limits.open_realtime(ALICE)
    second()
    third()
    assert limits._open == {}


@pytest.mark.parametrize(("seconds", "text"), [(0.02, "20ms"), (0.0, "0ms"), (1.0, "1s"),
                                               (59.2, "1m0s"), (360, "6m0s"), (61, "1m1s")])
def test_reset_durations_in_openai_format(seconds: float, text: str) -> None:
    assert _duration(seconds) == text


@pytest.mark.parametrize(("url", "shown"), [
    ("mysql+aiomysql://u:p%40ss@db:3306/x?charset=utf8mb4",
     "mysql+aiomysql://u:***@db:3306/x?charset=utf8mb4"),
    ("http://root:pw@[::1]:19530", "http://root:***@[::1]:19530"),
    ("http://milvus:19530", "http://milvus:19530"),
    ("sqlite+aiosqlite:///data/voicechat.db", "sqlite+aiosqlite:///data/voicechat.db"),
    ("http://u:pw@host:notaport/x", "http://u:***@host:notaport/x"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "session 'abc' not found; see http://example.com/docs"
    assert redact(text) == text
    assert redact("key vck_abcdefgh1234 leaked") == "key vck_*** leaked"
