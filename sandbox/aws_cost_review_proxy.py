"""A Cost Explorer endpoint for the sandbox: moto for everything, plus Cost Anomaly Detection's GetAnomalies.

moto 5.2.5 has no ``get_anomalies``. This loopback proxy answers that one operation with the demo anomalies of
:mod:`sandbox.aws_cost_review_data` (dated relative to the request's end date, paginated by NextPageToken) and forwards every
other request to the moto server unchanged. An AWS Connection whose ``endpoint_url`` is :attr:`CostExplorerProxy.url`
therefore serves the whole cost review.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date
from email.message import Message
from typing import Any

from sandbox.http import LoopbackHTTPServer, Response

GET_ANOMALIES = "AWSInsightsIndexService.GetAnomalies"
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


class CostExplorerProxy(LoopbackHTTPServer):
    name = "ce-proxy"

    def __init__(self, moto_url: str, port: int = 0) -> None:
        super().__init__(port)
        self.moto_url = moto_url.rstrip("/")

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> Response:
        if headers.get("X-Amz-Target") == GET_ANOMALIES:
            payload = json.dumps(anomalies_answer(json.loads(body or b"{}"))).encode()
            return 200, [("Content-Type", "application/x-amz-json-1.1")], payload
        status, response_headers, payload = self._forward(method, path, headers, body)
        return status, [(key, value) for key, value in response_headers if key.lower() not in _HOP_HEADERS], payload

    def _forward(
        self, method: str, path: str, headers: Message, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        forwarded = {key: value for key, value in headers.items() if key.lower() not in _HOP_HEADERS}
        request = urllib.request.Request(f"{self.moto_url}{path}", data=body or None, headers=forwarded, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, list(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            return err.code, list(err.headers.items()), err.read()


def anomalies_answer(request: dict[str, Any]) -> dict[str, Any]:
    """One page of demo anomalies for a GetAnomalies request."""
    from sandbox.aws_cost_review_data import anomaly_pages

    end = request.get("DateInterval", {}).get("EndDate") or date.today().isoformat()
    first, second = anomaly_pages(date.fromisoformat(end[:10]))
    return second if request.get("NextPageToken") == first["NextPageToken"] else first
