"""The upstream behind a dnsmasq server broken with ``servfail``: it answers every query SERVFAIL, and dnsmasq passes
that on to its clients, as a server with a broken backend does."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading


def free_port_on(address: str) -> int:
    """A port free for both UDP and TCP on ``address``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port on {address}")


def _servfail_reply(query: bytes) -> bytes:
    """The query sent back as a response with RCODE SERVFAIL (header flags QR|RD|RA, rcode 2)."""
    if len(query) < 12:
        return b""
    (ident, flags) = struct.unpack("!HH", query[:4])
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0080 | 2
    return struct.pack("!HH", ident, reply_flags) + query[4:6] + b"\x00\x00\x00\x00\x00\x00" + query[12:]


class _UdpServfail(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = _servfail_reply(data)
        if reply:
            sock.sendto(reply, self.client_address)


class _TcpServfail(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        header = self.request.recv(2)
        if len(header) < 2:
            return
        (length,) = struct.unpack("!H", header)
        reply = _servfail_reply(self.request.recv(length))
        self.request.sendall(struct.pack("!H", len(reply)) + reply)


class ServfailUpstream:
    """A DNS upstream that answers every query SERVFAIL, on 127.0.0.1, UDP and TCP."""

    def __init__(self) -> None:
        self.port = free_port_on("127.0.0.1")
        self._servers: list[socketserver.BaseServer] = []

    def start(self) -> ServfailUpstream:
        socketserver.ThreadingUDPServer.allow_reuse_address = True
        udp = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), _UdpServfail)
        tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), _TcpServfail, bind_and_activate=False)
        tcp.allow_reuse_address = True
        tcp.server_bind()
        tcp.server_activate()
        for server in (udp, tcp):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True, name="servfail-upstream").start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
