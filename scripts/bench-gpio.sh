#!/usr/bin/env bash
# Speed of the virtual board: gpio.write calls per second in a tight loop, and gpio.trig callbacks
# per second from a 1 kHz square wave (a `signal` part) under virtual time, each with the --trace
# stream off and on (to a file). Prints the machine and the commit with the figures.
# Usage: scripts/bench-gpio.sh [WRITES] [EDGES]   (defaults 10000000 and 200000; builds release)
set -euo pipefail
cd "$(dirname "$0")/.."
writes=${1:-10000000}
edges=${2:-200000}
cargo build --release -q -p nodemcu-sim
sim=$PWD/target/release/nodemcu-sim
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT

mkdir "$dir/write" "$dir/trig"
# Two writes per turn, so the loop's own cost is shared by two calls; timed inside the script on
# the real clock (tmr.now, µs).
cat > "$dir/write/init.lua" <<LUA
local write, n = gpio.write, $writes / 2
gpio.mode(1, gpio.OUTPUT)
local t0 = tmr.now()
for _ = 1, n do write(1, 1) write(1, 0) end
print(tmr.now() - t0)
LUA
cat > "$dir/trig/nodemcu-sim.toml" <<'TOML'
[[board.part]]
kind = "signal"
pin = 2
hz = 1000
TOML
cat > "$dir/trig/init.lua" <<LUA
local n = 0
gpio.mode(2, gpio.INT)
gpio.trig(2, "up", function() n = n + 1 if n == $edges then gpio.trig(2, "none") end end)
LUA

# writes/s for one run: the script reports its loop's µs.
write_rate() {
  local us
  us=$("$sim" run "$@" "$dir/write/init.lua")
  awk -v n="$writes" -v us="$us" 'BEGIN { printf "%.2f M/s", n / us }'
}

# callbacks/s for one run: wall time of the whole process (a run of ~$edges/1000 s of device time).
trig_rate() {
  local start end
  start=$(date +%s%N)
  "$sim" run --virtual-time "$@" "$dir/trig/init.lua"
  end=$(date +%s%N)
  awk -v n="$edges" -v ns="$((end - start))" 'BEGIN { printf "%.0f k/s", n / ns * 1e6 }'
}

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
echo "machine: $(uname -srm), $(nproc) cores${cpu:+, $cpu}"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (modified)')"
printf '%-44s %12s %12s\n' "" "trace off" "trace on"
printf '%-44s %12s %12s\n' "gpio.write, tight loop ($writes calls)" \
  "$(write_rate)" "$(write_rate --trace "$dir/trace.jsonl")"
printf '%-44s %12s %12s\n' "gpio.trig callbacks, 1 kHz signal ($edges)" \
  "$(trig_rate)" "$(trig_rate --trace "$dir/trace.jsonl")"
