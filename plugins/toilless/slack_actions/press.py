"""Press a button as Slack would: a signed ``block_actions`` request to ``POST /toilless/slack/actions``.

For the sandbox (``make run`` prints the command) and for tests and the benchmark::

    python -m toilless.slack_actions.press --sandbox .airflow/sandbox --button Approve

finds the newest message with that button in the sandbox Slack sink's ``slack.jsonl``, builds the payload Slack
would send (user, channel, message ts, response_url, the message itself, the button), signs it with the sandbox's
signing secret and posts it. The answer (JSON) is printed; the exit code is 0 for a 2xx.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from toilless.slack_actions.signing import sign

#: The Slack user the sandbox maps to its Airflow admin (slack_actions.respondents).
SANDBOX_USER = "U0SANDBOX"
SECRET_FILE = "slack_signing_secret"  # noqa: S105 (a file name)
JSONL_FILE = "slack.jsonl"


def payload_for(
    button: Mapping[str, Any],
    *,
    message: Mapping[str, Any],
    channel: str,
    user_id: str,
    response_url: str = "",
) -> dict[str, Any]:
    """The ``block_actions`` payload Slack sends when ``user_id`` presses ``button`` of ``message``."""
    ts = str(message.get("ts", ""))
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0SANDBOX"},
        "api_app_id": "A0SANDBOX",
        "team": {"id": "T0SANDBOX", "domain": "sandbox"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": channel},
        "message": {"type": "message", "ts": ts, "text": message.get("text", ""), "blocks": message.get("blocks", [])},
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.sandbox",
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": button.get("block_id", ""),
                "text": {"type": "plain_text", "text": button.get("label", "")},
                "value": button["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def signed_request(
    secret: str, payload: Mapping[str, Any], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body (form-encoded ``payload=<json>``, as Slack sends it) and headers with a valid v0 signature."""
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body),
    }
    return body, headers


def newest_with_button(messages: list[dict[str, Any]], label: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The newest message (updates applied) still carrying a button labelled ``label``, and that button."""
    current: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for message in messages:
        ts = str(message.get("ts", ""))
        if message.get("kind") == "update":
            if ts in current:
                current[ts] = {
                    **current[ts],
                    "blocks": message.get("blocks", []),
                    "buttons": message.get("buttons", []),
                }
            continue
        if message.get("kind") in ("webhook", "api"):
            current[ts] = message
            order.append(ts)
    for ts in reversed(order):
        for button in current[ts].get("buttons") or []:
            if button.get("label") == label:
                return current[ts], button
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toilless.slack_actions.press", description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", type=Path, required=True, help="the sandbox state directory (make run prints it)")
    parser.add_argument("--button", default="Approve", help="label of the button to press (default: Approve)")
    parser.add_argument("--user", default=SANDBOX_USER, help=f"Slack user id pressing (default: {SANDBOX_USER})")
    parser.add_argument(
        "--url",
        default=os.environ.get("TOILLESS_SLACK_ACTIONS_URL", "http://127.0.0.1:8080/toilless/slack/actions"),
        help="the endpoint (default: $TOILLESS_SLACK_ACTIONS_URL or the make run address)",
    )
    args = parser.parse_args(argv)
    import requests

    secret = (args.sandbox / SECRET_FILE).read_text(encoding="utf-8").strip()
    state = json.loads((args.sandbox / "slack_press.json").read_text(encoding="utf-8"))
    jsonl = args.sandbox / JSONL_FILE
    lines = jsonl.read_text(encoding="utf-8").splitlines() if jsonl.exists() else []
    found = newest_with_button([json.loads(line) for line in lines if line.strip()], args.button)
    if found is None:
        print(f"No message in {jsonl} has a {args.button!r} button (yet): trigger a run that asks first.")
        return 1
    message, button = found
    channel = str(message.get("channel", ""))
    payload = payload_for(
        button,
        message=message,
        channel=channel,
        user_id=args.user,
        response_url=f"{state['sink_url']}/response/{message.get('ts', '')}",
    )
    body, headers = signed_request(secret, payload)
    response = requests.post(args.url, data=body, headers=headers, timeout=30)
    print(f"{response.status_code} {response.text}")
    return 0 if response.ok else 2


if __name__ == "__main__":
    sys.exit(main())
