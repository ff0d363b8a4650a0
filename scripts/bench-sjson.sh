#!/usr/bin/env bash
# sjson decode and encode of a ~2 KB and a ~200 KB document (scripts/bench/json.lua makes them,
# deterministically), under nodemcu-sim's three targets, side by side with lua-cjson under lua5.1
# (Debian packages `lua5.1 lua-cjson`). Prints microseconds per operation and the speed of each
# nodemcu-sim run relative to lua-cjson (above 1.0x: faster), the machine and the commit.
# A document that does not fit a target's heap is reported as such.
# Usage: scripts/bench-sjson.sh              (builds release; installs nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v lua5.1 >/dev/null || { echo "lua5.1 not found: apt-get install lua5.1 lua-cjson" >&2; exit 1; }
lua5.1 -e 'require "cjson"' 2>/dev/null || { echo "lua-cjson not found: apt-get install lua-cjson" >&2; exit 1; }
cargo build --release -q -p nodemcu-sim
sim=$PWD/target/release/nodemcu-sim
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cp scripts/bench/json.lua "$dir/json.lua"

echo "machine: $(uname -a)"
echo "cores:   $(nproc)"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
printf '%-10s %-8s %8s %12s %12s %10s %10s\n' doc runner bytes "decode us" "encode us" "dec speed" "enc speed"

# name records iterations
for doc in "2KB 17 2000" "200KB 1600 20"; do
  set -- $doc
  name=$1 records=$2 iters=$3
  read -r bytes cdec cenc < <(cd "$dir" && lua5.1 json.lua "$records" "$iters")
  printf '%-10s %-8s %8d %12d %12d %10s %10s\n' "$name" lua-cjson "$bytes" "$cdec" "$cenc" "1.00x" "1.00x"
  echo "return $records, $iters" > "$dir/bench-args.lua"
  for target in host esp32 esp8266; do
    if out=$("$sim" run --target "$target" "$dir/json.lua" 2>"$dir/err") && [ -n "$out" ]; then
      read -r sbytes sdec senc <<<"$out"
      printf '%-10s %-8s %8d %12d %12d %10s %10s\n' "$name" "$target" "$sbytes" "$sdec" "$senc" \
        "$(awk -v c="$cdec" -v s="$sdec" 'BEGIN { printf "%.2fx", c / (s ? s : 1) }')" \
        "$(awk -v c="$cenc" -v s="$senc" 'BEGIN { printf "%.2fx", c / (s ? s : 1) }')"
    else
      printf '%-10s %-8s %s\n' "$name" "$target" "does not fit the heap: $(grep -m1 -o 'not enough memory' "$dir/err" || head -c 80 "$dir/err")"
    fi
  done
done
