#!/usr/bin/env bash
# A demonstration migration, end to end, on real programs:
#
#  1. a source disk: a sparse 3.4 TiB image holding the blocks a real
#     TPC-C trace (traces/tpcc_small_mqsim.trace) touches, exported by
#     nbdkit behind a 200 Mbit/s link (nbdkit's rate filter);
#  2. nbdshadow migrate, as an operator runs it: it trains a model on the
#     trace's first half and starts the destination (nbdkit with the
#     shadow filter), which copies in the background in the order the
#     model predicts, while a "guest" replays the second half of the
#     trace against it at its timestamps (slowed down to about 15 s) with
#     nbdshadow replay; reads stall only on blocks not yet local, and the
#     filter records what the guest does;
#  3. nbdshadow status --watch shows the progress until every block is
#     local; then the source is killed and nbdshadow verify checks the
#     shadow chunk by chunk against the source plus the guest's writes.
#
# Run by scripts/quickstart.sh demo after the build.  DEMO_KEEP=1 keeps its
# files (in /var/tmp/nbdshadow-demo.*) for a look afterwards.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
# migrate starts nbdkit with the filter of this build tree.
export NBDSHADOW_FILTER="$top/plugin/.libs/nbdkit-shadow-filter.so"
NBDSHADOW="$top/cli/nbdshadow"
TRACE="$top/traces/tpcc_small_mqsim.trace"
RATE="${DEMO_RATE:-200M}"
GUEST_SECONDS="${DEMO_GUEST_SECONDS:-15}"
PATH="/usr/bin:$PATH"

