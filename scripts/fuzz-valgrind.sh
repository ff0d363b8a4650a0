#!/bin/sh
# Runs the fuzzer's scripts (tests/e2e/fuzz.lua) under valgrind's memcheck, on every target, for a
# small range of seeds: an invalid read or write, a use of freed memory or of an uninitialised
# value anywhere in the process (Lua's C code, mlua, the bindings) fails the run. The binary is
# built with the system allocator (feature `system-alloc`), whose blocks valgrind can see.
#
# Usage: scripts/fuzz-valgrind.sh [FIRST_SEED [COUNT [TARGETS]]]
#   defaults: 1, 2, "esp8266 esp32 host". Extra cargo flags (e.g. the 5.3 build's
#   `--no-default-features --features nodemcu-sim/lua53,net-api/lua53`) in $CARGO_FLAGS.
# Slow: valgrind runs the simulator 20 to 50 times slower, so each script gets a long
# `--timeout`, and the watchdog (CPU time) resets more scripts early than it would natively.
set -eu

first=${1:-1}
count=${2:-2}
targets=${3:-"esp8266 esp32 host"}
root=$(cd "$(dirname "$0")/.." && pwd)

command -v valgrind >/dev/null || { echo "fuzz-valgrind: valgrind is not installed" >&2; exit 2; }

# shellcheck disable=SC2086 # CARGO_FLAGS is a list of flags
cargo build --quiet --manifest-path "$root/Cargo.toml" -p nodemcu-sim --features system-alloc ${CARGO_FLAGS:-}
bin="$root/target/debug/nodemcu-sim"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'hello\n' >"$work/f.txt"

failed=0
seed=$first
while [ "$seed" -lt $((first + count)) ]; do
  { printf 'local SEED, CALLS = %s, 300\nnode.setonerror(function() end)\n' "$seed"
    cat "$root/tests/e2e/fuzz.lua"; } >"$work/init.lua"
  for target in $targets; do
    status=0
    valgrind --quiet --error-exitcode=99 --leak-check=no --log-file="$work/vg.log" \
      "$bin" run "$work/init.lua" --target "$target" --timeout 30000 \
      --dns 127.0.0.1 --dns-port 9 >"$work/out.log" 2>&1 || status=$?
    if [ "$status" -eq 99 ] || [ -s "$work/vg.log" ]; then
      echo "seed $seed --target $target: memcheck found errors (status $status):"
      cat "$work/vg.log"
      failed=1
    else
      echo "seed $seed --target $target: clean (status $status)"
    fi
  done
  seed=$((seed + 1))
done
exit $failed
