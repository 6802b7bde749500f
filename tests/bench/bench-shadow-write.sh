#!/usr/bin/env bash
# Benchmark (on demand, not part of make check): write IOPS served by
# the shadow filter against nbdkit's file plugin, fio's nbd engine,
# iodepth 32: 4K random writes, a 4K random read/write mix, 1M
# sequential writes.  Two shadows:
#   covered  every block pulled by the engine, source detached;
#   copying  source attached, not complete (shadow-policy=none), the
#            lower half made local by reading it first; fio writes
#            only there (writes to present blocks).
# OLD_FILTER=path/to/nbdkit-shadow-filter.so adds "old": a covered
# shadow served by that build (e.g. one before a change), same run.
# The peer is the file plugin on a copy of the source written in 4K
# pieces (a file the guest wrote itself), over the same range as each
# shadow case.  Cases run interleaved round by round; the ratio to the
# file plugin is taken within each round, and its median reported.
#
#   cd tests && bench/bench-shadow-write.sh
#   SIZE=1G ROUNDS=3 RUNTIME=5 bench/bench-shadow-write.sh
source "$(dirname "$0")/../functions.sh"
requires fio --version

size=${SIZE:-1G}
rounds=${ROUNDS:-3}
runtime=${RUNTIME:-5}
bytes=$(numfmt --from=iec "$size")
half=$((bytes / 2))

img="$tmpdir/disk.img"
echo "creating a $size random file ..."
head -c "$bytes" /dev/urandom > "$img"
dd if="$img" of="$tmpdir/peer.img" bs=4k status=none

start_server src -r -t 64 file "$img"
start_server file file "$tmpdir/peer.img"
start_shadow covered src shadow-policy=sequential
start_shadow copying src shadow-policy=none
shadows="covered copying"
if [ -n "${OLD_FILTER:-}" ]; then
    cp "$OLD_FILTER" "$tmpdir/old-filter.so"
    FILTER="$tmpdir/old-filter.so" start_shadow old src shadow-policy=sequential
    wait_json "$tmpdir/old.json" state complete 300
    shadows="$shadows old"
fi
wait_json "$tmpdir/covered.json" state complete 300
echo "making the lower half of 'copying' local ..."
fio --name=fill --ioengine=nbd --uri="$(uri copying)" --rw=read --bs=1M \
    --iodepth=8 --size="$half" --output=/dev/null

# fio SERVER WORKLOAD RANGE: the write IOPS.
fio_iops ()
{
    local rw=$2 bs=4k
    case $2 in seqwrite) rw=write bs=1M ;; esac
    fio --name=w --ioengine=nbd --uri="$(uri $1)" --rw=$rw --bs=$bs \
        --iodepth=32 --size="$3" --runtime="$runtime" --time_based \
        --norandommap --randrepeat=0 --output-format=json \
        --output="$tmpdir/fio.json" >/dev/null
    python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["write"]["iops"]))' \
        "$tmpdir/fio.json"
}

workloads="randwrite randrw seqwrite"
for r in $(seq "$rounds"); do
    for w in $workloads; do
        for c in $shadows; do
            range=$bytes
            [ $c = copying ] && range=$half
            f=$(fio_iops file $w $range)
            s=$(fio_iops $c $w $range)
            echo "round $r: $w $c $s file $f"
            echo "$s $f" >> "$tmpdir/$w.$c"
        done
    done
done
echo "covered: $(cat "$tmpdir/covered.json")"
echo "copying: $(cat "$tmpdir/copying.json")"
[ -f "$tmpdir/old.json" ] && echo "old: $(cat "$tmpdir/old.json")"

median () { sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] }'; }
echo
echo "write IOPS, fio nbd engine, iodepth 32, $size, $rounds x ${runtime}s interleaved (median ratio)"
printf '%-10s %-8s %9s %9s %8s   %s\n' workload shadow IOPS file ratio "ratios by round"
for w in $workloads; do
    for c in $shadows; do
        s=$(awk '{ print $1 }' "$tmpdir/$w.$c" | median)
        f=$(awk '{ print $2 }' "$tmpdir/$w.$c" | median)
        ratios=$(awk '{ printf "%.2f ", $1 / $2 }' "$tmpdir/$w.$c")
        m=$(awk '{ print $1 / $2 }' "$tmpdir/$w.$c" | median)
        printf '%-10s %-8s %9.0f %9.0f %8s   %s\n' $w $c "$s" "$f" "$m" "$ratios"
    done
done
