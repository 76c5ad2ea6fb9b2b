"""One loopback HTTP server plumbing for the sandbox's stand-ins (Slack sink, fake GitHub, Cost Explorer proxy)."""

from __future__ import annotations

import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.ports import HOST

#: (status, headers, body) of a response.
Response = tuple[int, list[tuple[str, str]], bytes]


class LoopbackHTTPServer:
    """A threading HTTP server on 127.0.0.1 in a daemon thread. Subclasses implement :meth:`handle`."""

    #: Thread name, for reading stack dumps.
    name = "sandbox-http"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> Response:
        """Answer one request. ``headers`` looks names up case-insensitively."""
        raise NotImplementedError

    def start(self) -> Any:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                # The headers stay an email.message.Message: lookups are case-insensitive, as HTTP's are.
                status, headers, payload = server.handle(self.command, self.path, self.headers, body)
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

        self._server = ThreadingHTTPServer((HOST, self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, f"{type(self).__name__} not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"
