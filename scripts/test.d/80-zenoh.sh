#!/usr/bin/env bash
# The Zenoh bridge: the wire format's unit tests, then bridge sides as separate processes
# (`shmframe bridge` built with `--features zenoh`) on loopback and across two network
# namespaces joined by a veth pair: frames and metadata bit-identical, each side
# restarted, malformed messages refused and counted.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

# `ip` for the network-namespace test, which needs root: #[ignore]d in `cargo test`, run here
# where a network namespace can be created.
need_apt iproute2
netns=0
probe="sfz-probe-$$"
if ip netns add "$probe" 2>/dev/null; then
  netns=1
  ip netns del "$probe"
else
  echo "note: cannot create network namespaces here (not root?); the veth test is skipped"
fi
ignored=()
[ "$netns" = 1 ] && ignored=(--include-ignored)

# The wire format's unit tests ran in the main `cargo test` step; this reruns the end-to-end
# tests with the network-namespace test, using the main step's exact build (same package
# selection and features, so nothing is rebuilt).
# shellcheck disable=SC2086
check "shmframe bridge --features zenoh, end to end" \
  cargo test --workspace $CLI_FEATURES --test zenoh -- "${ignored[@]}"

left="$(ip netns list 2>/dev/null | grep -E '^sfz-' || true)"
if [ -n "$left" ]; then
  failed=$((failed + 1))
  echo "FAILED: network namespaces left behind: $left"
fi

echo "zenoh: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
[ "$netns" = 1 ] ||
  skip_or_fail "no network namespaces here (not root?): the veth test of the bridge did not run"
