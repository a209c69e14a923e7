#!/usr/bin/env bash
# Records captures/demo-replay.pcap.gz: tcpdump on loopback while reprise
# replays the bundled HAR's model against the demo target.
#
#   reprise replay (model of captures/demo-shop.har.gz, X-Tenant-ID header)
#     → reprise demo-target 127.0.0.1:$PORT       (tcpdump -i lo port $PORT)
#
# The replay's summary.json is kept beside the capture
# (captures/demo-replay.summary.json): importing the capture must give back
# the requests the replay sent, endpoint by endpoint (tests/pcap.rs).
#
# Needs tcpdump and root (or CAP_NET_RAW). Usage:
#   [REPRISE=path/to/reprise] [PORT=18190] captures/record/record_pcap.sh [replay duration] [speed]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-12s}
SPEED=${2:-4}
PORT=${PORT:-18190}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# REPRISE: a reprise binary already built (default: build one).
R=${REPRISE:-}
if [[ -z $R ]]; then
    cargo build --release -q
    R=./target/release/reprise
fi
$R import captures/demo-shop.har.gz -o "$WORK/model.json" -q
$R demo-target --listen "127.0.0.1:$PORT" >"$WORK/target.log" 2>&1 &
tcpdump -i lo -w "$WORK/demo-replay.pcap" -U "tcp port $PORT" 2>"$WORK/tcpdump.log" &
TCPDUMP=$!
sleep 2

$R replay "$WORK/model.json" --target "http://127.0.0.1:$PORT" --tenant-header X-Tenant-ID --allow-host 127.0.0.1 \
    --speed "$SPEED" --duration "$DURATION" --seed 7 --out "$WORK/run" -q

sleep 1
kill -INT "$TCPDUMP"
wait "$TCPDUMP" || true
cat "$WORK/tcpdump.log" >&2
gzip -9 -n -c "$WORK/demo-replay.pcap" >captures/demo-replay.pcap.gz
cp "$WORK/run/summary.json" captures/demo-replay.summary.json
ls -l captures/demo-replay.pcap.gz captures/demo-replay.summary.json
