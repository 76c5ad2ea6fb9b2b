"""Posting to Slack channels by name, and the shared "report what was done" message SOP DAGs send on success.

Channel names (urgent, non_urgent, compliance, ...) map to Airflow Connections in include/config/toilless.yaml; the
Connection (a Slack webhook) decides where a message really goes. Call these inside tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from toilless.common import slack
from toilless.common.config import ConfigError, load_config
from toilless.common.slack import fit_message
from toilless.incidents import recorder as incidents

log = logging.getLogger(__name__)

#: Slack refuses section texts over 3000 characters.
_SECTION_LIMIT = 2900
#: Most lines one report shows, and the longest line (an outside value may be 900 KB).
MAX_REPORT_LINES = 150
MAX_LINE_CHARS = 1000
#: Characters of report body in one message: Slack's 40,000 less the fallback text and the rest of the blocks.
_REPORT_CHARS = 24_000


def channel_conn_id(channel: str, settings: Mapping[str, Any] | None = None) -> str:
    """The Connection id behind a channel name; unknown names are an error, not a silent drop."""
    settings = settings if settings is not None else load_config("toilless")
    channels = settings.get("slack", {}).get("channels", {})
    if channel not in channels:
        raise ConfigError(
            f"unknown Slack channel {channel!r}: add it to slack.channels in include/config/toilless.yaml "
            f"(known: {', '.join(sorted(channels))})"
        )
    return channels[channel]


def post_message(
    channel: str,
    text: str,
    *,
    blocks: list[dict[str, Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Post one message to a named channel through the Slack provider's webhook hook. Raises on any non-200."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    conn_id = channel_conn_id(channel, settings)
    # The one exit of every message: within Slack's limits and with secrets masked, whoever built it.
    message = fit_message({"text": text, "blocks": blocks})
    text = message["text"]
    SlackWebhookHook(slack_webhook_conn_id=conn_id).send(text=text, blocks=message.get("blocks"))
    incidents.message_sent(channel, text)  # on the run's incident timeline (if it has one); never raises
    log.info("Posted to Slack channel %s (connection %s): %s", channel, conn_id, (text.splitlines() or [""])[0][:120])
    return {"channel": channel, "conn_id": conn_id, "text": text}


def upload_file(
    channel: str,
    path: str | Path,
    *,
    title: str,
    comment: str = "",
    settings: Mapping[str, Any] | None = None,
) -> bool:
    """Upload a file (a PNG chart) when a Slack API token Connection is configured; False when it is not.

    Webhooks cannot carry files, so without the API Connection the file stays where the run saved it and the report
    says where.
    """
    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.slack.hooks.slack import SlackHook
    from airflow.sdk import BaseHook

    settings = settings if settings is not None else load_config("toilless")
    slack_settings = settings.get("slack", {})
    conn_id = slack_settings.get("api_conn_id")
    if not conn_id:
        return False
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("No Slack API connection %s: not uploading %s", conn_id, path)
        return False
    target = slack_settings.get("api_channels", {}).get(channel, channel)
    # The title (plain text) and comment (mrkdwn) are posted too: masked, escaped and bounded like any message.
    SlackHook(slack_conn_id=conn_id).send_file_v1_to_v2(
        channels=target,
        file=str(path),
        title=slack.plain(title, 250),
        initial_comment=slack.as_mrkdwn(comment, 2000) if comment else None,
    )
    log.info("Uploaded %s to %s", path, target)
    return True


def run_url(dag_id: str, run_id: str, settings: Mapping[str, Any] | None = None) -> str:
    """Link to a DAG run in the Airflow UI."""
    from urllib.parse import quote

    return f"{airflow_base_url(settings)}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def airflow_base_url(settings: Mapping[str, Any] | None = None) -> str:
    """The UI base URL: the ``airflow_base_url`` setting, else Airflow's ``[api] base_url``."""
    settings = settings if settings is not None else load_config("toilless")
    configured = settings.get("airflow_base_url") or ""
    if not configured:
        from airflow.configuration import conf

        configured = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return configured.rstrip("/")


