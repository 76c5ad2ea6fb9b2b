"""Findings as GitHub issue drafts: a stable fingerprint per finding, Markdown title and body within GitHub's limits.

The fingerprint marker hidden in each body is how a rerun finds the issue it filed (filing is in ``steps``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from toilless.common import cost_contracts, slack
from toilless.common.redaction import mask_secrets
from toilless.sops.aws_cost_review.formatting import money, percent_text
from toilless.sops.aws_cost_review.window import ReviewWindow

FINGERPRINT_PREFIX = "aws-cost-review"


def fingerprint(*parts: str) -> str:
    """Stable id of a finding: the same service in the same month (or the same anomaly) always gets the same
    one."""
    # surrogatepass: an id holding a lone surrogate still gets a fingerprint (the same one as before for valid text).
    digest = hashlib.sha256("|".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{FINGERPRINT_PREFIX}/{digest}"


def service_fingerprint(review: Mapping[str, Any], window: ReviewWindow) -> str:
    return fingerprint("service", review["account"], review["service"], window.review_month.isoformat())


def anomaly_fingerprint(anomaly: Mapping[str, Any]) -> str:
    return fingerprint("anomaly", anomaly["anomaly_id"])


def fingerprint_marker(value: str) -> str:
    """Hidden HTML comment put in an issue body, searched for before filing again."""
    return f"<!-- toilless-fingerprint: {value} -->"


def service_draft(
    review: Mapping[str, Any],
    window: ReviewWindow,
    *,
    epic: str,
    links: Mapping[str, str],
    threshold_percent: float,
    min_dollars: float,
    labels: Sequence[str] = (),
) -> dict[str, Any]:
    """Markdown issue draft for a flagged service."""
    key = service_fingerprint(review, window)
    change = review["reason"] if review["change_percent"] is None else percent_text(review["change_percent"])
    title = (
        f"AWS cost: {review['label']} {change} ({money(review['change_dollars'])} over baseline) "
        f"in {window.review_month:%B %Y}"
    )
    rows = "\n".join(f"| {month[:7]} | {money(amount)} |" for month, amount in review["history"].items())
    notes = "".join(f"- {note}\n" for note in review["notes"])
    body = (
        f"Part of {epic}.\n\n"
        f"**{review['label']}** spent {money(review['current'])} in {window.review_month:%B %Y} to date "
        f"({window.days_elapsed} of {window.days_in_month} days): {money(review['change_dollars'])} over "
        "its baseline "
        f"so far ({change} on the daily run rate). At this rate the month ends at "
        f"{money(review['projected_month'])} "
        f"against a baseline of {money(review['baseline_month'])}.\n\n"
        f"Why flagged: {review['reason']} (rule: over {threshold_percent:g}% and over "
        f"{money(min_dollars)}).\n\n"
        f"Compared: {window.describe()}.\n\n"
        f"| Month | Spend |\n|---|---|\n{rows}\n\n"
        + (f"Notes:\n{notes}\n" if notes else "")
        + "Decide: expected usage (close with a note) or an inefficiency (plan the fix).\n\n"
        + _links(links)
    )
    return {
        "fingerprint": key,
        "kind": "service",
        "title": _issue_title(title),
        "body": _issue_body(body, key),
        "labels": list(labels),
    }


def anomaly_draft(
    anomaly: Mapping[str, Any], *, epic: str, links: Mapping[str, str], labels: Sequence[str] = ()
) -> dict[str, Any]:
    """Markdown issue draft for a flagged Cost Anomaly Detection anomaly."""
    key = anomaly_fingerprint(anomaly)
    causes = anomaly["root_causes"]
    first = causes[0] if causes else {}
    where = first.get("service") or anomaly["dimension"] or "unknown service"
    title = f"AWS cost anomaly: {where} {money(anomaly['total_impact'])} over expected since {anomaly['start']}"
    cause_rows = "\n".join(
        f"| {c.get('service') or ''} | {c.get('account') or ''} {c.get('account_name') or ''} | "
        f"{c.get('region') or ''} | {c.get('usage_type') or ''} | {money(c.get('contribution'))} |"
        for c in causes
    )
    state = "still open" if anomaly["open"] else f"ended {anomaly['end']}"
    body = (
        f"Part of {epic}.\n\n"
        f"AWS Cost Anomaly Detection anomaly `{anomaly['anomaly_id']}` ({state}), first seen "
        f"{anomaly['start']}: "
        f"total impact {money(anomaly['total_impact'])} ({percent_text(anomaly['impact_percent'])}), actual "
        f"{money(anomaly['actual_spend'])} against expected {money(anomaly['expected_spend'])}.\n\n"
        f"Why flagged: {anomaly['reason']}.\n\n"
        "Root causes:\n\n| Service | Account | Region | Usage type | Contribution |\n|---|---|---|---|---|\n"
        f"{cause_rows or '| (none reported) | | | | |'}\n\n"
        "Decide: expected usage (give AWS the feedback) or an inefficiency (plan the fix).\n\n" + _links(links)
    )
    return {
        "fingerprint": key,
        "kind": "anomaly",
        "title": _issue_title(title),
        "body": _issue_body(body, key),
        "labels": list(labels),
    }


#: GitHub refuses an issue title over 256 characters and a body over 65,536 (one source: the contract module).
GITHUB_TITLE_LIMIT = cost_contracts.GITHUB_TITLE_MAX
GITHUB_BODY_LIMIT = cost_contracts.GITHUB_BODY_MAX


def _issue_title(title: str) -> str:
    # One line: AWS names are outside text, and a title with a newline is not one.
    return slack.truncate(mask_secrets(" ".join(title.split())), GITHUB_TITLE_LIMIT)


def _issue_body(body: str, key: str) -> str:
    """Markdown body with secrets masked and bounded, the fingerprint marker always kept (it is how a retry finds
    the issue it filed)."""
    marker = f"\n{fingerprint_marker(key)}\n"
    return slack.truncate(mask_secrets(body), GITHUB_BODY_LIMIT - len(marker) - 100) + marker


def _links(links: Mapping[str, str]) -> str:
    if not links:
        return ""
    return "Links:\n" + "".join(f"- [{name}]({url})\n" for name, url in links.items() if url)


def drafts_for_findings(
    services: Sequence[Mapping[str, Any]],
    anomalies: Sequence[Mapping[str, Any]],
    window: ReviewWindow,
    *,
    github: Mapping[str, Any],
    run_link: str,
    console_url: str,
    threshold_percent: float,
    min_dollars: float,
) -> list[dict[str, Any]]:
    """One draft per flagged service, then one per flagged anomaly, each "Part of" the configured epic."""
    epic = f"#{github['epic_issue']} (cost optimisation)" if github.get("epic_issue") else "cost optimisation"
    labels = list(github.get("labels") or [])
    links = {"Airflow run": run_link, "Cost Explorer": f"{console_url}#/cost-explorer"}
    drafts = [
        service_draft(
            item,
            window,
            epic=epic,
            links=links,
            threshold_percent=threshold_percent,
            min_dollars=min_dollars,
            labels=labels,
        )
        for item in services
    ]
    anomaly_links = {**links, "Cost Anomaly Detection": f"{console_url}#/anomaly-detection"}
    drafts += [anomaly_draft(item, epic=epic, links=anomaly_links, labels=labels) for item in anomalies]
    return drafts


def draft_file_name(draft: Mapping[str, Any]) -> str:
    """The draft's file in the run's report folder: its fingerprint's digest (no outside text in a path)."""
    return f"{draft['fingerprint'].rsplit('/', 1)[-1]}.md"
