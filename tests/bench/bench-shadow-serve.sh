#!/usr/bin/env bash
# Benchmark (on demand, not part of make check): 4K random-read IOPS
# served by the shadow filter once every block is local, against nbdkit's
# file plugin on the same file and against nbdkit's cache filter (warmed)
# over the same source; and the shadow filter again with its Redis mirror
# attached (a redis-server on a unix socket), which must cost nothing.
# fio's nbd engine, iodepth 32; the four are run in interleaved rounds,
# every other round in reverse order.
# Each run also gives nbdkit's CPU time per request.  Goals: shadow
# >= 0.95 x file; with Redis within 2 % of without.
#
#   cd tests && bench/bench-shadow-serve.sh
#   SIZE=1G ROUNDS=3 RUNTIME=10 bench/bench-shadow-serve.sh
#
# BASELINE_FILTER=/other/build/plugin/.libs/nbdkit-shadow-filter.so adds
# a shadow served by that build of the filter (before and after a
# change, in the same rounds).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../redis-functions.sh"
requires fio --version
requires nbdcopy --version

size=${SIZE:-1G}
rounds=${ROUNDS:-3}
runtime=${RUNTIME:-10}

img="$tmpdir/disk.img"
echo "creating a $size random file ..."
head -c "$(numfmt --from=iec "$size")" /dev/urandom > "$img"

start_server src -r -t 64 file "$img"
start_server file file "$img"
start_shadow shadow src shadow-policy=none
start_redis r
start_shadow redis src shadow-policy=none shadow-redis=unix:$tmpdir/r.redis \
    shadow-id=bench
servers="file shadow redis cache"
if [ -n "${BASELINE_FILTER:-}" ]; then
    FILTER="$BASELINE_FILTER" start_shadow baseline src shadow-policy=none
    servers="file shadow baseline redis cache"
fi
# The cache filter's hit path: same source, same nbd plugin below.
TMPDIR="$tmpdir" start_server cache --filter=cache nbd socket="$tmpdir/src.sock"

echo "warming: reading everything through shadow and cache ..."
nbdcopy "$(uri shadow)" null:
nbdcopy "$(uri redis)" null:
nbdcopy "$(uri cache)" null:
wait_json "$tmpdir/shadow.json" state complete
wait_json "$tmpdir/redis.json" state complete
if [ -n "${BASELINE_FILTER:-}" ]; then
    nbdcopy "$(uri baseline)" null:
    wait_json "$tmpdir/baseline.json" state complete
fi

# cpu_ticks PID: user+system time nbdkit has used, in clock ticks.
cpu_ticks () { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME: "IOPS CPU-µs-per-request" of one fio run against NAME.
# Its CPU time per request is the steadier figure on a busy machine:
# another process taking a core lowers IOPS, not the work per request.
measure ()
{
    local pid t0 t1
    eval "pid=\$pid_$1"
    t0=$(cpu_ticks "$pid")
    fio --name=randread --ioengine=nbd --uri="$(uri $1)" --rw=randread \
        --bs=4k --iodepth=32 --size="$size" --runtime="$runtime" \
        --time_based --norandommap --randrepeat=0 --output-format=json \
        --output="$tmpdir/fio.json" >/dev/null
    t1=$(cpu_ticks "$pid")
    python3 -c '
import json, os, sys
read = json.load(open(sys.argv[1]))["jobs"][0]["read"]
us = (int(sys.argv[3]) - int(sys.argv[2])) * 1e6 / os.sysconf("SC_CLK_TCK")
print(int(read["iops"]), "%.2f" % (us / read["total_ios"]))' \
        "$tmpdir/fio.json" "$t0" "$t1"
}

declare -A results cpu
# Odd rounds run the servers in order, even rounds in reverse, so no
# server always follows the same neighbour.
reversed=$(echo $servers | tr ' ' '\n' | tac | tr '\n' ' ')
for r in $(seq $rounds); do
    if [ $((r % 2)) = 1 ]; then order=$servers; else order=$reversed; fi
    for s in $order; do
        read -r v us <<< "$(measure $s)"
        echo "round $r: $s $v IOPS, $us us CPU a request"
        results[$s]="${results[$s]:-} $v"
        cpu[$s]="${cpu[$s]:-} $us"
    done
done
# The shadow must still be served locally (nothing fetched meanwhile).
echo "shadow stats: $(cat "$tmpdir/shadow.json")"

label () { case $1 in file) echo "file plugin";; shadow|cache) echo "$1 filter";; redis) echo "shadow filter, Redis mirror";; baseline) echo "shadow filter, baseline build";; esac; }
median () { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo ${results[file]} | median)
echo
echo "4K random read, fio nbd engine, iodepth 32, $size, $rounds x ${runtime}s (median)"
printf '%-32s %10s %8s %9s   %s\n' server IOPS ratio "CPU us" "IOPS by round"
for s in $servers; do
    m=$(echo ${results[$s]} | median)
    printf '%-32s %10d %8.3f %9s  %s\n' "$(label $s)" "$m" "$(echo "$m / $base" | bc -l)" \
        "$(echo ${cpu[$s]} | median)" "${results[$s]}"
done
echo "(CPU us: nbdkit's user+system time per request, median of the rounds)"
# The mirror's cost: with Redis over without, round by round (the two
# ran next to each other, so each ratio shares that round's noise).
read -r -a with <<< "${results[redis]}"
read -r -a without <<< "${results[shadow]}"
ratios=""
for i in "${!with[@]}"; do
    ratios="$ratios $(echo "${with[$i]} / ${without[$i]}" | bc -l | xargs printf '%.3f')"
done
echo "Redis mirror over without, per round:$ratios; median $(echo $ratios | median)"
