#!/usr/bin/env bash
# Installs the system packages twinkle's build, tests and benchmarks need.
# As root: installs what is missing with apt-get. Otherwise: prints exactly what
# is missing and the command that installs it, and fails.
set -euo pipefail

# package -> why we need it
declare -A WHY=(
  [libclang-dev]="bindgen at build time (userfaultfd crate)"
  [redis-server]="the storage tier of the guest apps; tests start their own"
  [nginx-light]="peer proxy and static upstream in benchmarks"
  [haproxy]="peer proxy in the proxy benchmark"
  [wrk]="peer load generator in benchmarks"
  [curl]="smoke tests and the demo"
  [pkg-config]="build scripts of -sys crates"
)
PKGS=(libclang-dev redis-server nginx-light haproxy wrk curl pkg-config)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is not on PATH; install the Rust toolchain (rustup) first" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all system packages present (${PKGS[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing system packages:" >&2
  for p in "${missing[@]}"; do echo "  $p  -- ${WHY[$p]}" >&2; done
  echo "deps: install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start nginx/redis/haproxy as system services here:
# tests and benchmarks start their own instances on free ports.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
