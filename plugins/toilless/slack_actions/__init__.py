"""Answering from Slack: buttons on the messages that ask a person something, and the endpoint Slack calls back.

- :mod:`.buttons`: the Block Kit buttons (pure) and the "who answered what and when" update of a message;
- :mod:`.signing`: Slack's request signature (v0, HMAC-SHA256), the age limit and the replay guard (pure);
- :mod:`.settings`: the signing secret Connection and the Slack user -> Airflow user map;
- :mod:`.registry`: action kind -> handler (``hitl`` answers Airflow's human-in-the-loop tasks, ``incident_ack``
  calls the incident store when it is installed, ``silence`` the Alertmanager hook when it exists);
- :mod:`.hitl`: the answer, written by the function behind Airflow's own ``PATCH .../hitlDetails``;
- :mod:`.router`: ``POST /toilless/slack/actions`` (an APIRouter the intake app includes);
- :mod:`.press`: ``python -m toilless.slack_actions.press``, a signed press for the sandbox.
"""

from __future__ import annotations
