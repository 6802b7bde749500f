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
# shadow case.  Cases run interleaved round by round, the peer first in
# odd rounds and second in even ones; the ratio to the file plugin is
# taken within each round, and its median reported; and
# the server's CPU time per request (its user + system time over fio's
# requests), which a loaded machine disturbs far less than IOPS.
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

# cpu_ticks PID: the user + system CPU time of a process, in ticks.
cpu_ticks () { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# fio SERVER WORKLOAD RANGE: the write IOPS, and the server's CPU time
# per request (us): on a shared machine the IOPS of one round swing with
# the load, what the server spends on a request much less.
fio_iops ()
{
    local rw=$2 bs=4k pid c0
    case $2 in seqwrite) rw=write bs=1M ;; esac
    eval "pid=\$pid_$1"
    c0=$(cpu_ticks "$pid")
    fio --name=w --ioengine=nbd --uri="$(uri $1)" --rw=$rw --bs=$bs \
        --iodepth=32 --size="$3" --runtime="$runtime" --time_based \
        --norandommap --randrepeat=0 --output-format=json \
        --output="$tmpdir/fio.json" >/dev/null
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
ios = j["read"]["total_ios"] + j["write"]["total_ios"]
print(int(j["write"]["iops"]), "%.2f" % ((int(sys.argv[3]) - int(sys.argv[2])) * 1e6 / int(sys.argv[4]) / ios))' \
        "$tmpdir/fio.json" "$c0" "$(cpu_ticks "$pid")" "$hz"
}

workloads="randwrite randrw seqwrite"
for r in $(seq "$rounds"); do
    for w in $workloads; do
        for c in $shadows; do
            range=$bytes
            [ $c = copying ] && range=$half
            # Which of the pair goes first alternates by round, so that
            # neither always runs in the other's wake (the writeback of
            # the dirty pages a case leaves runs into the next case).
            if [ $((r % 2)) = 1 ]; then
                read -r f fcpu < <(fio_iops file $w $range)
                read -r s scpu < <(fio_iops $c $w $range)
            else
                read -r s scpu < <(fio_iops $c $w $range)
                read -r f fcpu < <(fio_iops file $w $range)
            fi
            echo "round $r: $w $c $s ($scpu us CPU/req) file $f ($fcpu)"
            echo "$s $f $scpu $fcpu" >> "$tmpdir/$w.$c"
        done
    done
done
echo "covered: $(cat "$tmpdir/covered.json")"
echo "copying: $(cat "$tmpdir/copying.json")"
[ -f "$tmpdir/old.json" ] && echo "old: $(cat "$tmpdir/old.json")"

median () { sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] }'; }
echo
echo "write IOPS, fio nbd engine, iodepth 32, $size, $rounds x ${runtime}s interleaved (median ratio)"
echo "CPU us: the server's per request; CPU x: file's / shadow's (above 1: the shadow costs less)"
printf '%-10s %-8s %9s %9s %8s %8s %8s %6s   %s\n' workload shadow IOPS file ratio \
    "CPU us" "file us" "CPU x" "ratios by round"
for w in $workloads; do
    for c in $shadows; do
        s=$(awk '{ print $1 }' "$tmpdir/$w.$c" | median)
        f=$(awk '{ print $2 }' "$tmpdir/$w.$c" | median)
        sc=$(awk '{ print $3 }' "$tmpdir/$w.$c" | median)
        fc=$(awk '{ print $4 }' "$tmpdir/$w.$c" | median)
        ratios=$(awk '{ printf "%.2f ", $1 / $2 }' "$tmpdir/$w.$c")
        m=$(awk '{ print $1 / $2 }' "$tmpdir/$w.$c" | median)
        mc=$(awk '{ print $4 / $3 }' "$tmpdir/$w.$c" | median)
        printf '%-10s %-8s %9.0f %9.0f %8s %8s %8s %6s   %s\n' $w $c "$s" "$f" "$m" \
            "$sc" "$fc" "$mc" "$ratios"
    done
done
