#!/usr/bin/env bash
# A real migration per policy against what the simulator predicts for
# it, on a real trace, in DESIGN.md's standard scenario (sparse variant):
#
#   source   a sparse file holding every 64K block the trace touches
#            (the rest is holes), served by nbdkit behind its delay
#            filter (rdelay = the RTT, 1 ms) and rate filter (the link:
#            copying every block takes exactly the future's duration,
#            --bandwidth-ratio 1);
#   guest    `nbdshadow replay` of the future half, open-loop at its
#            timestamps, against the shadow filter;
#   filter   each policy in turn (none, sequential, predict with a
#            model trained on the history half), from an empty shadow.
#
# The trace's time is scaled so that the future lasts about WINDOW
# seconds (both halves are scaled, and the simulator gets the same
# files, so the two see one scenario).  Per policy it prints the stalls
# and stall time from the filter's stats next to `nbdshadow simulate`'s,
# the replay's read latency and the time to a full copy, and checks the
# shadow against the source plus the guest's writes.  Exits 1 if data
# differ, if predict does not stall less than sequential, or if a real
# stall count is off the simulator's by more than 15 %.
#
#   cd tests && bench/bench-replay.sh msn|tpcc|TRACE FORMAT [WINDOW]
#
# The source image and the expected one are built once (a minute or two
# for msn) and kept in $BENCH_CACHE (default /var/tmp/nbdshadow-bench).
source "$(dirname "$0")/../functions.sh"
requires qemu-io --version
requires qemu-img --version
requires nbdcopy --version

case "${1:-}" in
    msn) trace="$TRACES/msn_fs_30s_replayer.trace" format=replayer; shift ;;
    tpcc) trace="$TRACES/tpcc_small_mqsim.trace" format=disksim; shift ;;
    "") echo "usage: $0 msn|tpcc|TRACE FORMAT [WINDOW]" >&2; exit 1 ;;
    *) trace="$1" format="$2"; shift 2 ;;
esac
window=${1:-60}
calc () { awk "BEGIN { printf \"%.6f\", $* }"; }
policies=(none sequential predict)
rtt_ms=1
bs=65536
cache="${BENCH_CACHE:-/var/tmp/nbdshadow-bench}/$(basename "$trace")"
mkdir -p "$cache"

# The trace in canonical form, and the source disk.
if [ ! -s "$cache/source.done" ]; then
    echo "building the source disk in $cache (once)..."
    "$NBDSHADOW" import --format "$format" "$trace" -o "$cache/all.csv"
    volume=$("$NBDSHADOW" import --format csv "$cache/all.csv" --json |
                 sed -n 's/.*"volume_bytes": \([0-9]*\).*/\1/p')
    rm -f "$cache/source.img"
    truncate -s $(( (volume + bs - 1) / bs * bs )) "$cache/source.img"
    awk -F, -v bs=$bs 'NR > 1 {
        for (b = int($3 / bs); b * bs < $3 + $4; b++)
            if (!(b in seen)) {
                seen[b] = 1
                printf "write -P %d %.0f %d\n", b % 251 + 1, b * bs, bs
            }
    }' "$cache/all.csv" | qemu-io -f raw "$cache/source.img" > /dev/null
    echo ok > "$cache/source.done"
fi

# Scale time so that the future lasts WINDOW seconds.
"$NBDSHADOW" import --format csv "$cache/all.csv" \
    --split "$tmpdir/h0.csv" "$tmpdir/f0.csv" > /dev/null
span=$(awk -F, 'NR == 2 { a = $1 } END { print $1 - a }' "$tmpdir/f0.csv")
scale=$(calc "$window * 1000000 / $span")
awk -F, -v OFS=, -v k="$scale" 'NR == 1 { print; next } { $1 = sprintf("%.0f", $1 * k); print }' \
    "$cache/all.csv" > "$tmpdir/all.csv"
"$NBDSHADOW" import --format csv "$tmpdir/all.csv" \
    --split "$tmpdir/history.csv" "$tmpdir/future.csv" > /dev/null
"$NBDSHADOW" train --trace "$tmpdir/history.csv" -o "$tmpdir/model" > /dev/null

# What the simulator says, and the link it assumes.
"$NBDSHADOW" simulate --history "$tmpdir/history.csv" \
    --future "$tmpdir/future.csv" --model "$tmpdir/model" --sparse \
    --policy "$(IFS=,; echo "${policies[*]}")" --bandwidth-ratio 1 \
    --rtt ${rtt_ms}ms --json | tr '{' '\n' > "$tmpdir/sim.json"
sim_field ()
{
    grep "\"policy\": \"$1\"" "$tmpdir/sim.json" |
        sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p"
}
bandwidth=$(sim_field sequential bandwidth)
rate_bits=$(printf '%.0f' "$(calc "$bandwidth * 8")")
echo "trace $(basename "$trace"): future $(($(wc -l < "$tmpdir/future.csv") - 1)) requests" \
     "over ${window} s (time x $(printf %.4g "$scale")), link $(printf %.1f "$(calc "$bandwidth / 1000000")") MB/s," \
     "RTT ${rtt_ms} ms, $(sim_field sequential blocks_to_copy) blocks to copy"