tmp="$(mktemp -d /var/tmp/nbdshadow-demo.XXXXXX)"
pids=()
cleanup ()
{
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || :; done
    wait 2>/dev/null || :
    [ -n "${DEMO_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

say () { printf '\n== %s\n' "$*"; }

wait_socket ()
{
    for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
    echo "demo: server on $1 did not start" >&2; exit 1
}

json () { sed -n "s/.*\"$2\": *\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }

# The trace in the canonical CSV, split by time into history and future.
say "importing the TPC-C trace"
"$NBDSHADOW" import --format disksim "$TRACE" -o "$tmp/all.csv" \
    --split "$tmp/history.csv" "$tmp/future.csv"
volume=$("$NBDSHADOW" import --format csv "$tmp/all.csv" --json |
             sed -n 's/.*"volume_bytes": \([0-9]*\).*/\1/p')
volume=$(( (volume + 65535) / 65536 * 65536 ))   # whole blocks
echo "$(($(wc -l < "$tmp/all.csv") - 1)) requests over a $((volume >> 30)) GiB volume;" \
     "the guest will replay the $(($(wc -l < "$tmp/future.csv") - 1)) of the second half"

# Source: every 64K block the trace touches holds a recognisable pattern,
# the rest is holes (nothing to copy).
say "building the source disk"
truncate -s "$volume" "$tmp/source.img"
awk -F, 'NR > 1 {
    for (b = int($3 / 65536); b * 65536 < $3 + $4; b++)
        if (!(b in seen)) { seen[b] = 1; printf "write -P %d %.0f 65536\n", b % 251 + 1, b * 65536 }
}' "$tmp/all.csv" > "$tmp/fill.qemu-io"
qemu-io -f raw "$tmp/source.img" < "$tmp/fill.qemu-io" > /dev/null
echo "$(wc -l < "$tmp/fill.qemu-io") blocks of data ($(du -h "$tmp/source.img" | cut -f1) allocated)"

nbdkit -f -r -U "$tmp/source.sock" --filter=rate file "$tmp/source.img" \
    rate="$RATE" & pids+=($!)
wait_socket "$tmp/source.sock"

# The metadata store: a local redis-server, which the filter mirrors its
# progress into and status reads (a filter without shadow-redis= has the
# stats file only).
status_from=(--stats "$tmp/vols/demo.json")
redis=()
if grep -q shadow-redis-password-file "$NBDSHADOW_FILTER"; then
    say "a local redis-server for the fleet's metadata"
    redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
        --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" & pids+=($!)
    wait_socket "$tmp/redis.sock"
    redis=(--redis "unix:$tmp/redis.sock")
    status_from=("${redis[@]}")
    echo "redis-server on unix:$tmp/redis.sock"
fi

# The operator's one command: train the model on the history, start the
# shadow over the source, hand out the URI the VM uses.
say "nbdshadow migrate: train on the first half, start the shadow over a $RATE bit/s link"
"$NBDSHADOW" migrate --source "nbd+unix:///?socket=$tmp/source.sock" \
    --id demo --dir "$tmp/vols" --history "$tmp/history.csv" --detach \
    ${redis[@]+"${redis[@]}"} > "$tmp/uri"
pids+=("$(cat "$tmp/vols/demo.pid")")
uri="$(cat "$tmp/uri")"
echo "the VM's disk: $uri"

# The guest: the future half of the trace, open-loop at its timestamps,
# slowed down so that it lasts GUEST_SECONDS.
span_us=$(awk -F, 'NR == 2 { a = $1 } END { print $1 - a }' "$tmp/future.csv")
speed=$(awk "BEGIN { print $span_us / ($GUEST_SECONDS * 1000000) }")
say "guest starts at once: $(($(wc -l < "$tmp/future.csv") - 1)) requests over ${GUEST_SECONDS} s"
("$NBDSHADOW" replay --trace "$tmp/future.csv" --uri "$uri" --speed "$speed" \
     --json > "$tmp/guest.json" 2> "$tmp/guest.log"; echo $? > "$tmp/guest.rc") &
guest_pid=$!

say "nbdshadow status demo --watch (while the guest runs)"
"$NBDSHADOW" status demo --watch "${status_from[@]}"
wait "$guest_pid" || :
if [ "$(cat "$tmp/guest.rc")" != 0 ]; then
    echo "demo: the guest saw I/O errors:" >&2; cat "$tmp/guest.log" >&2
    exit 1
fi
stats="$tmp/vols/demo.json"
echo "  guest read latency: p50 $(json "$tmp/guest.json" read_latency_p50_ms) ms," \
     "p99 $(json "$tmp/guest.json" read_latency_p99_ms) ms;" \
     "$(json "$stats" stalls) stalls ($(($(json "$stats" stall_us) / 1000)) ms)," \
     "$(json "$stats" hits) hits; prediction cost $(json "$stats" guest_path_ns) ns per guest request;" \
     "$(json "$stats" recorded) requests recorded for the next model"
"$NBDSHADOW" status "${status_from[@]}"

say "switchover: every block is local; killing the source"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || :

# The shadow must hold the source's bytes plus the guest's writes: build
# that image (the source under a copy-on-write overlay, the guest's
# writes replayed into it) and compare chunk by chunk.
say "nbdshadow verify: the shadow against the source plus the guest's writes"
nbdkit -f -U "$tmp/expected.sock" --filter=cow file "$tmp/source.img" & pids+=($!)
wait_socket "$tmp/expected.sock"
"$NBDSHADOW" replay --trace "$tmp/future.csv" --speed 0 \
    --uri "nbd+unix:///?socket=$tmp/expected.sock" --json > /dev/null
"$NBDSHADOW" verify --source "nbd+unix:///?socket=$tmp/expected.sock" \
    --shadow "$tmp/vols/demo.img"

say "what the simulator predicts for this scenario (nbdshadow simulate, ratio 1)"
"$NBDSHADOW" simulate --history "$tmp/history.csv" --future "$tmp/future.csv" \
    --model "$tmp/vols/demo.model" --policy none,sequential,predict,oracle --bandwidth-ratio 1 --sparse

say "demo complete: the VM's disk is local, the source is gone, no byte lost"
