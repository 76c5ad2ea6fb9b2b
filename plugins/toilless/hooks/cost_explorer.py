"""AWS Cost Explorer and Cost Anomaly Detection (one API, ``ce``) through the Amazon provider."""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

log = logging.getLogger(__name__)


class CostExplorerPaginationError(RuntimeError):
    """Cost Explorer kept returning NextPageToken past the page limit."""


class CostExplorerHook(AwsBaseHook):
    """Cost Explorer client built lazily from ``aws_conn_id`` (the provider has no Cost Explorer hook).

    Pagination is explicit (``NextPageToken``) so that one logical query is one loop of calls and its number
    of calls is known: Cost Explorer charges per request.

    :param aws_conn_id: the AWS connection (``extra.endpoint_url`` points it at a stand-in)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "ce"
        super().__init__(*args, **kwargs)

    def get_cost_and_usage_pages(self, request: dict[str, Any], *, max_pages: int = 50) -> list[dict[str, Any]]:
        """Every page of one GetCostAndUsage query."""
        return self._pages("get_cost_and_usage", request, max_pages)

    def get_anomaly_pages(self, request: dict[str, Any], *, max_pages: int = 50) -> list[dict[str, Any]]:
        """Every page of one GetAnomalies query."""
        return self._pages("get_anomalies", request, max_pages)

    @staticmethod
    def _check(operation: str, request: dict[str, Any]) -> None:
        from toilless.common import cost_contracts

        if operation == "get_cost_and_usage":
            cost_contracts.check_get_cost_and_usage(request)
        elif operation == "get_anomalies":
            cost_contracts.check_get_anomalies(request)

    def _pages(self, operation: str, request: dict[str, Any], max_pages: int) -> list[dict[str, Any]]:
        pages: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            call = {**request, "NextPageToken": token} if token else dict(request)
            # Every page's request, token included, within the documented contract (a token over 8192
            # characters or a malformed request is refused here, not retried against AWS).
            self._check(operation, call)
            response = getattr(self.conn, operation)(**call)
            response.pop("ResponseMetadata", None)
            pages.append(response)
            token = response.get("NextPageToken")
            if not token:
                break
            if len(pages) >= max_pages:
                raise CostExplorerPaginationError(f"{operation} still paginating after {max_pages} pages")
        log.info("%s: %d page(s)", operation, len(pages))
        return pages
