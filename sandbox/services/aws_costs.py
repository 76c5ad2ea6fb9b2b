"""AWS cost review demo: Cost Explorer results queued in moto, demo anomalies, a connection for the review."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.service import SandboxContext, Service

#: The review reads through its own connection (moto + the GetAnomalies stand-in); aws_default stays moto's.
CONN_ID = "aws_costs"
#: Days of scheduled or manual runs (one per as-of date) the queued cost results cover.
DAYS_COVERED = 8


class AwsCostsService(Service):
    name = "aws_costs"
    order = 50
    description = "AWS cost review demo (Cost Explorer data in moto, Cost Anomaly Detection stand-in)"

    def __init__(self) -> None:
        self.proxy: Any = None
        self.first_as_of: date | None = None

    def start(self, ctx: SandboxContext) -> None:
        import urllib.request

        from sandbox.ce_proxy import CostExplorerProxy
        from sandbox.cost_data import cost_pages
        from toilless.config import read_defaults
        from toilless.cost_review import COST_METRICS

        moto = ctx.published["moto"]
        timezone = ZoneInfo(read_defaults("aws_cost_review")["schedule"]["timezone"])
        self.first_as_of = datetime.now(timezone).date()
        # moto hands queued results out in order, one per new request (a repeated request gets the same answer):
        # two pages per as-of date, for today and the next days, so each day's first run gets its own data.
        results = [
            page
            for offset in range(DAYS_COVERED)
            for page in cost_pages(self.first_as_of + timedelta(days=offset), metrics=COST_METRICS)
        ]
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
            f"AWS cost review demo: Cost Explorer data for as-of {self.first_as_of} + {DAYS_COVERED - 1} days "
            f"(RDS +67%, new SageMaker spend, CloudFront after credits), anomalies via {self.proxy.url}; "
            f"trigger aws_cost_review"
        )
