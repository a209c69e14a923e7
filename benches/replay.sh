#!/usr/bin/env bash
# Replay benchmarks (issue 3 §6): generator CPU per request against wrk and
# hey, schedule accuracy, memory with 50,000 open sessions, latency accuracy
# against a fixed-delay server. Prints markdown tables for
# docs/performance.md.
#
# Usage (from anywhere in the repository, as root or with nginx allowed to
# bind a high port):
#   benches/replay.sh            # everything
#   benches/replay.sh cost       # one part: cost | schedule | memory | latency
#
# Environment:
#   REPRISE   reprise binary (default target/release/reprise; `cargo build --release`)
#   SECONDS_PER_RUN  length of each measured run (default 10)
#   RUNS      repetitions of each measurement; the best (lowest CPU) is kept (default 3)
#   COST_RATES  planned sessions/s of the one-request cost runs (default "20000 40000 60000")
#
# Needs: nginx (Debian: nginx-light), wrk, hey and h2load (optional; Debian:
# nghttp2-client), GNU time, taskset,
# python3. Everything listens on 127.0.0.1 only. The generator is pinned to
# CPU 0 and nginx's single worker to CPU 1, as in the mission's wrk/oha
# figures. CPU per request is (user + sys) of the generator process ÷
# requests completed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPRISE=${REPRISE:-$ROOT/target/release/reprise}
SECS=${SECONDS_PER_RUN:-10}
RUNS=${RUNS:-3}
WORK=$(mktemp -d /tmp/reprise-bench.XXXXXX)
PORT=18200
TIME=/usr/bin/time
trap 'cleanup' EXIT

die() { echo "replay.sh: $*" >&2; exit 1; }
[[ -x $REPRISE ]] || die "no reprise binary at $REPRISE (cargo build --release)"
command -v nginx >/dev/null || die "nginx is needed (apt-get install -y nginx-light)"
command -v wrk >/dev/null || die "wrk is needed (apt-get install -y wrk)"
[[ -x $TIME ]] || die "GNU time is needed (apt-get install -y time)"

