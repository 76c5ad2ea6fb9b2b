"""Tell Slack that a person must approve or reject something in Airflow, with the request and a link to it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context


class SlackApprovalRequestNotifier(BaseNotifier):
    """Posts a human-in-the-loop task's rendered subject and body to a named channel with a link to answer it.

    Pass it in a HITL operator's ``notifiers``: it runs once when the request is written.

    :param config_name: config whose ``approval.channel`` names the Slack channel (read when notifying).
    """

    template_fields = ("config_name",)

    def __init__(self, *, config_name: str) -> None:
        super().__init__()
        self.config_name = config_name

    def notify(self, context: Context) -> None:
        from airflow.providers.standard.operators.hitl import HITLOperator

        from toilless.common.config import load_config
        from toilless.common.reporting import airflow_base_url, post_message
        from toilless.common.slack import allowed_link_hosts

        settings = load_config(self.config_name)
        channel = settings.get("approval", {}).get("channel", "urgent")
        toilless_settings = load_config("toilless")
        base_url = airflow_base_url(toilless_settings)
        task = context["task"]
        url = HITLOperator.generate_link_to_ui_from_context(context=context, base_url=base_url)
        subject = getattr(task, "subject", task.task_id)
        message = approval_message(
            subject=subject,
            body=getattr(task, "body", "") or "",
            url=url,
            link_hosts=allowed_link_hosts(toilless_settings, base_url),
            actions=answer_buttons(context, subject),
        )
        post_message(channel, message["text"], blocks=message["blocks"])


def answer_buttons(context: Context, subject: str) -> dict[str, Any] | None:
    """The Approve / Reject buttons (one per option of the task) that answer this request from Slack
    (:mod:`toilless.slack_actions`), unless ``approval_buttons`` is off in slack_actions.yaml."""
    from toilless.common.config import load_config
    from toilless.slack_actions import buttons

    if not load_config("slack_actions").get("approval_buttons", True):
        return None
    ti = context["ti"]
    options = list(getattr(context["task"], "options", None) or ["Approve", "Reject"])
    ref = buttons.hitl_ref(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)
    return buttons.actions_block(buttons.hitl_buttons(ref, options, subject=subject))


def approval_message(
    *, subject: str, body: str, url: str, link_hosts: Iterable[str], actions: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Pure: the approval request message. ``subject`` and ``body`` are rendered templates holding outside values
    (instance ids, sizes, Params), so both are escaped; the body's Markdown ``**bold**`` becomes mrkdwn ``*bold*``.

    :param actions: an actions block (the Approve / Reject buttons), placed right under the request so the
        message's length limit never cuts it.
    """
    from toilless.common import slack

    body_text = slack.escape(body.replace("**", "*"), 2800)
    answer = slack.link(url, "Approve or reject in Airflow", link_hosts)
    if actions:
        answer = slack.mrkdwn("Answer with the buttons, or {}", answer)
    subject_text = slack.escape(subject, 140)
    return {
        "text": slack.mrkdwn(":raising_hand: Approval needed: {}\n{}\n{}", subject_text, body_text, answer),
        "blocks": [
            slack.header(f"Approval needed: {subject}"),
            slack.section(body_text if body_text.strip() else subject_text),
            *([actions] if actions else []),
            slack.section(answer),
        ],
    }
