"""Tell Slack that a person must approve or reject something in Airflow, with the request and a link to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

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

        from toilless.config import load_config
        from toilless.reporting import airflow_base_url, post_message

        settings = load_config(self.config_name)
        channel = settings.get("approval", {}).get("channel", "urgent")
        task = context["task"]
        link = HITLOperator.generate_link_to_ui_from_context(context=context, base_url=airflow_base_url())
        subject = getattr(task, "subject", task.task_id)
        # The body is Markdown for the Airflow UI; Slack's mrkdwn marks bold with single asterisks.
        body = (getattr(task, "body", "") or "").replace("**", "*")
        text = f":raising_hand: Approval needed: {subject}\n{body}\n<{link}|Approve or reject in Airflow>"
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": f"Approval needed: {subject}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900] or subject}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Approve or reject in Airflow>"}},
        ]
        post_message(channel, text, blocks=blocks)
