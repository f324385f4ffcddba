#!/usr/bin/env bash
# Measures the agent against its simulator: throughput and peak memory of
# backfills of growing size (memory must stay flat), and how closely
# --rate is kept. Prints one line per measurement; nothing is asserted.
#
#   bench/run.sh            # release build, default sizes
#   EVENTS="10000 100000" RATES="1000 10000" FORMATS="cef kv" bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/siem-agent
work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_sim() { # events
    [ -n "$sim_pid" ] && { kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; }
    coproc SIM { exec "$bin" simulate --port 0 --events "$1" --detect-events 0 --per-second 200; }
    sim_pid=$SIM_PID
    read -r line <&"${SIM[0]}"
    port=${line##*:}
    cat >"$work/config.json" <<JSON
{"api_server":"http://127.0.0.1:$port/","key_id":"demo-key","key_secret":"demo-secret","tenant":"demo"}
JSON
    chmod 600 "$work/config.json"
}

run_agent() { # extra args...; prints "seconds peak_kib"
    rm -f "$work"/export_log.state "$work"/out.log*
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" --config "$work/config.json" --log-file "$work/agent.log" \
        --severity all -o FILE -f "$work/out.log" "$@" >/dev/null
    cat "$work/time"
}

echo "== backfill to FILE (CEF), all severities"
for n in ${EVENTS:-10000 100000 500000}; do
    start_sim "$n"
    read -r secs kib < <(run_agent)
    lines=$(wc -l <"$work/out.log")
    printf 'events=%-8s written=%-8s seconds=%-7s events/s=%-9s peak_rss_kib=%s\n' \
        "$n" "$lines" "$secs" "$(awk -v n="$lines" -v s="$secs" 'BEGIN{printf "%.0f", (s>0)?n/s:0}')" "$kib"
done

echo "== each format to FILE (${FORMAT_EVENTS:-200000} logs; rfc5424 with its header)"
start_sim "${FORMAT_EVENTS:-200000}"
for f in ${FORMATS:-cef leef leef1 kv json rfc5424}; do
    read -r secs kib < <(run_agent --format "$f")
    lines=$(wc -l <"$work/out.log")
    bytes=$(cat "$work"/out.log* | wc -c)
    printf 'format=%-8s written=%-8s seconds=%-7s events/s=%-9s bytes/log=%-6s peak_rss_kib=%s\n' "$f" "$lines" "$secs" \
        "$(awk -v n="$lines" -v s="$secs" 'BEGIN{printf "%.0f", (s>0)?n/s:0}')" "$((bytes / lines))" "$kib"
done

echo "== --rate accuracy (FILE, 3 seconds' worth each)"
for r in ${RATES:-100 1000 10000 100000}; do
    n=$((r * 3))
    start_sim "$n"
    read -r secs kib < <(run_agent --rate "$r")
    lines=$(wc -l <"$work/out.log")
    printf 'rate=%-7s events=%-7s seconds=%-6s achieved=%-9s error=%s%%\n' "$r" "$lines" "$secs" \
        "$(awk -v n="$lines" -v s="$secs" 'BEGIN{printf "%.0f", n/s}')" \
        "$(awk -v n="$lines" -v s="$secs" -v r="$r" 'BEGIN{printf "%+.1f", (n/s - r) * 100 / r}')"
done
