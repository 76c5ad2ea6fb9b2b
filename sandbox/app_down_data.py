"""The app_down outage story on loopback: a demo web app whose answers follow the Deployment's image.

``DemoWebApp`` serves ``/health`` and ``/internal/health``. Each answer reads the Deployment's current pod template
from the Kubernetes emulator: an image tagged ``-qa`` (the QA build with the wrong scripts) answers 500 on the public
URL (the app's own health page still answers: "hosts UP, external UNREACHABLE"); any other image answers 200 once the
rollout is complete. A test can also break it outright (``broken = True``: every request is answered 503).
``/orders/<id>`` with a malformed id answers 500 (one bad request: the noise drill), and ``/metrics`` counts the
answers by code (``http_requests_total{service="web",...}``).

Deploying the QA build by mistake, as the sandbox's README line shows::

    curl -s -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' \\
      http://127.0.0.1:5070/apis/apps/v1/namespaces/shop/deployments/web \\
      -d '{"metadata":{"annotations":{"kubernetes.io/change-cause":"deploy QA build"}},
           "spec":{"template":{"spec":{"containers":[{"name":"app","image":"shop/web:2.0.0-qa"}]}}}}'

(kmock merges lists as a whole, so the container list is replaced: name and image are enough for the demo.)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.deployment_controller import DEPLOYMENTS, DeploymentController
from sandbox.ports import HOST, free_port

NAMESPACE = "shop"
DEPLOYMENT = "web"
GOOD_IMAGE = "shop/web:1.4.2"
QA_IMAGE = "shop/web:2.0.0-qa"


def is_bad(image: str) -> bool:
    return image.endswith("-qa")


class DemoWebApp:
    """``with DemoWebApp(controller) as app: app.url``."""

    def __init__(
        self,
        controller: DeploymentController,
        *,
        namespace: str = NAMESPACE,
        deployment: str = DEPLOYMENT,
        port: int | None = None,
    ) -> None:
        self.controller = controller
        self.namespace = namespace
        self.deployment = deployment
        self.port = port or free_port()
        self.broken = False
        #: The public URL answers 503 ("overloaded") while fewer replicas than this are available.
        self.replicas_needed = 0
        self.requests = 0
        #: Answers by status code, served on ``/metrics`` as ``http_requests_total`` (the noise drill's one 5xx).
        self.answers: dict[int, int] = {200: 0, 500: 0}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, path: str) -> tuple[int, str]:
        self.requests += 1
        status, body = self._answer(path)
        self.answers[status] = self.answers.get(status, 0) + 1
        return status, body

    def metrics(self) -> str:
        """Prometheus text format: the answers so far by code, labelled with the service they belong to."""
        labels = f'service="{self.deployment}",namespace="{self.namespace}",deployment="{self.deployment}"'
        return "".join(
            f'http_requests_total{{{labels},code="{code}"}} {count}\n' for code, count in sorted(self.answers.items())
        )

    def _answer(self, path: str) -> tuple[int, str]:
        if path.startswith("/orders/") and not path.removeprefix("/orders/").isdigit():
            # The classic one-off: a malformed order id the handler does not validate (the noise drill's 5xx).
            return 500, "Internal Server Error: unhandled ValueError: invalid order id\n"
        if self.broken:
            return 503, "service unavailable\n"
        deployment = self.controller._get(DEPLOYMENTS, self.namespace, self.deployment)
        if deployment is None:
            return 503, "no deployment\n"
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        status = deployment.get("status") or {}
        if path.startswith("/internal/"):
            return 200, f"host up, running {image}\n"
        if is_bad(image):
            return 500, f"Internal Server Error: {image} cannot find its scripts\n"
        if not status.get("availableReplicas"):
            return 503, "no replica available\n"
        if int(status.get("availableReplicas") or 0) < self.replicas_needed:
            return 503, "overloaded: request queue full\n"
        return 200, f"ok {image}\n"

    def start(self) -> DemoWebApp:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    status, body = 200, app.metrics()
                else:
                    status, body = app.answer(self.path)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-web-app", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DemoWebApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"
