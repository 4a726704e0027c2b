#!/usr/bin/env bash
# Runs every test of the project (what `make test` and CI run) and ends with
# one line that totals them: "N passed, N failed".
set -uo pipefail
CARGO=${CARGO:-cargo}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
step() {
  echo "+ $*"
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then status=$rc; fi
}
# Restore tests take guest memory from the host's 2 MiB huge-page pool
# (vmm-lite/src/memory.rs, tests/snapshot.rs): reserve it when we may.
pool=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
want=256
if [ -r "$pool" ] && [ "$(cat "$pool")" -lt "$want" ]; then
  if [ -w "$pool" ]; then
    echo "$want" > "$pool"
    echo "+ huge-page pool: $(cat "$pool") pages of 2 MiB"
  else
    echo "note: the restore tests need $want huge pages; as root: sysctl vm.nr_hugepages=$want" >&2
  fi
fi
step $CARGO test --workspace --all-targets --no-fail-fast
# The dispatcher's tests again with every request through the hyper engine.
step env DISPATCH_TEST_ENGINE=hyper $CARGO test -p dispatcher --test proxy
step $CARGO test --workspace --doc
step $CARGO test --manifest-path guests/abi/Cargo.toml --target-dir target/guests-host --lib
step $CARGO test --manifest-path guests/appspec/Cargo.toml --target-dir target/guests-host --lib
step $CARGO test --manifest-path guests/resp/Cargo.toml --target-dir target/guests-host --lib
step $CARGO test --manifest-path guests/storage/Cargo.toml --target-dir target/guests-host --lib
step $CARGO test --manifest-path guests/webpage/Cargo.toml --target-dir target/guests-host --lib
step $CARGO test --manifest-path guests/rubis-app/Cargo.toml --target-dir target/guests-host --lib
step $CARGO test --manifest-path guests/tpcw-app/Cargo.toml --target-dir target/guests-host --lib
# The shipped example policies must check; a known-bad one must not.
step target/debug/twinkle policy check policies/examples/rubis.toml policies/examples/tpcw.toml policies/examples/two-services.toml
if target/debug/twinkle policy check policies/tests/bad/min-above-max.toml >/dev/null 2>&1; then
  echo "policy check accepted a bad policy" >&2
  status=1
fi
passed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit "$status"
