#!/bin/sh
# The guests' network, on this machine only: a bridge with no address, no IPv6 and no uplink,
# and a veth pair into a private network namespace that holds the guests' gateway address.
# Nothing is routed or NATed anywhere; the tests reach a guest from inside the namespace.
# usage: net.sh up GATEWAY/PREFIX | net.sh down      (idempotent; down ignores what is gone)
set -eu
BRIDGE=vpsbr0
NETNS=vpsnet
case "${1:-}" in
up)
  ip link add "$BRIDGE" type bridge
  sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1"
  ip link set "$BRIDGE" up
  ip netns add "$NETNS"
  ip link add vpsh0 type veth peer name vpsh1
  sysctl -qw net.ipv6.conf.vpsh0.disable_ipv6=1
  ip link set vpsh1 netns "$NETNS"
  ip link set vpsh0 master "$BRIDGE" up
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" addr add "$2" dev vpsh1
  ip -n "$NETNS" link set vpsh1 up
  ;;
down)
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del vpsh0 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  ;;
*)
  echo "usage: $0 up GATEWAY/PREFIX | down" >&2
  exit 2
  ;;
esac
