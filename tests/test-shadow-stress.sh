#!/usr/bin/env bash
# Concurrent clients (multi-conn) doing random reads, writes, trims,
# zeroes, flushes and FUA writes through the shadow filter while a
# background reader forces fetches: every read must match the reference
# model (shadow-stress), and so must the whole disk at the end.  Two
# setups: 64K blocks over a slow source (fetches stay in flight long, so
# writes race with them) with the default background copy racing too,
# and 4K blocks over an odd-sized random file, demand fetches only.
source ./functions.sh

# Fewer requests under valgrind.  SHADOW_STRESS_OPS overrides.
ops=${SHADOW_STRESS_OPS:-120000}
[ -z "${NBDKIT_VALGRIND:-}" ] || ops=${SHADOW_STRESS_OPS:-2000}

run_stress ()
{
    ./shadow-stress -u "$(uri $1)" -n $ops --final-verify --timeout 600 "${@:2}" |
        tee "$tmpdir/stress.out"
    grep -q "^$ops ops, 0 mismatches$" "$tmpdir/stress.out"
}

# check_stats NAME: the filter counted demand fetches and hits.
check_stats ()
{
    stop_server $1
    cat "$tmpdir/$1.json"; echo
    test "$(json_get "$tmpdir/$1.json" stalls)" -gt 0
    test "$(json_get "$tmpdir/$1.json" hits)" -gt 0
    test "$(json_get "$tmpdir/$1.json" bytes_fetched)" -gt 0
}

# 1. Pattern source, 1 ms per read: fetches overlap guest writes.  The
# background copy, capped at 8 MB/s, lasts about as long as the run.
start_server slow -t 64 --filter=delay pattern 64M rdelay=1ms
start_shadow sh64 slow shadow-block-size=64K shadow-bandwidth=8M
run_stress sh64 -c 4 --source pattern --block-size 64K
check_stats sh64

# 2. Random file of a size that is not a multiple of the block size.
size=$((48 * 1024 * 1024 + 4096 * 3 + 1234))
head -c $size /dev/urandom > "$tmpdir/random.img"
start_server rnd -r -t 64 file "$tmpdir/random.img"
start_shadow sh4 rnd shadow-block-size=4K shadow-policy=none
run_stress sh4 -c 3 --source "$tmpdir/random.img" --block-size 4K --max-len 20000
check_stats sh4