def render_report(
    *,
    title: str,
    lines: Iterable[str],
    status: str = "ok",
    dag_id: str | None = None,
    run_id: str | None = None,
    link: str | None = None,
    link_hosts: Iterable[str] = (),
) -> dict[str, Any]:
    """Pure: the "what was done" message: a title, a status, bullet lines and a link to the run.

    The contract for ``lines``: a plain ``str`` is outside text and is escaped here (``&``, ``<``, ``>``, mentions,
    bare URLs; backticks and ``*`` stay, so hand-written emphasis still shows); a
    :class:`~toilless.common.slack.Mrkdwn` (built with ``toilless.common.slack``: ``mrkdwn()``, ``code()``,
    ``link()``...) is kept as it is. ``title`` is plain text. The message is within Slack's limits whatever the lines:
    at most :data:`MAX_REPORT_LINES` lines of :data:`MAX_LINE_CHARS` characters each, and it says what was cut.

    :param link: the run's URL; linked only when its host is in ``link_hosts``.
    """
    icon = {"ok": ":white_check_mark:", "warning": ":warning:", "critical": ":rotating_light:"}.get(
        status, ":information_source:"
    )
    shown = slack.bullets(lines, max_lines=MAX_REPORT_LINES, line_limit=MAX_LINE_CHARS) or [
        slack.Mrkdwn("• nothing to do")
    ]
    where = slack.mrkdwn("{} run {}", slack.code(dag_id), slack.code(run_id)) if dag_id and run_id else ""
    run_link = slack.link(link, "Open the run", link_hosts) if link else None
    sections = list(_sections([slack.Mrkdwn(f"{icon} {where}".strip()), *shown]))
    blocks: list[dict[str, Any]] = [slack.header(title), *(slack.section(chunk) for chunk in sections)]
    if run_link:
        blocks.append(slack.context(run_link))
    text = slack.mrkdwn("{} {}\n", slack.Mrkdwn(icon), title, limit=slack.MAX_HEADER_TEXT) + "\n".join(shown)
    text = slack.truncate(text, slack.MAX_FALLBACK_TEXT - 300)
    if run_link:
        text += f"\n{run_link}"
    return {"text": text, "blocks": blocks}


def send_report(
    context: Mapping[str, Any],
    *,
    channel: str,
    title: str,
    lines: Iterable[str],
    status: str = "ok",
) -> dict[str, Any]:
    """Post the "what was done" report of the current run to ``channel``. Use from a task with its context."""
    settings = load_config("toilless")
    dag_id = context["dag"].dag_id if context.get("dag") else None
    run_id = context.get("run_id")
    link = run_url(dag_id, run_id, settings) if dag_id and run_id else None
    hosts = slack.allowed_link_hosts(settings, airflow_base_url(settings))
    message = render_report(
        title=title, lines=lines, status=status, dag_id=dag_id, run_id=run_id, link=link, link_hosts=hosts
    )
    posted = post_message(channel, message["text"], blocks=message["blocks"], settings=settings)
    incidents.record_from_context("runbook_finished", context, summary=f"reported: {title} ({status})")
    return posted


def _sections(lines: list[slack.Mrkdwn]) -> Iterable[slack.Mrkdwn]:
    """Lines packed into section texts at line boundaries (a code span or link is never split), within the blocks
    and characters one message may hold; what does not fit is counted in a last line."""
    chunk: list[str] = []
    size = 0
    total = 0
    for index, line in enumerate(lines):
        line = slack.truncate(line, _SECTION_LIMIT)
        if total + len(line) > _REPORT_CHARS:
            if chunk:
                yield slack.Mrkdwn("\n".join(chunk))
            yield slack.Mrkdwn(f"• … and {len(lines) - index:,} more line(s) cut to fit one Slack message")
            return
        if chunk and size + 1 + len(line) > _SECTION_LIMIT:
            yield slack.Mrkdwn("\n".join(chunk))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
        total += len(line) + 1
    if chunk:
        yield slack.Mrkdwn("\n".join(chunk))
