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

    def _pages(self, operation: str, request: dict[str, Any], max_pages: int) -> list[dict[str, Any]]:
        pages: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            call = {**request, "NextPageToken": token} if token else dict(request)
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
