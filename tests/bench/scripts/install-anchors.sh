#!/usr/bin/env bash
# Installs the anchors of `chat-bench --compare` (issue 24) from Debian's packages: ngircd (an
# IRC server, run as a tree of servers) and nats-server (run as a cluster). Idempotent: a
# package already installed is left as it is. Their packaged services are neither enabled nor
# started: a Debian postinst may start ngircd, so the script keeps invoke-rc.d from starting
# anything while it installs and stops/disables what systemd may have started all the same.
# chat-bench starts its own processes on 127.0.x.y addresses and stops them by pid.
#
# Usage: tests/bench/scripts/install-anchors.sh   (as root, or with sudo available)
# Exits 0 when both are installed; otherwise names each one that could not be installed and
# exits 1 (`chat-bench --compare` still runs chatd and whichever anchor is there).
set -uo pipefail

packages=(ngircd nats-server)
binaries=(/usr/sbin/ngircd /usr/sbin/nats-server)

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "install-anchors: not root and no sudo: cannot install ${packages[*]}" >&2
    exit 1
  fi
fi

missing=()
for i in "${!packages[@]}"; do
  if dpkg-query -W -f='${Status}' "${packages[$i]}" 2>/dev/null | grep -q 'install ok installed' \
    && [[ -x ${binaries[$i]} ]]; then
    echo "install-anchors: ${packages[$i]} already installed (${binaries[$i]})"
  else
    missing+=("${packages[$i]}")
  fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
  # Keep the postinst scripts from starting the services (invoke-rc.d asks policy-rc.d;
  # 101 = "action forbidden"). An existing policy-rc.d is left alone.
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null \
      && "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  cleanup() { [[ -n $made_policy ]] && "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; }
  trap cleanup EXIT
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or old on a fresh machine.
  "${sudo[@]}" apt-get update -qq || echo "install-anchors: apt-get update failed" >&2
  for p in "${missing[@]}"; do
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$p" \
      || echo "install-anchors: apt-get install $p failed" >&2
  done
fi

# Whatever the packages enabled or started is disabled and stopped: the benchmark must not
# share the machine with a server it did not start. (`systemctl disable` works without a
# running systemd: it removes the links the postinst made.)
if command -v systemctl >/dev/null; then
  for unit in ngircd nats-server; do
    if [[ -e /lib/systemd/system/$unit.service || -e /usr/lib/systemd/system/$unit.service ]]; then
      "${sudo[@]}" systemctl disable "$unit.service" >/dev/null 2>&1 || true
      if [[ -d /run/systemd/system ]]; then
        "${sudo[@]}" systemctl stop "$unit.service" >/dev/null 2>&1 || true
      fi
    fi
  done
fi
if [[ ! -d /run/systemd/system && -x /etc/init.d/ngircd ]]; then
  "${sudo[@]}" /etc/init.d/ngircd stop >/dev/null 2>&1 || true
fi

failed=()
for i in "${!packages[@]}"; do
  if [[ -x ${binaries[$i]} ]]; then
    echo "install-anchors: ${packages[$i]} ready: ${binaries[$i]}"
  else
    failed+=("${packages[$i]} (${binaries[$i]})")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  for f in "${failed[@]}"; do
    echo "install-anchors: could not install $f; chat-bench --compare will skip it" >&2
  done
  exit 1
fi
