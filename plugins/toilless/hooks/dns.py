"""DNS for Toilless: real queries to a DNS server (dnspython) and the networking team's ``dnsTool``.

No SOP logic here: :func:`probe_server` returns what each query got back, :class:`DnsToolHook` runs the tool's calls.
What the answers mean and when to fail over live in ``toilless.sops.dns_failover``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from toilless.common.redaction import mask_secrets

#: One answer's values kept per try (a hostile server may return thousands of records).
MAX_VALUES = 20
#: Bytes of the tool's output kept (stdout and stderr each).
MAX_OUTPUT = 4096


#: Query streams (name x transport) asked at once; tries within a stream stay one after the other.
MAX_PARALLEL_STREAMS = 8


def probe_server(
    address: str,
    port: int,
    queries: Iterable[Mapping[str, Any]],
    *,
    tries: int = 3,
    timeout_seconds: float = 1.0,
    transports: Sequence[str] = ("udp", "tcp"),
) -> dict[str, Any]:
    """Ask ``address:port`` every query (``{name, type}``) over each transport, ``tries`` times.

    Each (name, transport) is one stream of ``tries`` queries one after the other (a retry is for a lost datagram);
    the streams run at once, so a hung server costs ``tries x timeout``, not that times every name and transport.
    Returns ``{"outcomes": [...], "tcp_port_open": bool, "elapsed_ms": float}``; each outcome has ``name``, ``type``,
    ``transport``, ``try``, ``status`` (answer | timeout | refused | error), ``rcode``, ``values`` (canonical text,
    at most :data:`MAX_VALUES`), ``elapsed_ms`` and ``error``.
    """
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    try:
        # dnspython queries IP literals only: a host name is resolved once per probe.
        ip: str | None = socket.getaddrinfo(address, port, proto=socket.IPPROTO_UDP)[0][4][0]
        resolve_error = ""
    except OSError as err:
        ip, resolve_error = None, f"cannot resolve {address}: {err}"
    streams = [(dict(query), transport) for query in queries for transport in transports]
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_STREAMS, len(streams) + 1))) as pool:
        port_check = pool.submit(lambda: ip is not None and tcp_port_open(ip, port, timeout_seconds))
        asked = pool.map(
            lambda stream: _ask_stream(ip, resolve_error, port, stream[0], stream[1], tries, timeout_seconds), streams
        )
        outcomes = [outcome for stream in asked for outcome in stream]
        port_open = bool(port_check.result())
    return {
        "outcomes": outcomes,
        "tcp_port_open": port_open,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def _ask_stream(
    ip: str | None,
    resolve_error: str,
    port: int,
    query: Mapping[str, Any],
    transport: str,
    tries: int,
    timeout_seconds: float,
) -> list[dict[str, Any]]:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    kind = dns.rdatatype.from_text(str(query["type"]))
    outcomes = []
    for attempt in range(1, tries + 1):
        message = dns.message.make_query(str(query["name"]), kind)
        outcome: dict[str, Any] = {
            "name": str(query["name"]),
            "type": str(query["type"]),
            "transport": transport,
            "try": attempt,
            "rcode": None,
            "values": [],
            "error": None,
        }
        begin = time.perf_counter()
        udp_socket = None
        try:
            if ip is None:
                raise OSError(resolve_error)
            if transport == "udp":
                # A connected socket hears the ICMP "port unreachable" of a stopped server at once, instead of
                # waiting for the timeout.
                udp_socket = _connected_udp_socket(ip, port)
                response = dns.query.udp(message, ip, port=port, timeout=timeout_seconds, sock=udp_socket)
            else:
                response = dns.query.tcp(message, ip, port=port, timeout=timeout_seconds)
        except dns.exception.Timeout:
            outcome["status"] = "timeout"
            outcome["error"] = f"no answer within {timeout_seconds:g} s"
        except ConnectionRefusedError:
            outcome["status"] = "refused"
            outcome["error"] = "connection refused"
        except (OSError, EOFError, dns.exception.DNSException) as err:
            outcome["status"] = "error"
            outcome["error"] = mask_secrets(f"{type(err).__name__}: {err}")[:200]
        else:
            outcome["status"] = "answer"
            outcome["rcode"] = dns.rcode.to_text(response.rcode())
            outcome["values"] = _values(response, kind)
        finally:
            if udp_socket is not None:
                udp_socket.close()
        outcome["elapsed_ms"] = round((time.perf_counter() - begin) * 1000, 2)
        outcomes.append(outcome)
    return outcomes


def _connected_udp_socket(ip: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((ip, port))
    except OSError:
        sock.close()
        raise
    return sock


def _values(response: Any, kind: Any) -> list[str]:
    import dns.rdatatype

    values: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype != kind:
            continue
        for rdata in rrset:
            text = rdata.to_text()
            if kind in (dns.rdatatype.CNAME, dns.rdatatype.NS):
                text = text.rstrip(".").lower()
            values.append(text[:300])
            if len(values) >= MAX_VALUES:
                return values
    return values


def tcp_port_open(address: str, port: int, timeout_seconds: float) -> bool:
    """Whether the server's TCP port accepts a connection (the kernel accepts for a hung process too)."""
    try:
        with socket.create_connection((address, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


class DnsToolError(RuntimeError):
    """The tool failed, timed out or printed something that is not the documented answer."""


class DnsToolHook:
    """The networking team's ``dnsTool``, with the SOP's exact calls, as an argv (never a shell), with a timeout.

    :param command: argv of the tool, e.g. ``["/usr/local/bin/dnsTool"]`` (checked by the SOP's settings).
    :param timeout_seconds: each call's limit; a call that takes longer is killed and fails.
    """

    def __init__(self, *, command: Sequence[str], timeout_seconds: float = 30.0) -> None:
        self.command = list(command)
        self.timeout_seconds = float(timeout_seconds)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*self.command, *args]
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout_seconds,
                check=False,
                stdin=subprocess.DEVNULL,
                shell=False,
            )
        except subprocess.TimeoutExpired as err:
            raise DnsToolError(f"{' '.join(args)}: no answer within {self.timeout_seconds:g} s (killed)") from err
        except OSError as err:
            raise DnsToolError(f"{' '.join(args)}: could not run the tool: {err}") from err

    def active_server(self, known: Iterable[str]) -> str:
        """``dnsTool -q active_server``: exactly one line naming one of ``known`` servers."""
        result = self.run("-q", "active_server")
        out, err = _bounded(result.stdout), _bounded(result.stderr)
        if result.returncode != 0:
            raise DnsToolError(f"-q active_server exited {result.returncode}: {mask_secrets(err or out)}")
        lines = [line.strip() for line in out.strip().splitlines()]
        names = set(known)
        if len(lines) != 1 or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", lines[0]) or lines[0] not in names:
            raise DnsToolError(
                f"-q active_server printed {out[:200]!r}: expected one line naming one of {', '.join(sorted(names))}"
            )
        return lines[0]

    def shutdown(self, server: str) -> dict[str, Any]:
        """``dnsTool -a shutdown -s <server>``; ``ok`` False (with the tool's words) when it failed."""
        return self._action("-a", "shutdown", "-s", server)

    def failover(self, standby: str, *, force: bool) -> dict[str, Any]:
        """``dnsTool -a failover -s <standby>`` (``-f`` with force)."""
        return self._action("-a", "failover", "-s", standby, *(["-f"] if force else []))

    def _action(self, *args: str) -> dict[str, Any]:
        try:
            result = self.run(*args)
        except DnsToolError as err:
            return {"ok": False, "call": list(args), "detail": mask_secrets(err)[:500]}
        text = (_bounded(result.stdout) + " " + _bounded(result.stderr)).strip()
        return {
            "ok": result.returncode == 0,
            "call": list(args),
            "exit_code": result.returncode,
            "detail": mask_secrets(text)[:500],
        }


def _bounded(text: str | None) -> str:
    return (text or "")[:MAX_OUTPUT]
