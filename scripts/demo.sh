#!/usr/bin/env bash
# A demonstration migration, end to end, on real programs:
#
#  1. a source disk: a sparse 3.4 TiB image holding the blocks a real
#     TPC-C trace (traces/tpcc_small_mqsim.trace) touches, exported by
#     nbdkit behind a 200 Mbit/s link (nbdkit's rate filter);
#  2. the destination: nbdkit with the shadow filter, copying in the
#     background while a "guest" replays the second half of the trace
#     against it (reads stall only on blocks not yet local);
#  3. progress from the filter's stats file until every block is local,
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

say "destination: nbdkit --filter=shadow, source behind a $RATE bit/s link"
nbdkit -f -U "$tmp/shadow.sock" --filter="$FILTER" \
    nbd socket="$tmp/source.sock" \
    shadow-file="$tmp/shadow.img" shadow-stats="$tmp/stats.json" & pids+=($!)
shadow_pid=$!
wait_socket "$tmp/shadow.sock"
uri="nbd+unix:///?socket=$tmp/shadow.sock"

# The guest: the future half of the trace, in order.  Its writes are
# applied to a copy of the source as well, to check the result.
awk -F, 'NR > 1 {
    if ($2 == "R") printf "read %.0f %d\n", $3, $4
    else if ($2 == "W") printf "write -P 90 %.0f %d\n", $3, $4
}' "$tmp/future.csv" > "$tmp/guest.qemu-io"
say "guest starts at once: $(wc -l < "$tmp/guest.qemu-io") requests"
(qemu-io -f raw "$uri" < "$tmp/guest.qemu-io" > "$tmp/guest.log" 2>&1; echo $? > "$tmp/guest.rc") &
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
if [ "$(cat "$tmp/guest.rc")" != 0 ] || grep -q -i error "$tmp/guest.log"; then
    echo "demo: the guest saw I/O errors:" >&2; grep -i error "$tmp/guest.log" | head >&2
    exit 1
fi

say "switchover: every block is local; killing the source"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || :

say "checking the shadow against the source plus the guest's writes"
cp --sparse=always "$tmp/source.img" "$tmp/expected.img"
grep '^write' "$tmp/guest.qemu-io" | qemu-io -f raw "$tmp/expected.img" > /dev/null
qemu-img compare -f raw -F raw "$uri" "$tmp/expected.img"

say "what the predictor would do on this trace (nbdshadow simulate, ratio 1)"
for p in sequential predict oracle; do
    model=()
    if [ "$p" = predict ]; then
        "$NBDSHADOW" train --trace "$tmp/history.csv" -o "$tmp/model" > /dev/null
        model=(--model "$tmp/model")
    fi
    "$NBDSHADOW" simulate --history "$tmp/history.csv" --future "$tmp/future.csv" \
        --policy "$p" "${model[@]}" --bandwidth-ratio 1 --json |
        sed -n 's/.*"stalls": \([0-9]*\).*/\1/p' | sed "s/^/  $p: stalls /"
done

say "demo complete: the VM's disk is local, the source is gone, no byte lost"
