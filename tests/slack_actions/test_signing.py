"""Slack's v0 request signature, the age limit and the replay guard, as pure functions."""

from __future__ import annotations

import pytest

from toilless.slack_actions.signing import ReplayGuard, SignatureError, sign, verify

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
NOW = 1_700_000_000.0
STAMP = str(int(NOW))


def test_known_vector() -> None:
    """Slack's documented example: secret, timestamp and body give this signature."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
        b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
        b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert sign(SECRET, "1531420618", body) == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_valid_signature_passes() -> None:
    assert verify(secret=SECRET, timestamp=STAMP, signature=sign(SECRET, STAMP, BODY), body=BODY, now=NOW) == NOW


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "reason"),
    [
        pytest.param(STAMP, sign("another-secret", STAMP, BODY), BODY, NOW, "does not match", id="forged-secret"),
        pytest.param(STAMP, sign(SECRET, STAMP, BODY), BODY + b"x", NOW, "does not match", id="tampered-body"),
        pytest.param(STAMP, sign(SECRET, STAMP, BODY), BODY, NOW + 301, "old", id="older-than-5-minutes"),
        pytest.param(str(int(NOW) + 120), sign(SECRET, str(int(NOW) + 120), BODY), BODY, NOW, "future", id="future"),
        pytest.param(None, sign(SECRET, STAMP, BODY), BODY, NOW, "missing", id="no-timestamp"),
        pytest.param(STAMP, None, BODY, NOW, "missing", id="no-signature"),
        pytest.param("17e8", "v0=00", BODY, NOW, "malformed", id="malformed-timestamp"),
        pytest.param(STAMP, "v1=" + sign(SECRET, STAMP, BODY)[3:], BODY, NOW, "does not match", id="other-version"),
        pytest.param(STAMP, "v0=ü", BODY, NOW, "does not match", id="non-ascii-signature"),
    ],
)
def test_refused(timestamp: str | None, signature: str | None, body: bytes, now: float, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason) as caught:
        verify(secret=SECRET, timestamp=timestamp, signature=signature, body=body, now=now)
    assert SECRET not in str(caught.value)
    assert sign(SECRET, STAMP, BODY) not in str(caught.value)


def test_no_secret_refuses_everything() -> None:
    with pytest.raises(SignatureError, match="no signing secret"):
        verify(secret="", timestamp=STAMP, signature=sign("", STAMP, BODY), body=BODY, now=NOW)


def test_replay_guard_accepts_a_signature_once_until_it_expires() -> None:
    guard = ReplayGuard(max_age=360)
    assert guard.first_time("v0=abc", NOW)
    assert not guard.first_time("v0=abc", NOW + 10)
    assert guard.first_time("v0=def", NOW + 10)
    # Past the age limit a replay is refused by the timestamp check; the guard may forget it.
    assert guard.first_time("v0=abc", NOW + 400)


def test_replay_guard_is_bounded() -> None:
    guard = ReplayGuard(max_age=360, capacity=3)
    for index in range(10):
        assert guard.first_time(f"v0={index}", NOW)
    assert len(guard._seen) <= 3
