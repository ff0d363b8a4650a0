#!/usr/bin/env bash
# MQTT benchmark: messages per second a device publishes and receives through a local Mosquitto,
# at QoS 0 and QoS 1, beside mosquitto_pub / mosquitto_sub doing the same.
#   publish: the device (or `mosquitto_pub -l`) sends N messages; a `mosquitto_sub` stamps each on
#            arrival (%U) and the rate is (N-1) / (last - first).
#   receive: `mosquitto_pub -l` sends N messages; the device (or `mosquitto_sub`) stamps each on
#            arrival, same formula.
# Prints each rate and the ratio device/mosquitto, with the machine and the commit. Targets: QoS 0
# at least 0.8x the Mosquitto clients; QoS 1 publishing is bounded by one round trip per message
# (the firmware keeps one packet in flight), where mosquitto_pub keeps up to 20.
#
# Usage: scripts/bench-mqtt.sh [--n0 N] [--n1 N]     Needs: cargo, mosquitto, mosquitto-clients.
set -euo pipefail
cd "$(dirname "$0")/.."

N0=20000
N1=3000
while [ $# -gt 0 ]; do
  case "$1" in
    --n0) N0=$2; shift 2 ;;
    --n1) N1=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQ" ] && command -v mosquitto_pub >/dev/null || {
  echo "needs mosquitto: apt-get install -y mosquitto mosquitto-clients" >&2; exit 1; }

echo "== building (release)"
cargo build --release -q -p nodemcu-sim --bin nodemcu-sim
SIM=$PWD/target/release/nodemcu-sim
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' "$PORT" > "$TMP/m.conf"
"$MOSQ" -c "$TMP/m.conf" >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5

# rate FILE: (lines-1) / (last - first) from "seconds.nanoseconds ..." stamps.
rate() { awk 'NR==1{f=$1} {l=$1; n=NR} END{ if (n > 1 && l > f) printf "%.0f", (n-1)/(l-f); else print 0 }' "$1"; }

# sub_until FILE N: a mosquitto_sub stamping N messages on bench/t into FILE, in the background.
sub_until() {
  stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -t bench/t -q "$3" -C "$2" -F '%U' > "$1" &
  SUB=$!
  sleep 0.5
}

lines() { seq 1 "$1" | sed 's/^/payload-0123456789-/' > "$TMP/lines"; }

device_pub() { # N QOS
  cat > "$TMP/pub.lua" <<LUA
local n, acks = $1, 0
m = mqtt.Client("bench-pub", 60)
m:on("puback", function(c) acks = acks + 1; if acks == n then c:close() end end)
m:connect("127.0.0.1", $PORT, function(c)
  for i = 1, n do c:publish("bench/t", "payload-0123456789-" .. i, $2, 0) end
end)
LUA
  "$SIM" run "$TMP/pub.lua" --target host
}

device_sub() { # N QOS FILE
  cat > "$TMP/sub.lua" <<LUA
local n, got, first = $1, 0, 0
m = mqtt.Client("bench-sub", 60, nil, nil, 1, 4096)
m:on("message", function(c, t, d)
  got = got + 1
  if got == 1 then first = tmr.now() end
  if got == n then print(first, tmr.now()); c:close() end
end)
m:connect("127.0.0.1", $PORT, function(c) c:subscribe("bench/t", $2, function() print("ready") end) end)
LUA
  "$SIM" run "$TMP/sub.lua" --target host > "$3" &
  DEV=$!
  for _ in $(seq 100); do grep -q ready "$3" 2>/dev/null && break; sleep 0.05; done
}

declare -A R
for q in 0 1; do
  n=$([ "$q" = 0 ] && echo "$N0" || echo "$N1")
  lines "$n"
  sub_until "$TMP/s1" "$n" "$q"; device_pub "$n" "$q"; wait "$SUB"; R[pub_dev_$q]=$(rate "$TMP/s1")
  sub_until "$TMP/s2" "$n" "$q"; mosquitto_pub -h 127.0.0.1 -p "$PORT" -t bench/t -q "$q" -l < "$TMP/lines"; wait "$SUB"; R[pub_mosq_$q]=$(rate "$TMP/s2")
  device_sub "$n" "$q" "$TMP/d"; mosquitto_pub -h 127.0.0.1 -p "$PORT" -t bench/t -q "$q" -l < "$TMP/lines"; wait "$DEV"
  R[sub_dev_$q]=$(awk -v n="$n" '$1 ~ /^[0-9]+$/ { if ($2 > $1) printf "%.0f", (n-1)/(($2-$1)/1e6) }' "$TMP/d")
  sub_until "$TMP/s3" "$n" "$q"; mosquitto_pub -h 127.0.0.1 -p "$PORT" -t bench/t -q "$q" -l < "$TMP/lines"; wait "$SUB"; R[sub_mosq_$q]=$(rate "$TMP/s3")
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git rev-parse --short HEAD)"
printf '%-22s %12s %12s %8s\n' "" "device msg/s" "mosquitto" "ratio"
for q in 0 1; do
  for dir in pub sub; do
    d=${R[${dir}_dev_$q]}; m=${R[${dir}_mosq_$q]}
    printf '%-22s %12s %12s %8s\n' "$dir QoS $q" "$d" "$m" "$(awk -v d="$d" -v m="$m" 'BEGIN{ if (m > 0) printf "%.2fx", d/m; else print "-" }')"
  done
done
