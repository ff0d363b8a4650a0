#!/usr/bin/env bash
# sjson decode and encode of a ~2 KB and a ~200 KB document (scripts/bench/json.lua makes them,
# deterministically), under nodemcu-sim's three targets, side by side with lua-cjson under lua5.1
# (Debian packages `lua5.1 lua-cjson`). Prints microseconds per operation and the speed of each
# nodemcu-sim run relative to lua-cjson (above 1.0x: faster), the machine and the commit.
# A document that does not fit a target's heap is reported as such.
#
# How it measures: both sides the same way, as the whole process's CPU time (user + sys, from
# getrusage(RUSAGE_CHILDREN) in a python3 wrapper, to the microsecond; GNU time's 10 ms is too
# coarse) of a run doing N operations, minus that of a run doing 0 (start-up, making the
# document, exit), divided by N. Each figure is the median of RUNS such differences (default 3). No clock
# inside the script is used: a device target's `tmr.now` is wall time, `os.clock` is CPU time.
# Usage: scripts/bench-sjson.sh              (builds release; installs nothing)
#        RUNS=5 scripts/bench-sjson.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v lua5.1 >/dev/null || { echo "lua5.1 not found: apt-get install lua5.1 lua-cjson" >&2; exit 1; }
lua5.1 -e 'require "cjson"' 2>/dev/null || { echo "lua-cjson not found: apt-get install lua-cjson" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (it reads the CPU time)" >&2; exit 1; }
cargo build --release -q -p nodemcu-sim
sim=$PWD/target/release/nodemcu-sim
runs=${RUNS:-3}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cp scripts/bench/json.lua "$dir/json.lua"
# cputime OUT COMMAND...: runs COMMAND (stdout to "$dir/out", stderr to "$dir/err") and writes its
# user + sys CPU seconds to OUT.
cat >"$dir/cputime.py" <<'PY'
import resource, subprocess, sys
d = sys.argv[1]
with open(d + "/out", "wb") as out, open(d + "/err", "wb") as err:
    subprocess.run(sys.argv[3:], stdout=out, stderr=err)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[2], "w").write("%.6f\n" % (r.ru_utime + r.ru_stime))
PY

# cpu RUNNER RECORDS ITERATIONS MODE: CPU seconds (user + sys) of one run; fails if the run does.
cpu() {
  local runner=$1 records=$2 iters=$3 mode=$4
  if [ "$runner" = lua-cjson ]; then
    (cd "$dir" && python3 cputime.py "$dir" "$dir/time" lua5.1 json.lua "$records" "$iters" "$mode")
  else
    echo "return $records, $iters, \"$mode\"" >"$dir/bench-args.lua"
    (cd "$dir" && python3 cputime.py "$dir" "$dir/time" "$sim" run --target "$runner" json.lua)
  fi
  [ -s "$dir/out" ] || return 1
  cat "$dir/time"
}

# per_op RUNNER RECORDS ITERATIONS MODE: median over $runs of (cpu(N) - cpu(0)) / N, microseconds.
per_op() {
  local i base full all=()
  for ((i = 0; i < runs; i++)); do
    base=$(cpu "$1" "$2" 0 "$4") || return 1
    full=$(cpu "$1" "$2" "$3" "$4") || return 1
    all+=("$(awk -v b="$base" -v f="$full" -v n="$3" 'BEGIN { printf "%.1f", (f - b) / n * 1e6 }')")
  done
  printf '%s\n' "${all[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

ratio() { awk -v c="$1" -v s="$2" 'BEGIN { printf "%.2fx", c / (s > 0 ? s : 1e-9) }'; }

echo "machine: $(uname -a)"
echo "cores:   $(nproc)"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
echo "measure: process CPU time (user+sys) of N operations minus 0 operations, median of $runs"
printf '%-10s %-10s %8s %12s %12s %10s %10s\n' doc runner bytes "decode us" "encode us" "dec speed" "enc speed"

# name records iterations
for doc in "2KB 17 10000" "200KB 1600 100"; do
  set -- $doc
  name=$1 records=$2 iters=$3
  cdec=$(per_op lua-cjson "$records" "$iters" decode)
  cenc=$(per_op lua-cjson "$records" "$iters" encode)
  bytes=$(cat "$dir/out")
  printf '%-10s %-10s %8d %12s %12s %10s %10s\n' "$name" lua-cjson "$bytes" "$cdec" "$cenc" "1.00x" "1.00x"
  for target in host esp32 esp8266; do
    if sdec=$(per_op "$target" "$records" "$iters" decode) && senc=$(per_op "$target" "$records" "$iters" encode); then
      printf '%-10s %-10s %8d %12s %12s %10s %10s\n' "$name" "$target" "$(cat "$dir/out")" "$sdec" "$senc" \
        "$(ratio "$cdec" "$sdec")" "$(ratio "$cenc" "$senc")"
    else
      printf '%-10s %-10s %s\n' "$name" "$target" "does not fit the heap: $(grep -m1 -o 'not enough memory' "$dir/err" || head -c 80 "$dir/err")"
    fi
  done
done
