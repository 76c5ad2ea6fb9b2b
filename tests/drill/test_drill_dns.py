"""The dns_primary_down drill's injector, exporter, recovery check and restore, on the real dnsmasq pair."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from sandbox.dns_pair import DnsPair
from sandbox.drill import dns, exporters, injectors, recovery


def _published(pair: DnsPair) -> dict[str, Any]:
    return {"dns_failover": {"home": str(pair.home)}}


def _probe(pair: DnsPair) -> dict[str, float]:
    samples = exporters.EXPORTERS["dns_probe"](_published(pair))
    return {
        server: value
        for series, value in samples.items()
        for server in ("ns1", "ns2")
        if f'server="{server}"' in series
    }


def test_primary_stopped_then_failed_over_then_restored(dns_pair: DnsPair) -> None:
    published = _published(dns_pair)
    check = recovery.CHECKS["dns_resolves"]
    assert check(published)
    assert _probe(dns_pair) == {"ns1": 1.0, "ns2": 1.0}

    fault = injectors.INJECTORS["stop_primary_dns"](published)

    assert "ns1" in fault
    assert "pid" in fault
    assert not dns_pair.running("ns1")
    assert _probe(dns_pair) == {"ns1": 0.0, "ns2": 1.0}
    assert not check(published)  # ns1 is still the active server and answers nothing
    # What dns_failover's fail_over_to_standby runs (the sandbox's dnsTool stand-in).
    subprocess.run([str(dns_pair.tool), "-a", "failover", "-s", "ns2"], check=True, capture_output=True, timeout=30)
    assert check(published)  # the names resolve through the switched server
    assert _probe(dns_pair)["ns1"] == 0.0  # the old primary stays down until someone restores it

    done = injectors.RESTORERS["restore_dns_pair"](published)

    assert "ns1 active" in done
    assert dns_pair.active == "ns1"
    assert dns_pair.running("ns1")
    assert _probe(dns_pair) == {"ns1": 1.0, "ns2": 1.0}
    assert check(published)


@pytest.mark.parametrize("mode", [pytest.param("wrong_data", id="wrong-data"), pytest.param("servfail", id="servfail")])
def test_a_server_answering_wrongly_is_not_healthy(dns_pair: DnsPair, mode: str) -> None:
    dns_pair.set_mode("ns1", mode)
    assert not recovery.CHECKS["dns_resolves"](_published(dns_pair))
    assert _probe(dns_pair) == {"ns1": 0.0, "ns2": 1.0}


def test_the_probe_names_each_server_with_its_address(dns_pair: DnsPair) -> None:
    samples = dns.dns_probe(_published(dns_pair))
    address, port = dns_pair.address("ns2")
    assert f'probe_success{{instance="{address}:{port}",job="dns",query="www.example.test",server="ns2"}}' in samples


def test_stopping_an_already_stopped_primary_is_refused(dns_pair: DnsPair) -> None:
    dns_pair.break_server("ns1", "stopped")
    with pytest.raises(RuntimeError, match="ns1 is not running"):
        dns.stop_primary_dns(_published(dns_pair))
