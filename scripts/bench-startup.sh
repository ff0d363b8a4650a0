#!/usr/bin/env bash
# Startup cost of `nodemcu-sim run` on a one-line script, side by side with the reference interpreter
# lua5.1 (Debian package `lua5.1`), whole process each time. Prints the mean of each and the ratio.
# Usage: scripts/bench-startup.sh [RUNS]     (default 200; installs nothing, builds release)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
command -v lua5.1 >/dev/null || { echo "lua5.1 not found: apt-get install lua5.1" >&2; exit 1; }
cargo build --release -q -p nodemcu-sim
sim=target/release/nodemcu-sim
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
echo 'print("hello")' > "$dir/one.lua"

# Mean wall time of a command over $runs runs, in microseconds (after 10 warm-up runs).
mean_us() {
  for _ in $(seq 10); do "$@" >/dev/null; done
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do "$@" >/dev/null; done
  end=$(date +%s%N)
  echo $(( (end - start) / runs / 1000 ))
}

lua_us=$(mean_us lua5.1 "$dir/one.lua")
sim_us=$(mean_us "$sim" run "$dir/one.lua")
sim_host_us=$(mean_us "$sim" run --target host "$dir/one.lua")
printf '%-34s %8s\n' "command" "mean"
printf '%-34s %6d us\n' "lua5.1 one.lua" "$lua_us"
printf '%-34s %6d us\n' "nodemcu-sim run one.lua" "$sim_us"
printf '%-34s %6d us\n' "nodemcu-sim run --target host" "$sim_host_us"
awk -v s="$sim_us" -v l="$lua_us" 'BEGIN { printf "ratio nodemcu-sim / lua5.1: %.2fx (aim: <= 2x)\n", s / l }'
