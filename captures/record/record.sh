#!/usr/bin/env bash
# Records the bundled captures from real traffic to the demo target:
#
#   drive.py (simulated shoppers, one loopback address each)
#     → nginx 127.0.0.1:18081   writes captures/demo-shop-nginx.log
#     → mitmdump 127.0.0.1:18091 (reverse proxy) writes captures/demo-shop.har
#     → reprise demo-target 127.0.0.1:18090
#
# So both captures hold the same requests, seen by a web server and by a
# proxy. Needs nginx (Debian package nginx-light) and mitmproxy (pip).
#
# Usage: captures/record/record.sh [seconds] [users]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-150}
USERS=${2:-30}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT

cargo build --release -q
./target/release/reprise demo-target --listen 127.0.0.1:18090 >"$WORK/target.log" 2>&1 &
mitmdump --mode reverse:http://127.0.0.1:18090 --listen-host 127.0.0.1 --listen-port 18091 \
    --set hardump="$WORK/demo-shop.har" -q &
MITM=$!

mkdir -p "$WORK/logs"
cat >"$WORK/nginx.conf" <<CONF
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log;
worker_processes 1;
events { worker_connections 1024; }
http {
    # vhost_combined with the request time, as many production nginx setups log.
    log_format shop '\$host \$remote_addr - \$remote_user [\$time_local] "\$request" '
                    '\$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_time';
    access_log $WORK/demo-shop-nginx.log shop;
    upstream shop { server 127.0.0.1:18091; keepalive 32; }
    server {
        listen 127.0.0.1:18081;
        location / {
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK" &
sleep 2

python3 captures/record/drive.py --base http://127.0.0.1:18081 --seconds "$SECONDS_TO_RUN" --users "$USERS"

kill "$(cat "$WORK/nginx.pid")"
kill -INT "$MITM"
wait "$MITM" || true
cp "$WORK/demo-shop-nginx.log" captures/demo-shop-nginx.log
gzip -9 -c "$WORK/demo-shop.har" >captures/demo-shop.har.gz
ls -l captures/demo-shop-nginx.log captures/demo-shop.har.gz