cleanup() {
    [[ -f $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    [[ -n ${DELAY_PID:-} ]] && kill "$DELAY_PID" 2>/dev/null || true
    rm -rf "$WORK"
}

start_nginx() {
    cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity 10;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
worker_rlimit_nofile 200000;
events { worker_connections 65536; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$PORT backlog=65535;
    location / { return 200 "ok"; }
  }
}
EOF
    nginx -c "$WORK/nginx.conf"
    sleep 0.3
}

# An access log of N sessions, each from its own client: one GET, or two
# GETs THINK seconds apart. Imported into a model.
ping_model() { # name sessions think_seconds (0: one request per session)
    python3 - "$WORK/$1.log" "$2" "$3" <<'P'
import sys, datetime
path, n, think = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
fmt = lambda t: t.strftime('%d/%b/%Y:%H:%M:%S +0000')
with open(path, 'w') as f:
    for i in range(n):
        ip = f"10.{i // 65025 % 250}.{i // 255 % 255}.{i % 255 + 1}"
        t = t0 + datetime.timedelta(seconds=i)
        f.write(f'{ip} - - [{fmt(t)}] "GET /ping/{i % 50} HTTP/1.1" 200 2 "-" "bench"\n')
        if think:
            t2 = t + datetime.timedelta(seconds=think)
            f.write(f'{ip} - - [{fmt(t2)}] "GET /pong/{i % 50} HTTP/1.1" 200 2 "-" "bench"\n')
P
    "$REPRISE" import "$WORK/$1.log" -o "$WORK/$1.json" --quiet
}

# A flat profile of RATE sessions/s for SECS seconds.
profile() { # file rate [extra toml]
    printf 'grace = "2s"\n%s\n[profile]\nunit = "sessions_per_sec"\nstart = %s\nstages = [{ duration = "%ss", target = %s }]\n' \
        "${3:-}" "$2" "$SECS" "$2" >"$1"
}

# Runs reprise pinned to CPU 0; prints "requests user sys maxrss_kb".
run_reprise() { # model config target [extra args...]
    local model=$1 config=$2 target=$3
    shift 3
    rm -rf "$WORK/out"
    $TIME -f '%U %S %M' -o "$WORK/time" taskset -c 0 "$REPRISE" replay "$model" --target "$target" \
        --config "$config" --quiet --out "$WORK/out" "$@" >/dev/null 2>"$WORK/err" || {
        cat "$WORK/err" >&2
        die "reprise failed"
    }
    python3 - "$WORK/out/summary.json" "$WORK/time" <<'P'
import json, sys
s = json.load(open(sys.argv[1]))
u, sy, rss = open(sys.argv[2]).read().split()[-3:]
print(s["requests"]["total"], u, sy, rss)
P
}

us_per_req() { python3 -c "import sys; n,u,s=map(float,sys.argv[1:4]); print(f'{(u+s)/n*1e6:.1f} ({u/n*1e6:.1f} user + {s/n*1e6:.1f} sys)')" "$@"; }

best() { sort -t' ' -k2,2g | head -1; }

# Runs another generator RUNS times on CPU 0 and prints its best table row.
# COUNT is the awk program that finds the requests completed in its output.
tool_row() { # label mode count_awk command...
    local label=$1 mode=$2 count=$3 line n u s
    shift 3
    line=$(for _ in $(seq "$RUNS"); do
        $TIME -f '%U %S' -o "$WORK/time" taskset -c 0 "$@" >"$WORK/tool.out" 2>&1
        n=$(awk "$count" "$WORK/tool.out")
        read -r u s <"$WORK/time"
        echo "$n $(python3 -c "print(($u+$s)/$n)") $u $s"
    done | best)
    read -r n _ u s <<<"$line"
    echo "| $label | $mode | $((n / SECS)) | $(us_per_req "$n" "$u" "$s") |"
}

# Runs reprise RUNS times and prints its best table row.
reprise_row() { # mode model config [extra args...]
    local mode=$1 line n u s
    shift
    line=$(for _ in $(seq "$RUNS"); do
        read -r n u s _ < <(run_reprise "$1" "$2" "http://127.0.0.1:$PORT" "${@:3}")
        echo "$n $(python3 -c "print(($u+$s)/$n)") $u $s"
    done | best)
    read -r n _ u s <<<"$line"
    echo "| reprise | $mode | $((n / SECS)) | $(us_per_req "$n" "$u" "$s") |"
}

cost() {
    echo "### Generator CPU per request (generator on CPU 0, nginx on CPU 1, ${SECS}s runs, best of $RUNS)"
    echo
    echo "| generator | mode | requests/s | CPU µs per request |"
    echo "|---|---|---:|---|"
    local url="http://127.0.0.1:$PORT/"
    tool_row 'wrk 4.1 `-t1 -c50`' 'closed loop, as fast as it can' '/requests in/ {print $1}' \
        wrk -t1 -c50 -d"${SECS}s" "$url"
    if command -v hey >/dev/null; then
        tool_row 'hey `-c 50`' 'closed loop' '/\[200\]/ {print $2}' hey -z "${SECS}s" -c 50 "$url"
    fi
    if command -v h2load >/dev/null; then
        tool_row 'h2load 1.52 `--h1 -t1 -c50`' 'closed loop, as fast as it can' '/^requests:/ {print $8}' \
            h2load --h1 -t1 -c50 -D "$SECS" "$url"
    fi
    ping_model ping 3000 0
    for rate in ${COST_RATES:-20000 40000 60000}; do
        profile "$WORK/cost.toml" "$rate"
        reprise_row "open model, ${rate} sessions/s of one request" "$WORK/ping.json" "$WORK/cost.toml"
        # The same rate from a C generator that paces requests: h2load's
        # --rps is per connection, 50 connections.
        if command -v h2load >/dev/null; then
            tool_row "h2load 1.52 \`--h1 -c50 --rps $((rate / 50))\`" "paced, ${rate} requests/s" \
                '/^requests:/ {print $8}' h2load --h1 -t1 -c50 --rps $((rate / 50)) -D "$SECS" "$url"
        fi
    done
    # Full session replay: the demo shop's HAR, recorded shapes, think times
    # scaled to 1 %, ~5 requests per session.
    "$REPRISE" import "$ROOT/captures/demo-shop.har.gz" -o "$WORK/shop.json" --quiet
    # 3,000 sessions/s is about 15,000 requests/s; 8,000 about 40,000, the
    # request rate of the one-request row above, so the two rows separate
    # what session replay costs from what a lower rate costs in wake-ups.
    for rate in 3,000 8,000; do
        profile "$WORK/shop.toml" "${rate/,/}" 'think_scale = 0.01'
        reprise_row "open model, full session replay (demo shop, $rate sessions/s)" \
            "$WORK/shop.json" "$WORK/shop.toml" --allow-host 127.0.0.1
    done
    echo
}

schedule() {
    echo "### Schedule accuracy (one-request sessions against nginx, ${SECS}s)"
    echo
    echo "| planned req/s | achieved req/s | achieved ÷ planned | generator lag p50 | p99 | max | late sessions |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    [[ -f $WORK/ping.json ]] || ping_model ping 3000 0
    for rate in 5000 20000; do
        profile "$WORK/sched.toml" "$rate"
        run_reprise "$WORK/ping.json" "$WORK/sched.toml" "http://127.0.0.1:$PORT" >/dev/null
        python3 - "$WORK/out" "$rate" "$SECS" <<'P'
import csv, json, sys
out, rate, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = json.load(open(f"{out}/summary.json"))
rows = [r for r in csv.DictReader(open(f"{out}/timeline.csv")) if int(r["second"]) < secs]
achieved = sum(int(r["requests"]) for r in rows) / secs
lag = next(m for m in s["metrics"] if m["name"] == "generator_lag")
print(f"| {rate:,} | {achieved:,.0f} | {achieved / rate:.4f} | {lag['med']} ms | {lag['p99']} ms | {lag['max']} ms | {s['sessions']['late']} |")
P
    done
    echo
}

memory() {
    echo "### Memory with 50,000 open sessions (two requests 60 s apart; 5,000 sessions/s for 10 s)"
    echo
    ping_model think 5000 60
    SECS=10 profile "$WORK/mem.toml" 5000
    sed -i 's/grace = "2s"/grace = "1s"/' "$WORK/mem.toml"
    read -r n u s rss < <(run_reprise "$WORK/think.json" "$WORK/mem.toml" "http://127.0.0.1:$PORT")
    local open
    open=$(python3 -c "import csv; print(max(int(r['active_sessions']) for r in csv.DictReader(open('$WORK/out/timeline.csv'))))")
    echo "| open sessions (peak) | requests | peak RSS | RSS per open session |"
    echo "|---:|---:|---:|---:|"
    echo "| $open | $n | $((rss / 1024)) MB | $(python3 -c "print(f'{$rss*1024/$open:,.0f} bytes')") |"
    echo
}

latency() {
    echo "### Latency accuracy (a server answering after exactly 20 ms, 500 req/s, ${SECS}s)"
    echo
    (cd "$ROOT" && cargo build --release --example fixed_delay -q)
    taskset -c 1 "$ROOT/target/release/examples/fixed_delay" 20 127.0.0.1:0 >"$WORK/delay.addr" &
    DELAY_PID=$!
    sleep 0.5
    local url
    url=$(head -1 "$WORK/delay.addr")
    [[ -f $WORK/ping.json ]] || ping_model ping 3000 0
    profile "$WORK/lat.toml" 500
    run_reprise "$WORK/ping.json" "$WORK/lat.toml" "$url" >/dev/null
    python3 - "$WORK/out/summary.json" <<'P'
import json, sys
s = json.load(open(sys.argv[1]))
m = {x["name"]: x for x in s["metrics"]}
print("| metric | p50 | p90 | p99 | error of p50 vs 20 ms |")
print("|---|---:|---:|---:|---:|")
for name in ("http_req_duration", "http_req_service_time", "http_req_waiting"):
    x = m[name]
    print(f"| {name} | {x['med']} ms | {x['p90']} ms | {x['p99']} ms | {x['med'] - 20:+.3f} ms |")
P
    kill "$DELAY_PID" 2>/dev/null || true
    DELAY_PID=
    echo
}

start_nginx
case ${1:-all} in
cost) cost ;;
schedule) schedule ;;
memory) memory ;;
latency) latency ;;
all) cost; schedule; memory; latency ;;
*) die "unknown part $1 (cost | schedule | memory | latency)" ;;
esac
