#!/usr/bin/env bash
# The Zenoh bridge: the wire format's unit tests, then bridge sides as separate processes
# (`shmframe bridge` built with `--features zenoh`) on loopback and across two network
# namespaces joined by a veth pair: frames and metadata bit-identical, each side
# restarted, malformed messages refused and counted.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

# `ip` for the network-namespace tests. As root they must run (not skip).
need_apt iproute2
if [ "$(id -u)" -eq 0 ]; then
  export SHMFRAME_REQUIRE_NETNS=1
fi


# The wire format's unit tests ran in the main `cargo test` step; this reruns the end-to-end
# tests with the network-namespace test required (as root), using the main step's exact build
# (same package selection and features, so nothing is rebuilt).
# shellcheck disable=SC2086
check "shmframe bridge --features zenoh, end to end" \
  cargo test --workspace $CLI_FEATURES --test zenoh

left="$(ip netns list 2>/dev/null | grep -E '^sfz-' || true)"
if [ -n "$left" ]; then
  failed=$((failed + 1))
  echo "FAILED: network namespaces left behind: $left"
fi

echo "zenoh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