# The link: nbdkit's rate filter lets a burst through at once, as much as
# `burstiness` seconds of the rate (2 s by default), where a real link
# serializes.  So the bucket is small, 10 ms of the link (a head start of
# 0.05 % of a 20 s window), but not smaller: a request waiting in the
# filter sleeps for its whole size, then finds at most one bucketful, so
# with a 1 ms bucket a client with few requests of 128K in flight got
# 15.4 of 25 MB/s (nbdcopy, with 64 in flight, all of it).
start_server src -r -t 64 --filter=delay --filter=rate file "$cache/source.img" \
    rdelay=${rtt_ms}ms rate="$rate_bits" burstiness=0.01

# The image every run must end with: the source plus the guest's writes
# (they depend on the offsets only, not on the time scale).
if [ ! -s "$cache/expected.done" ]; then
    echo "building the expected image in $cache (once)..."
    cp --sparse=always "$cache/source.img" "$cache/expected.img"
    "$NBDSHADOW" import --format csv "$cache/all.csv" \
        --split /dev/null "$tmpdir/writes.csv" > /dev/null
    start_server expected file "$cache/expected.img"
    "$NBDSHADOW" replay --trace "$tmpdir/writes.csv" --uri "$(uri expected)" \
        --speed 0 --json > /dev/null
    stop_server expected
    echo ok > "$cache/expected.done"
fi

# nbdkit runs at most -t requests of a connection at once (16 by
# default); the replay's open loop keeps hundreds in flight at bursts,
# and those waiting in nbdkit would not show in the filter's stats.
shadow_opts="-t 1024"
failed=0
printf '\n%-11s %7s %7s %6s %8s %8s %8s %8s %7s %7s %8s\n' policy stalls sim diff \
    stall_s sim_s p50_ms p99_ms full_s sim_s guest_ns
for p in "${policies[@]}"; do
    model=()
    [ "$p" = predict ] && model=(shadow-model="$tmpdir/model")
    rm -f "$tmpdir/$p".*
    t0=$(date +%s.%N)
    start_shadow "$p" src shadow-policy="$p" "${model[@]}"
    "$NBDSHADOW" replay --trace "$tmpdir/future.csv" --uri "$(uri "$p")" \
        --json > "$tmpdir/$p.replay"
    full="-"
    if [ "$p" != none ]; then
        wait_json "$tmpdir/$p.json" state complete $((window * 10))
        full=$(printf '%.1f' "$(calc "$(date +%s.%N) - $t0")")
    fi
    sleep 1.1                   # the stats are rewritten every second
    stalls=$(json_get "$tmpdir/$p.json" stalls)
    stall_s=$(calc "$(json_get "$tmpdir/$p.json" stall_us) / 1000000")
    sim=$(sim_field "$p" stalls)
    diff=$(calc "($stalls - $sim) * 100 / $sim")
    sim_full=$(sim_field "$p" time_to_full_copy)
    printf '%-11s %7d %7d %5.1f%% %8.2f %8.2f %8.2f %8.2f %7s %7s %8s\n' "$p" \
        "$stalls" "$sim" "$diff" "$stall_s" "$(sim_field "$p" stall_seconds)" \
        "$(json_get "$tmpdir/$p.replay" read_latency_p50_ms)" \
        "$(json_get "$tmpdir/$p.replay" read_latency_p99_ms)" \
        "$full" "$([ "$sim_full" = null ] && echo - || printf '%.1f' "$sim_full")" \
        "$(json_get "$tmpdir/$p.json" guest_path_ns)"
    [ -z "${BENCH_VERBOSE:-}" ] || cat "$tmpdir/$p.json" "$tmpdir/$p.replay"
    eval "stalls_$p=$stalls"
    if [ "$(calc "($diff > 15 || $diff < -15)")" != 0.000000 ]; then
        echo "  $p: real stalls more than 15 % off the simulator's"; failed=1
    fi
    if [ "$(json_get "$tmpdir/$p.replay" errors)" != 0 ]; then
        echo "  $p: the guest saw I/O errors"; failed=1
    fi
    if ! qemu-img compare -q -f raw -F raw "$(uri "$p")" "$cache/expected.img"; then
        echo "  $p: the shadow differs from the source plus the guest's writes"
        failed=1
    fi
    stop_server "$p"
    rm -f "$tmpdir/$p.img"
done
if [ "$stalls_predict" -ge "$stalls_sequential" ]; then
    echo "predict does not stall less than sequential"; failed=1
fi
echo
[ $failed = 0 ] && echo "data equal to the source plus the guest's writes in every run"
exit $failed
