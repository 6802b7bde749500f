#!/usr/bin/env bash
# Benchmark (on demand, not part of make check): 4K random-read IOPS
# served by the shadow filter once every block is local, against nbdkit's
# file plugin on the same file and against nbdkit's cache filter (warmed)
# over the same source; and the shadow filter again with its Redis mirror
# attached (a redis-server on a unix socket), which must cost nothing.
# fio's nbd engine, iodepth 32; the four are run in interleaved rounds.
# Goals: shadow >= 0.95 x file; with Redis within 2 % of without.
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

iops ()
{
    fio --name=randread --ioengine=nbd --uri="$(uri $1)" --rw=randread \
        --bs=4k --iodepth=32 --size="$size" --runtime="$runtime" \
        --time_based --norandommap --randrepeat=0 --output-format=json \
        --output="$tmpdir/fio.json" >/dev/null
    python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"]))' \
        "$tmpdir/fio.json"
}

declare -A results
for r in $(seq $rounds); do
    for s in $servers; do
        v=$(iops $s)
        echo "round $r: $s $v IOPS"
        results[$s]="${results[$s]:-} $v"
    done
done
# The shadow must still be served locally (nothing fetched meanwhile).
echo "shadow stats: $(cat "$tmpdir/shadow.json")"

label () { case $1 in file) echo plugin;; shadow|cache) echo filter;; redis) echo "filter, Redis mirror";; baseline) echo "filter, baseline build";; esac; }
median () { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo ${results[file]} | median)
echo
echo "4K random read, fio nbd engine, iodepth 32, $size, $rounds x ${runtime}s (median)"
printf '%-32s %10s %8s   %s\n' server IOPS ratio rounds
for s in $servers; do
    m=$(echo ${results[$s]} | median)
    printf '%-32s %10d %8.3f  %s\n' "$s $(label $s)" "$m" "$(echo "$m / $base" | bc -l)" "${results[$s]}"
done
