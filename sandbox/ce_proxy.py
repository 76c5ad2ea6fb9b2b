"""A Cost Explorer endpoint for the sandbox: moto for everything, plus Cost Anomaly Detection's GetAnomalies.

moto 5.2.5 has no ``get_anomalies``. This loopback proxy answers that one operation with the demo anomalies of
:mod:`sandbox.cost_data` (dated relative to the request's end date, paginated by NextPageToken) and forwards every
other request to the moto server unchanged. An AWS Connection whose ``endpoint_url`` is :attr:`CostExplorerProxy.url`
therefore serves the whole cost review.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.ports import HOST

GET_ANOMALIES = "AWSInsightsIndexService.GetAnomalies"
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


class CostExplorerProxy:
    def __init__(self, moto_url: str, port: int = 0) -> None:
        self.moto_url = moto_url.rstrip("/")
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> CostExplorerProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in _HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("X-Amz-Target") == GET_ANOMALIES:
                    payload = json.dumps(anomalies_answer(json.loads(body or b"{}"))).encode()
                    self._send(200, [("Content-Type", "application/x-amz-json-1.1")], payload)
                    return
                self._send(*proxy._forward(method, self.path, dict(self.headers.items()), body))

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self._server = ThreadingHTTPServer((HOST, self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="ce-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "proxy not started"
        return f"http://{HOST}:{self._server.server_address[1]}"

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
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
    from sandbox.cost_data import anomaly_pages

    end = request.get("DateInterval", {}).get("EndDate") or date.today().isoformat()
    first, second = anomaly_pages(date.fromisoformat(end[:10]))
    return second if request.get("NextPageToken") == first["NextPageToken"] else first
