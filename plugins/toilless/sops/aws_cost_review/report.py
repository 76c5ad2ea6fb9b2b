"""The Slack report: flagged services ranked by dollars, flagged anomalies, the issues; one line when nothing is found.

Built with the common Slack builder only: every outside string (AWS names, issue titles, paths, notes) is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from toilless.common import slack
from toilless.common.redaction import mask_secrets
from toilless.sops.aws_cost_review.costs import NEW_SPEND
from toilless.sops.aws_cost_review.formatting import money, percent_text
from toilless.sops.aws_cost_review.window import ReviewWindow


def ranked_table(reviews: Sequence[Mapping[str, Any]], window: ReviewWindow, limit: int = 15) -> str:
    """Fixed-width table of flagged services (for a Slack code block)."""
    header = (
        "#",
        "Service",
        "Baseline/mo",
        f"MTD {window.days_elapsed}d",
        "Run-rate/mo",
        "Change",
        "Over $",
        "Why",
    )
    rows = [header]
    for rank, review in enumerate(reviews[:limit], start=1):
        rows.append(
            (
                str(rank),
                _shorten(review["label"], 34),
                money(review["baseline_month"]),
                money(review["current"]),
                money(review["projected_month"]),
                _change_cell(review),
                money(review["change_dollars"]),
                _shorten(review["reason"], 120),
            )
        )
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[col]) for col, cell in enumerate(row)).rstrip() for row in rows]
    if len(reviews) > limit:
        lines.append(f"... and {len(reviews) - limit} more (see the run's report files)")
    return "\n".join(lines)


def _change_cell(review: Mapping[str, Any]) -> str:
    if review["change_percent"] is not None:
        return percent_text(review["change_percent"])
    return "new" if review["reason"] == NEW_SPEND else "n/a"


def anomaly_lines(anomalies: Sequence[Mapping[str, Any]], limit: int = 10) -> list[slack.Mrkdwn]:
    """One mrkdwn line per flagged anomaly (root causes and ids are AWS's text: escaped), at most ``limit``."""
    lines = []
    for anomaly in anomalies[:limit]:
        causes = "; ".join(
            " / ".join(
                str(part) for part in (c.get("service"), c.get("account"), c.get("region"), c.get("usage_type")) if part
            )
            for c in anomaly["root_causes"][:3]
        )
        state = "OPEN" if anomaly["open"] else f"ended {anomaly['end']}"
        lines.append(
            slack.mrkdwn(
                "{} ({}) since {}, {}: {} [{}]",
                money(anomaly["total_impact"]),
                percent_text(anomaly["impact_percent"]),
                anomaly["start"],
                state,
                causes or anomaly["dimension"] or "no root cause reported",
                slack.code(anomaly["anomaly_id"], 120),
                limit=300,
            )
        )
    if len(anomalies) > limit:
        lines.append(slack.Mrkdwn(f"... and {len(anomalies) - limit} more"))
    return lines


def _shorten(text: str, limit: int) -> str:
    # Masked before it is cut: half a token is no longer recognisable as one, and would be shown.
    text = mask_secrets(" ".join(text[: limit + 4096].split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_notes(
    review: Mapping[str, Any],
    costs: Mapping[str, Any],
    *,
    chart: str | None,
    issues: Sequence[Mapping[str, Any]] | None,
) -> list[str]:
    """The report's footnotes: what failed upstream (``issues`` None: drafting or filing failed), what was left out,
    which figures are estimates, and whether this was a dry run."""
    notes = []
    if issues is None:
        notes.append("Drafting or filing issues FAILED (see the run); findings above are complete.")
    if chart is None and costs["flagged"]:
        notes.append("The chart could not be drawn (see the run).")
    if review["exclude_record_types"]:
        notes.append(f"Left out: {', '.join(review['exclude_record_types'])}.")
    if costs["estimated_months"]:
        notes.append(f"Estimated (unfinalised): {', '.join(m[:7] for m in costs['estimated_months'])}.")
    if review["dry_run"]:
        notes.append("Dry run: nothing filed.")
    return notes


def render_report(
    *,
    window: ReviewWindow,
    services: Sequence[Mapping[str, Any]],
    anomalies: Sequence[Mapping[str, Any]],
    services_checked: int,
    anomalies_checked: int,
    since: date,
    threshold_percent: float,
    min_dollars: float,
    metric: str,
    issues: Sequence[Mapping[str, Any]] = (),
    chart: str | None = None,
    link: str | None = None,
    notes: Sequence[str] = (),
    link_hosts: Iterable[str] = (),
) -> dict[str, Any]:
    """The Slack message: flagged services ranked, flagged anomalies, the issues; one line when nothing is
    found. Built with the common Slack builder: AWS's names, issue titles, paths and notes are escaped, and links
    (the run, filed issues) are links only to ``link_hosts``. Within Slack's limits whatever the input."""
    hosts = frozenset(link_hosts)
    flagged = [review for review in services if review["flagged"]]
    flagged_anomalies = [anomaly for anomaly in anomalies if anomaly["flagged"]]
    rule = f"over {threshold_percent:g}% and over {money(min_dollars)}"
    title = f"AWS cost review {window.review_month:%B %Y} (as of {window.as_of:%a %Y-%m-%d})"
    if not flagged and not flagged_anomalies:
        text = slack.mrkdwn(
            ":white_check_mark: {}: nothing to see. {} services within baseline ({}); {} anomalies since {}, "
            "none significant.",
            title,
            services_checked,
            rule,
            anomalies_checked,
            f"{since:%Y-%m-%d}",
        )
        if link:
            text = slack.mrkdwn("{} {}", text, slack.link(link, "Run", hosts), limit=None)
        return {"text": text, "blocks": [slack.section(text)]}

    summary = slack.mrkdwn(
        ":warning: *{}* of {} services over baseline and *{}* of {} anomalies since {} need attention "
        "(rule: {}, metric {}).",
        len(flagged),
        services_checked,
        len(flagged_anomalies),
        anomalies_checked,
        f"{since:%Y-%m-%d}",
        rule,
        metric,
    )
    method = slack.escape(
        f"Compared: {window.describe()}. Change % = change of the daily run rate; Over $ = month-to-date spend "
        "above the baseline daily rate times the days elapsed; Run-rate/mo = month-to-date projected to the month.",
        1000,
    )
    blocks: list[dict[str, Any]] = [slack.header(title), slack.section(summary)]
    text_parts = [slack.mrkdwn("{}\n{}", title, summary)]
    if flagged:
        table = slack.code_block(ranked_table(flagged, window), 2800)
        blocks.append(slack.section(slack.mrkdwn("*Services over baseline*\n{}", table, limit=None)))
        text_parts.append(table)
    if flagged_anomalies:
        body = slack.Mrkdwn("\n".join(slack.bullets(anomaly_lines(flagged_anomalies), line_limit=None)))
        blocks.append(slack.section(slack.mrkdwn("*Cost Anomaly Detection*\n{}", body, limit=None)))
        text_parts.append(body)
    if issues:
        lines = slack.bullets((_issue_line(issue, hosts) for issue in issues), max_lines=20, what="issue")
        body = slack.mrkdwn("*Issues*\n{}", slack.Mrkdwn("\n".join(lines)), limit=None)
        blocks.append(slack.section(body))
        text_parts.append(body)
    context = [method, *(slack.escape(note, 500) for note in notes[:6])]
    if chart:
        context.append(slack.mrkdwn("Chart: {}", slack.code(chart, 300)))
    if link:
        context.append(slack.link(link, "Open the run", hosts))
    blocks.append(slack.context(*context[: slack.MAX_CONTEXT_ELEMENTS]))
    text_parts.append("\n".join(context))
    text = slack.truncate(slack.Mrkdwn("\n\n".join(text_parts)), slack.MAX_FALLBACK_TEXT)
    return {"text": text, "blocks": blocks}


def _issue_line(issue: Mapping[str, Any], hosts: frozenset[str]) -> slack.Mrkdwn:
    status = issue.get("status")
    url = issue.get("url")
    target = slack.link(url, issue["title"], hosts) if url else slack.escape(issue["title"], 150)
    if status == "filed":
        return slack.mrkdwn("filed {}", target)
    if status == "exists":
        return slack.mrkdwn("already filed {}", target)
    if status == "dry_run":
        return slack.mrkdwn("would file (dry run): {}", target)
    return slack.mrkdwn("draft (no GitHub connection): {}, saved as {}", target, slack.code(issue.get("path", ""), 300))
