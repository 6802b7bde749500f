#!/usr/bin/env bash
# A demonstration migration, end to end, on real programs:
#
#  1. a source disk: a sparse 3.4 TiB image holding the blocks a real
#     TPC-C trace (traces/tpcc_small_mqsim.trace) touches, exported by
#     nbdkit behind a 200 Mbit/s link (nbdkit's rate filter);
#  2. a model trained on the trace's first half (nbdshadow train);
#  3. the destination: nbdkit with the shadow filter, copying in the
#     background in the order the model predicts, while a "guest" replays
#     the second half of the trace against it at its timestamps (slowed
#     down to about 15 s) with nbdshadow replay; reads stall only on
#     blocks not yet local, and the filter records what the guest does;
#  4. progress from the filter's stats file until every block is local,
#     then the source is killed and the result checked byte for byte
#     against the source plus the guest's writes.
#
# Run by scripts/quickstart.sh demo after the build.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
FILTER="$top/plugin/.libs/nbdkit-shadow-filter.so"
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
    rm -rf "$tmp"
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

say "training the predictor on the first half"
"$NBDSHADOW" train --trace "$tmp/history.csv" -o "$tmp/model"

say "destination: nbdkit --filter=shadow shadow-model=..., source behind a $RATE bit/s link"
nbdkit -f -U "$tmp/shadow.sock" --filter="$FILTER" \
    nbd socket="$tmp/source.sock" \
    shadow-file="$tmp/shadow.img" shadow-stats="$tmp/stats.json" \
    shadow-model="$tmp/model" shadow-record="$tmp/recorded.csv" & pids+=($!)
wait_socket "$tmp/shadow.sock"
uri="nbd+unix:///?socket=$tmp/shadow.sock"

# The guest: the future half of the trace, open-loop at its timestamps,
# slowed down so that it lasts GUEST_SECONDS.
span_us=$(awk -F, 'NR == 2 { a = $1 } END { print $1 - a }' "$tmp/future.csv")
speed=$(awk "BEGIN { print $span_us / ($GUEST_SECONDS * 1000000) }")
say "guest starts at once: $(($(wc -l < "$tmp/future.csv") - 1)) requests over ${GUEST_SECONDS} s"
("$NBDSHADOW" replay --trace "$tmp/future.csv" --uri "$uri" --speed "$speed" \
     --json > "$tmp/guest.json" 2> "$tmp/guest.log"; echo $? > "$tmp/guest.rc") &
guest_pid=$!

while :; do
    sleep 1
    [ -s "$tmp/stats.json" ] || continue
    present=$(json "$tmp/stats.json" blocks_present)
    total=$(json "$tmp/stats.json" blocks_total)
    printf '  %s  present %s/%s blocks, pulled %s MiB, guest stalls %s (%s ms), hits %s\n' \
        "$(json "$tmp/stats.json" state)" "$present" "$total" \
        "$(($(json "$tmp/stats.json" bytes_pulled) >> 20))" \
        "$(json "$tmp/stats.json" stalls)" "$(($(json "$tmp/stats.json" stall_us) / 1000))" \
        "$(json "$tmp/stats.json" hits)"
    if [ "$(json "$tmp/stats.json" state)" = complete ] && ! kill -0 "$guest_pid" 2>/dev/null; then
        break
    fi
done
wait "$guest_pid" || :
if [ "$(cat "$tmp/guest.rc")" != 0 ]; then
    echo "demo: the guest saw I/O errors:" >&2; cat "$tmp/guest.log" >&2
    exit 1
fi
echo "  guest read latency: p50 $(json "$tmp/guest.json" read_latency_p50_ms) ms," \
     "p99 $(json "$tmp/guest.json" read_latency_p99_ms) ms;" \
     "prediction cost $(json "$tmp/stats.json" guest_path_ns) ns per guest request;" \
     "$(json "$tmp/stats.json" recorded) requests recorded for the next model"

say "switchover: every block is local; killing the source"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || :

say "checking the shadow against the source plus the guest's writes"
nbdkit -f -U "$tmp/expected.sock" --filter=cow file "$tmp/source.img" & pids+=($!)
wait_socket "$tmp/expected.sock"
"$NBDSHADOW" replay --trace "$tmp/future.csv" --speed 0 \
    --uri "nbd+unix:///?socket=$tmp/expected.sock" --json > /dev/null
qemu-img compare -f raw -F raw "$uri" "nbd+unix:///?socket=$tmp/expected.sock"

say "what the simulator predicts for this scenario (nbdshadow simulate, ratio 1)"
"$NBDSHADOW" simulate --history "$tmp/history.csv" --future "$tmp/future.csv" \
    --model "$tmp/model" --policy none,sequential,predict,oracle --bandwidth-ratio 1 --sparse

say "demo complete: the VM's disk is local, the source is gone, no byte lost"
