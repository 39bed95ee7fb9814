#!/usr/bin/env bash
# miri on the syscall-free core: the seqlock ring (incl. a threaded writer/readers test under
# miri's data-race detector), the frame/schema encoding, names and the layout geometry. The rest
# of the library maps shared memory and makes system calls, which miri cannot run.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

prebuilt miri_setup
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  # The one case where this step does not test: the machine cannot get the tool at all (77:
  # scripts/test.sh counts the step as skipped).
  echo "miri: SKIPPED — rustup could not fetch a nightly toolchain with miri on this machine"
  exit 77
fi
cargo +nightly miri test -p shmframe --lib -- ring:: frame:: name:: layout::
