#!/usr/bin/env bash
# The demo behind `make demo`: what twinkle can do today, on the embedded
# defaults. Needs /dev/kvm for the VM part.
set -euo pipefail
T=${TWINKLE:-target/debug/twinkle}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Policies: check the examples, then replay a 10x flash crowd through the RUBiS policy"
$T policy check policies/examples/*.toml
$T policy simulate policies/examples/rubis.toml --trace policies/examples/flash-crowd.csv

if [ ! -w /dev/kvm ]; then
  echo "demo: /dev/kvm is not usable here; the VM part needs KVM" >&2
  exit 1
fi

say "2. A web app in a KVM VM: boot hello, talk HTTP to it, ask its VMM for status"
dir=$(mktemp -d)
trap 'kill "$vm" 2>/dev/null || true; rm -rf "$dir"' EXIT
$T vm run --app hello --listen 127.0.0.1:0 --control "$dir/vm.sock" > "$dir/out" 2> "$dir/err" &
vm=$!
for _ in $(seq 100); do grep -q '^created' "$dir/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^listening //p' "$dir/out")
echo "VM listening on $addr; $(grep '^created' "$dir/out")"
curl -s "http://$addr/"
curl -s "http://$addr/health"
curl -s -o /dev/null -w "GET /missing -> %{http_code}\n" "http://$addr/missing"
$T vm control --socket "$dir/vm.sock" status
$T vm control --socket "$dir/vm.sock" stop > /dev/null
wait "$vm" || true

say "3. Fast start: image hello at its ready point, track its working set, restore it with the twinkle strategy"
$T image build --app hello --out "$dir/img"
$T image track --image "$dir/img" --warmup / --warmup /health --max-window 3s
$T vm restore --image "$dir/img" --strategy twinkle --listen 127.0.0.1:0 --control "$dir/r.sock" > "$dir/rout" 2>/dev/null &
vm=$!
for _ in $(seq 100); do grep -q '^created' "$dir/rout" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^listening //p' "$dir/rout")
echo "restored VM on $addr; $(grep '^created' "$dir/rout")"
curl -s "http://$addr/"
$T vm control --socket "$dir/r.sock" status | grep -A9 '"paging"'
$T vm control --socket "$dir/r.sock" stop > /dev/null
wait "$vm" || true

say "4. The dispatcher in front of two restored VMs, loaded by twinkle loadgen; then one VM drains out"
pids=()
for i in 1 2; do
  $T vm restore --image "$dir/img" --strategy twinkle --listen 127.0.0.1:0 > "$dir/v$i" 2>/dev/null &
  pids+=($!)
done
for i in 1 2; do
  for _ in $(seq 100); do grep -q '^created' "$dir/v$i" 2>/dev/null && break; sleep 0.05; done
done
a1=$(sed -n 's/^listening //p' "$dir/v1"); a2=$(sed -n 's/^listening //p' "$dir/v2")
$T dispatch --listen 127.0.0.1:0 --admin 127.0.0.1:0 --upstream "$a1" --upstream "$a2" > "$dir/d" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q '^admin on' "$dir/d" 2>/dev/null && break; sleep 0.05; done
lb=$(sed -n 's/^listening on //p' "$dir/d"); admin=$(sed -n 's/^admin on //p' "$dir/d")
echo "dispatcher on $lb (admin $admin) in front of $a1 and $a2"
echo "3 s of load through the dispatcher (16 users, no think time):"
$T loadgen --target "http://$lb/" --users 16 --think 0 --duration 3s --threads 1
curl -s -X DELETE "http://$admin/services/default/upstreams/$a1" > /dev/null
for _ in $(seq 10); do curl -s -o /dev/null -w "%{http_code} " "http://$lb/"; done; echo
curl -s "http://$admin/status" | grep -E '"(addr|state|requests_total|requests|p99_ms)"'
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true

say "5. The RUBiS auction site in a VM, its data in Redis: load the data set, boot rubis, 5 s of the bidding mix"
port=$((20000 + RANDOM % 20000))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no > /dev/null 2>&1 &
redis=$!
trap 'kill "$redis" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
$T data load --app rubis --redis "redis://127.0.0.1:$port"
$T vm run --app rubis --listen 127.0.0.1:0 --connect "redis=127.0.0.1:$port" > "$dir/rubis" 2> "$dir/rubis.err" &
vm=$!
for _ in $(seq 200); do grep -q 'ready after' "$dir/rubis.err" 2>/dev/null && break; sleep 0.05; done
grep -o 'rubis: ready in.*' "$dir/rubis.err" || true
addr=$(sed -n 's/^listening //p' "$dir/rubis")
curl -s "http://$addr/health"
$T loadgen --target "http://$addr/" --workload rubis --mix bidding --users 16 --think 0 --duration 5s --threads 1
kill "$vm" "$redis" 2>/dev/null || true
wait 2>/dev/null || true

say "6. A guest that crashes ends its VM with a clear message, not the VMM"
$T vm run --app crash --arg null || echo "(exit code $?)"
$T vm run --app crash --arg stack || echo "(exit code $?)"
