#!/usr/bin/env bash
# Install the Debian packages whose servers and tools the tests start themselves (on free loopback ports):
# PostgreSQL, Redis, Prometheus, Alertmanager, logrotate (benchmark baseline), zstd and dnsmasq. Nothing is started here.
set -euo pipefail

packages=()
have() { command -v "$1" >/dev/null 2>&1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
have redis-server || packages+=(redis-server)
have prometheus || packages+=(prometheus)
have prometheus-alertmanager || packages+=(prometheus-alertmanager)
have logrotate || [ -x /usr/sbin/logrotate ] || packages+=(logrotate)
have zstd || packages+=(zstd)
have docker-compose || packages+=(docker-compose)
# dns_failover's two DNS servers (tests and make run start them unprivileged on loopback).
have dnsmasq || [ -x /usr/sbin/dnsmasq ] || packages+=(dnsmasq-base)

if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages the tests need: ${packages[*]}"

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif have sudo && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "error: the tests need these Debian packages: ${packages[*]}" >&2
  echo "       run as root (or with passwordless sudo), or install them: apt-get install ${packages[*]}" >&2
  exit 1
fi
if ! have apt-get; then
  echo "error: apt-get not found; install these packages with your package manager: ${packages[*]}" >&2
  exit 1
fi

# The packages' own services must not start here: the tests start their own servers on free ports.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# Stop anything a package started anyway (no init system in CI containers, but be sure).
for service in postgresql redis-server prometheus prometheus-alertmanager; do
  $SUDO service "$service" stop >/dev/null 2>&1 || true
done
echo "Installed: ${packages[*]}"
