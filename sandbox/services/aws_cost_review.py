"""AWS cost review demo: Cost Explorer results queued in moto, demo anomalies, a connection for the review."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.service import SandboxContext, Service

#: The review reads through its own connection (moto + the GetAnomalies stand-in); aws_default stays moto's.
CONN_ID = "aws_costs"
#: Days of scheduled or manual runs (one per as-of date) the queued cost results cover.
DAYS_COVERED = 8


class AwsCostReviewService(Service):
    name = "aws_costs"
    order = 50
    description = "AWS cost review demo (Cost Explorer data in moto, Cost Anomaly Detection stand-in)"

    def __init__(self) -> None:
        self.proxy: Any = None
        self.first_as_of: date | None = None
        self.as_of_dates: list[date] = []

    def start(self, ctx: SandboxContext) -> None:
        import urllib.request

        from sandbox.aws_cost_review_data import cost_pages
        from sandbox.aws_cost_review_proxy import CostExplorerProxy
        from toilless.common.config import read_defaults
        from toilless.sops.aws_cost_review.costs import COST_METRICS

        moto = ctx.published["moto"]
        self.as_of_dates = expected_as_of_dates(read_defaults("aws_cost_review")["schedule"], datetime.now(UTC))
        self.first_as_of = self.as_of_dates[0]
        # moto hands queued results out in order, one per new request (a repeated request gets the same answer):
        # two pages per as-of date, in the order runs will ask for them.
        results = [page for as_of in self.as_of_dates for page in cost_pages(as_of, metrics=COST_METRICS)]
        request = urllib.request.Request(
            f"{moto.url}/moto-api/static/ce/cost-and-usage-results",
            data=json.dumps({"results": results}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()
        self.proxy = CostExplorerProxy(moto.url, port=ctx.port(5061)).start()
        ctx.published["aws_costs"] = {"endpoint_url": self.proxy.url, "conn_id": CONN_ID}

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        moto = ctx.published["moto"]
        connection = moto.connection()
        connection["extra"] = {**connection["extra"], "endpoint_url": self.proxy.url}
        return {CONN_ID: connection}

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        return {"toilless_aws_cost_review": json.dumps({"aws_conn_id": CONN_ID})}

    def summary(self, ctx: SandboxContext) -> str:
        return (
            f"AWS cost review demo: Cost Explorer data for as-of {', '.join(map(str, self.as_of_dates[:3]))}... "
            f"(RDS +67%, new SageMaker spend, CloudFront after credits), anomalies via {self.proxy.url}; "
            f"trigger aws_cost_review"
        )


def expected_as_of_dates(schedule: dict[str, str], now: datetime) -> list[date]:
    """As-of dates of the runs a fresh sandbox will see, in order.

    First the run Airflow schedules as soon as the DAG is unpaused (catchup=False still runs the latest past
    slot), then a manual run today, then the following days.
    """
    from croniter import croniter

    timezone = ZoneInfo(schedule["timezone"])
    local_now = now.astimezone(timezone)
    last_slot = croniter(schedule["cron"], local_now).get_prev(datetime).date()
    today = local_now.date()
    dates = [last_slot] + [today + timedelta(days=offset) for offset in range(DAYS_COVERED)]
    return list(dict.fromkeys(dates))
