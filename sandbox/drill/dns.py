"""The ``dns_primary_down`` drill: the sandbox's primary DNS server stops; dns_failover fails over to the standby.

Everything is read from the sandbox's DNS pair as the sandbox knows it (``published["dns_failover"]["home"]``: its
``state.json`` says which server is active, where each listens, and each dnsmasq's pid file), never from the run.

- injector :func:`stop_primary_dns`: the active server's dnsmasq stopped by its pid (the process is gone: connection
  refused), what dns_failover's table calls *unreachable* (fail over now, no five-minute wait);
- exporter :func:`dns_probe`: blackbox-style, a real DNS query for the zone's first record against each server's
  address on every scrape (``probe_success{job="dns", server=...}``), as a blackbox_exporter ``dns`` module would;
- recovery :func:`dns_resolves`: the server the pair says is active answers every record correctly (the failover is
  verified from outside: the name resolves through the switched server);
- restore :func:`restore_dns_pair`: both servers running and answering, ns1 active again (the sandbox's start state).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox.dns_pair import RECORDS, DnsPair, pid_of, read_state, stop_server

#: The server the sandbox starts as active (sandbox/dns_pair.py): the drill's "primary".
PRIMARY = "ns1"
#: A real probe's timeout: a stopped server never answers over UDP, and a scrape comes every second.
PROBE_TIMEOUT_SECONDS = 0.5


def _home(published: dict[str, Any]) -> Path:
    return Path(published["dns_failover"]["home"])


def answers(address: str, port: int, *, records: dict[str, str] | None = None, timeout: float = 1.0) -> bool:
    """The server at ``address:port`` answers each of ``records`` (name -> IPv4) with exactly that address (UDP)."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    for name, expected in (records if records is not None else RECORDS).items():
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            answer = dns.query.udp(query, address, port=port, timeout=timeout)
        except (dns.exception.DNSException, OSError):
            return False
        if answer.rcode() != dns.rcode.NOERROR:
            return False
        found = {item.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for item in rrset}
        if found != {expected}:
            return False
    return True


def stop_primary_dns(published: dict[str, Any]) -> str:
    """The fault: the active (primary) server's dnsmasq stopped by the pid the sandbox recorded for it."""
    home = _home(published)
    active = str(read_state(home)["active"])
    pid = pid_of(home, active)
    if pid is None:
        raise RuntimeError(f"the sandbox's active DNS server {active} is not running: nothing to stop")
    stop_server(home, active)
    return f"stopped {active}'s dnsmasq (pid {pid}), the active DNS server"


def dns_probe(published: dict[str, Any]) -> dict[str, float]:
    """``probe_success`` of a DNS query for the zone's first record against each server (1: the right answer)."""
    from sandbox.drill.exporters import labels_text

    state = read_state(_home(published))
    name, expected = next(iter(RECORDS.items()))
    servers = sorted((server, str(facts["address"]), int(facts["port"])) for server, facts in state["servers"].items())
    # In parallel: a stopped server costs the whole timeout, and the scrape (every second) must not time out.
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        results = list(
            pool.map(
                lambda item: answers(item[1], item[2], records={name: expected}, timeout=PROBE_TIMEOUT_SECONDS),
                servers,
            )
        )
    samples: dict[str, float] = {}
    for (server, address, port), ok in zip(servers, results, strict=True):
        labels = {"job": "dns", "server": server, "instance": f"{address}:{port}", "query": name}
        samples[f"probe_success{{{labels_text(labels)}}}"] = 1.0 if ok else 0.0
    return samples


def dns_resolves(published: dict[str, Any]) -> bool:
    """Healthy: the server the pair says is active answers every record of the zone correctly."""
    try:
        state = read_state(_home(published))
        facts = state["servers"][state["active"]]
        return answers(str(facts["address"]), int(facts["port"]))
    except (OSError, KeyError, ValueError):
        return False


def restore_dns_pair(published: dict[str, Any]) -> str:
    """Both servers running and answering, ns1 active, no faults: as the sandbox started."""
    DnsPair(_home(published)).reset()
    return f"DNS pair reset: both servers running, {PRIMARY} active"
