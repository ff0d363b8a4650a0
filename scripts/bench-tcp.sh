#!/usr/bin/env bash
# TCP benchmark: nodemcu-sim side by side with the same programs on luv (lua5.1 + lua-luv) and
# Node.js `net`, on loopback.
#   (a) the device-style hello web server, one connection per request, under wrk (or, without
#       wrk, this workspace's http_load example): requests/s;
#   (b) echo of 128 MiB through one connection (tcp_echo_client example checks every byte): MB/s.
# Each measurement is repeated --rounds times, the programs taking turns within a round, and the
# median is reported (a shared machine's load drifts; taking turns spreads it over all of them).
# Prints the machine and commit, each figure and the ratios sim/luv and sim/node. Targets: the
# host profile at least as fast as luv on both; the esp8266 profile's echo (1460-byte chunks,
# flow-controlled fixtures/net/echo.lua) at least 200 MB/s. A run that fails or measures nothing
# stops the script with a message, rather than counting as 0 in a median.
#
# Usage: scripts/bench-tcp.sh [--seconds N] [--mib N] [--connections N] [--rounds N]
# Needs: cargo; optional: wrk, lua5.1 with luv, node (a missing one is reported and skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=5
MIB=128
CONNECTIONS=16
ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --mib) MIB=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

echo "== machine and commit"
echo "  $(uname -a)"
echo "  cpus: $(nproc 2>/dev/null || sysctl -n hw.ncpu)"
echo "  cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || sysctl -n machdep.cpu.brand_string)"
echo "  commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"

echo "== building (release)"
cargo build --release -q -p nodemcu-sim --bin nodemcu-sim --example tcp_echo_client --example http_load
SIM=target/release/nodemcu-sim
ECHO_CLIENT=target/release/examples/tcp_echo_client
HTTP_LOAD=target/release/examples/http_load
B=scripts/bench
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

have_luv=1; lua5.1 -e 'require"luv"' 2>/dev/null || have_luv=0
have_node=1; command -v node >/dev/null || have_node=0
have_wrk=1; command -v wrk >/dev/null || have_wrk=0

# start NAME CMD...: runs a server in the background and waits for its "...port<TAB>N" line.
start() {
  local name=$1; shift
  : >"$TMP/$name.out"
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    PORT=$(awk -F'\t' 'NF > 1 && $NF ~ /^[0-9]+$/ { print $NF; exit }' "$TMP/$name.out")
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  echo "$name did not start: $(cat "$TMP/$name.err")" >&2
  exit 1
}

stop() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# hello NAME CMD...: requests/s of a hello server.
hello() {
  local name=$1; shift
  start "$name" "$@"
  local rate
  if [ $have_wrk = 1 ]; then
    rate=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -H 'Connection: close' \
      "http://127.0.0.1:$PORT/" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }') || rate=
  else
    rate=$("$HTTP_LOAD" "127.0.0.1:$PORT" 4 "$SECONDS_PER_RUN" | sed -E 's/.*requests\/s=([0-9]+).*/\1/') || rate=
  fi
  stop
  measured "$name" "$rate"
}

# measured NAME RATE: prints RATE if it is a positive number; otherwise says which run failed
# and fails, which ends the script (set -e): a failed run must not enter a median as 0.
measured() {
  if [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v r="$2" 'BEGIN { exit !(r > 0) }'; then
    echo "$2"
  else
    echo "bench-tcp: the $1 run failed or measured nothing (got '${2}'); server stderr:" >&2
    cat "$TMP/$1.err" >&2 || true
    return 1
  fi
}

# echo_rate NAME CMD...: MB/s of an echo server.
echo_rate() {
  local name=$1; shift
  start "$name" "$@"
  local rate
  rate=$("$ECHO_CLIENT" "127.0.0.1:$PORT" "$MIB" | sed -E 's/.*MB\/s=([0-9.]+).*/\1/') || rate=
  stop
  measured "$name" "$rate"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'; }

load=$([ $have_wrk = 1 ] && echo "wrk -t2 -c$CONNECTIONS -H 'Connection: close'" || echo "http_load (4 clients)")
echo "== (a) hello web server, one connection per request, ${SECONDS_PER_RUN}s each, load: $load; median of $ROUNDS"
H_HOST=; H_8266=; H_LUV=; H_NODE=
for r in $(seq 1 "$ROUNDS"); do
  H_HOST="$H_HOST $(hello sim-host "$SIM" run $B/hello.lua --target host --port-map 80=0)"
  H_8266="$H_8266 $(hello sim-esp8266 "$SIM" run $B/hello.lua --target esp8266 --port-map 80=0)"
  [ $have_luv = 1 ] && H_LUV="$H_LUV $(hello luv lua5.1 $B/hello_luv.lua)"
  [ $have_node = 1 ] && H_NODE="$H_NODE $(hello node node $B/hello_node.js)"
done
h_host=$(echo "$H_HOST" | median); h_8266=$(echo "$H_8266" | median)
h_luv=$(echo "$H_LUV" | median); h_node=$(echo "$H_NODE" | median)
printf '  %-28s %10s req/s   (runs:%s)\n' "nodemcu-sim --target host" "$h_host" "$H_HOST" \
  "nodemcu-sim --target esp8266" "$h_8266" "$H_8266" "luv (lua5.1)" "$h_luv" "$H_LUV" "node net" "$h_node" "$H_NODE"

echo "== (b) echo of $MIB MiB through one connection; median of $ROUNDS"
E_HOST=; E_8266=; E_LUV=; E_NODE=
for r in $(seq 1 "$ROUNDS"); do
  E_HOST="$E_HOST $(echo_rate sim-host-echo "$SIM" run $B/echo.lua --target host --port-map 7=0)"
  E_8266="$E_8266 $(echo_rate sim-esp8266-echo "$SIM" run fixtures/net/echo.lua --target esp8266 --port-map 7=0)"
  [ $have_luv = 1 ] && E_LUV="$E_LUV $(echo_rate luv-echo lua5.1 $B/echo_luv.lua)"
  [ $have_node = 1 ] && E_NODE="$E_NODE $(echo_rate node-echo node $B/echo_node.js)"
done
e_host=$(echo "$E_HOST" | median); e_8266=$(echo "$E_8266" | median)
e_luv=$(echo "$E_LUV" | median); e_node=$(echo "$E_NODE" | median)
printf '  %-28s %10s MB/s    (runs:%s)\n' "nodemcu-sim --target host" "$e_host" "$E_HOST" \
  "nodemcu-sim --target esp8266" "$e_8266" "$E_8266" "luv (lua5.1)" "$e_luv" "$E_LUV" "node net" "$e_node" "$E_NODE"

echo "== ratios (nodemcu-sim host profile / other)"
printf '  %-10s hello %6s   echo %6s\n' "vs luv" "$(ratio "$h_host" "$h_luv")" "$(ratio "$e_host" "$e_luv")" \
  "vs node" "$(ratio "$h_host" "$h_node")" "$(ratio "$e_host" "$e_node")"
echo "== targets"
pass() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b ? "met" : "MISSED") }'; }
[ $have_luv = 1 ] && echo "  host hello >= luv:        $(pass "$(ratio "$h_host" "$h_luv")" 1.0)"
[ $have_luv = 1 ] && echo "  host echo  >= luv:        $(pass "$(ratio "$e_host" "$e_luv")" 1.0)"
echo "  esp8266 echo >= 200 MB/s: $(pass "$e_8266" 200)"
