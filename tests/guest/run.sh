#!/bin/bash
# `make test-guest`: install what real guests need (Debian packages only), build the test
# guest (reused while up to date), run tests/guest, and leave nothing behind even when the
# tests crash. Skipped, successfully, when this machine cannot run them (not root, no apt),
# unless VPS_TEST_GUESTS=required (CI), where a skip is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
export VPS_GUEST_DIR=${VPS_GUEST_DIR:-$PWD/.guest}

skip() {
  if [ "${VPS_TEST_GUESTS:-}" = required ]; then
    echo "test-guest: required, but $1" >&2
    exit 1
  fi
  echo "test-guest: skipped: $1"
  exit 0
}
[ "$(id -u)" = 0 ] || skip "it needs root (libvirtd, a bridge, a network namespace)"
command -v apt-get >/dev/null || skip "it needs apt-get to install libvirt and QEMU"
"$PYTHON" -c "import libvirt" 2>/dev/null || skip "libvirt-python is missing (make .venv/.dev)"

# `-sysv` keeps apt from pulling in systemd; the daemons are started by the tests.
PACKAGES="libvirt-daemon-system libvirt-daemon-system-sysv qemu-system-x86 qemu-utils
  busybox-static cpio syslinux syslinux-common mtools dosfstools"
missing=""
for package in $PACKAGES; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
  echo "test-guest: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
fi

started=$(date +%s)
tests/guest/build.sh "$VPS_GUEST_DIR"
echo "test-guest: guest image ready in $(($(date +%s) - started)) s"

# The tests start and stop libvirtd and virtlogd themselves. If they die half-way, remove
# what they would have: the service, our domains, pool and its directory, the daemons, the
# network, /dev/kvm's mode.
kvm_mode=$(stat -c '%a %g' /dev/kvm 2>/dev/null || true)
running_before=""
ip link show vpsbr0 >/dev/null 2>&1 && running_before="network"
for name in libvirtd virtlogd; do
  pid=$(cat "/run/$name.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && running_before="$running_before $name"
done
cleanup() {
  local pid pool_dir domain
  # A `vps serve` the tests started, recognised by the pool its environment names.
  for pid in $(pgrep -f "vps serve" || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "VPS_LIBVIRT_STORAGE_POOL=vps-guest-tests"; then
      kill "$pid" 2>/dev/null || true
    fi
  done
  pid=$(cat /run/libvirtd.pid 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [[ $running_before != *libvirtd* ]]; then
    for domain in $(virsh -q -c qemu:///system list --all --name | grep -E '^(vps-[0-9]+|kvm-probe)$'); do
      virsh -q -c qemu:///system destroy "$domain" >/dev/null 2>&1 || true
      virsh -q -c qemu:///system undefine "$domain" >/dev/null 2>&1 || true
    done
    pool_dir=$(virsh -q -c qemu:///system pool-dumpxml vps-guest-tests 2>/dev/null |
      sed -n 's|.*<path>\(.*\)</path>.*|\1|p' || true)
    virsh -q -c qemu:///system pool-destroy vps-guest-tests >/dev/null 2>&1 || true
    virsh -q -c qemu:///system pool-undefine vps-guest-tests >/dev/null 2>&1 || true
    [ -n "$pool_dir" ] && rm -rf "$pool_dir"
  fi
  for name in libvirtd virtlogd; do
    pid=$(cat "/run/$name.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [[ $running_before != *$name* ]]; then
      echo "test-guest: stopping $name (pid $pid) left by the tests" >&2
      kill "$pid" 2>/dev/null || true
    fi
  done
  [[ $running_before == *network* ]] || tests/guest/net.sh down
  if [ -n "$kvm_mode" ]; then
    chmod "${kvm_mode% *}" /dev/kvm
    chgrp "${kvm_mode#* }" /dev/kvm
  fi
}
trap cleanup EXIT

started=$(date +%s)
"$PYTHON" -m pytest tests/guest -rs "$@"
echo "test-guest: tests took $(($(date +%s) - started)) s"
