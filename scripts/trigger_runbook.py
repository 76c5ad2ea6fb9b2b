#!/usr/bin/env python3
"""Start a runbook DAG from any alert source through Airflow's REST API v2, exactly once per alert.

For alert sources other than Alertmanager (which uses ``/toilless/alertmanager``): get a token from ``/auth/token``,
then ``POST /api/v2/dags/{dag_id}/dagRuns`` with a dag_run_id derived from the alert's identity, so a re-sent alert
gets ``409 Conflict`` ("already started") instead of a second run. Standard library only.

Example::

    AIRFLOW_PASSWORD=... python scripts/trigger_runbook.py --url http://127.0.0.1:8080 --user admin \\
        --dag rds_storage_guard --alertname RDSLowStorage --fingerprint 3f2a9c0d1e4b5a67 \\
        --starts-at 2026-11-22T03:00:00Z --label dbinstance_identifier=orders-db --label environment=prod \\
        --conf '{"instance_ids": ["orders-db"]}'

Exit codes: 0 started, 3 already started (409), 2 refused (4xx: the message says why), 1 other errors.

A busy Airflow (a SQLite metadata DB while runbooks run, say) may answer 5xx or not within the timeout. The call is
repeated then, a few times with a pause: that is safe because the run id is the alert's, so a repeat after a lost
answer is told 409 instead of starting a second run (and says so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def run_id_for(dag_id: str, alertname: str, fingerprint: str, starts_at: str) -> str:
    """Deterministic dag_run_id: the same alert (fingerprint + start) always maps to the same run."""
    digest = hashlib.sha256(f"{dag_id}\n{fingerprint}\n{starts_at}".encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_~:+-]+", "-", alertname).strip("-")[:60]
    return f"alert__{name}__{digest}"


TIMEOUT_SECONDS = 30.0
ATTEMPTS = 4
PAUSE_SECONDS = 5.0


def call(method: str, url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
    """One request; a 5xx or no answer in time is repeated (``ATTEMPTS`` in all). (0, {...}) if none answered."""
    status, answer = 0, {"detail": "no answer"}
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(PAUSE_SECONDS * attempt)
        try:
            status, answer = _call_once(method, url, body, token)
        except (TimeoutError, urllib.error.URLError, OSError) as err:
            status, answer = 0, {"detail": f"no answer within {TIMEOUT_SECONDS:.0f}s: {err}"}
        if status and status < 500:
            answer["attempts"] = attempt + 1
            return status, answer
        print(f"{method} {url}: {status or 'no answer'} (attempt {attempt + 1} of {ATTEMPTS})", file=sys.stderr)
    return status, answer


def _call_once(method: str, url: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - the URL is the user's Airflow
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        try:
            return err.code, json.loads(text)
        except json.JSONDecodeError:
            return err.code, {"detail": text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("AIRFLOW_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--user", default=os.environ.get("AIRFLOW_USER", "admin"))
    parser.add_argument("--dag", required=True, help="the runbook DAG id (see include/alert_routes.yaml)")
    parser.add_argument("--alertname", required=True)
    parser.add_argument("--fingerprint", required=True, help="the alert's stable id from its source")
    parser.add_argument("--starts-at", required=True, help="when the alert started firing (RFC 3339)")
    parser.add_argument("--label", action="append", default=[], help="name=value, repeatable")
    parser.add_argument("--annotation", action="append", default=[], help="name=value, repeatable")
    parser.add_argument("--conf", default="{}", help="extra conf keys the DAG's Params take (JSON object)")
    parser.add_argument("--dry-run", action="store_true", help="start the runbook in dry-run mode")
    args = parser.parse_args(argv)

    password = os.environ.get("AIRFLOW_PASSWORD")
    if not password:
        parser.error("set AIRFLOW_PASSWORD (never pass secrets on the command line)")
    labels = dict(item.split("=", 1) for item in args.label)
    annotations = dict(item.split("=", 1) for item in args.annotation)
    conf = json.loads(args.conf)
    conf.update(
        {
            "alert": {
                "alertname": args.alertname,
                "status": "firing",
                "labels": {"alertname": args.alertname, **labels},
                "annotations": annotations,
                "startsAt": args.starts_at,
                "fingerprint": args.fingerprint,
                "generatorURL": "",
                "externalURL": "",
            },
            "dry_run": args.dry_run,
        }
    )
    base = args.url.rstrip("/")
    status, answer = call("POST", f"{base}/auth/token", {"username": args.user, "password": password})
    if status != 201:
        print(f"login failed ({status}): {answer.get('detail')}", file=sys.stderr)
        return 1
    run_id = run_id_for(args.dag, args.alertname, args.fingerprint, args.starts_at)
    body = {"logical_date": None, "dag_run_id": run_id, "conf": conf}
    status, answer = call("POST", f"{base}/api/v2/dags/{args.dag}/dagRuns", body, answer["access_token"])
    if status == 200:
        print(f"started {args.dag} run {run_id}: {base}/dags/{args.dag}/runs/{run_id}")
        return 0
    if status == 409:
        lost = (
            " (an earlier attempt of this call got no answer and may have started it)" if answer["attempts"] > 1 else ""
        )
        print(f"already started: {args.dag} run {run_id}{lost}")
        return 3
    print(f"refused ({status}): {answer.get('detail')}", file=sys.stderr)
    return 2 if 400 <= status < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
