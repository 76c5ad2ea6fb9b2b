"""Triage messages: outside text (labels, evidence) is shown, never acted on by Slack."""

from __future__ import annotations

from typing import Any

from toilless.common.reporting import render_report
from toilless.sops.triage_alert import messages

SETTINGS: dict[str, Any] = {
    "rule": "service-5xx",
    "notes": [],
    "alert": {"alertname": "Service5xx", "labels": {"service": "<!channel>", "evil": "<https://evil.example|click>"}},
}


def rendered(verdict: dict[str, Any], silence: dict[str, Any] | None = None) -> str:
    lines = messages.report_lines(SETTINGS, verdict, silence)
    message = render_report(title=messages.title(verdict, dry_run=False), lines=lines)
    return message["text"] + "\n".join(b.get("text", {}).get("text", "") for b in message["blocks"])


def test_hostile_labels_are_escaped_in_the_report() -> None:
    text = rendered({"verdict": "noise", "reason": "1 <= 1", "evidence": ["how widespread: 1"]}, {"reason": "x"})
    assert "<!channel>" not in text
    assert "<https://evil.example|click>" not in text
    assert "&lt;!channel&gt;" in text


def test_noise_report_names_the_silence_and_until_when() -> None:
    silence = {"silenced": True, "silence_id": "abc-123", "minutes": 60, "ends_at": "2026-01-01T01:00:00Z"}
    text = rendered({"verdict": "noise", "reason": "r", "evidence": []}, silence)
    assert "silenced in Alertmanager for 60 min until 2026-01-01T01:00:00Z: silence abc-123" in text


def test_a_refused_silence_is_said_plainly() -> None:
    text = rendered({"verdict": "noise", "reason": "r", "evidence": []}, {"silenced": False, "error": "over max"})
    assert "NOT silenced: over max" in text


def test_real_without_a_runbook_says_a_person_must_look() -> None:
    verdict = {"verdict": "real", "reason": "r", "evidence": [], "runbook_dag_id": "", "start_runbook": False}
    assert "a person must look" in rendered(verdict)
    assert messages.title(verdict, dry_run=False) == "Alert triage: real"


def test_owner_message_escapes_the_alert() -> None:
    owner = messages.owner_message(SETTINGS, {"cause": "vault-token-expired", "response": "refresh the token"})
    assert "<!channel>" not in owner["text"]
    assert "refresh the token" in owner["text"]
