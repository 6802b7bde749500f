#!/usr/bin/env bash
# Fault injection: SIGKILL at random points while the background copy
# pulls from a slow source and a guest writes, reads and flushes
# (shadow-stress in crash mode, its model the reference).  After each
# restart every flushed write must be there; at the end the copy
# completes and the whole disk equals the reference.
source ./functions.sh

rounds=${FAULT_KILL_ROUNDS:-5}
seed=${FAULT_KILL_SEED:-$RANDOM}
echo "seed $seed"
RANDOM=$seed
# fresh_source: nbdkit 1.32 may abort when its client (the filter, killed
# here) goes away with replies in flight; the source is not under test.
fresh_source ()
{
    stop_server src KILL
    start_server src -t 64 --filter=delay pattern 256M rdelay=1ms
}
start_server src -t 64 --filter=delay pattern 256M rdelay=1ms
stress_args=(--log "$tmpdir/ops.log" --source pattern --block-size 64K --timeout 600)

for i in $(seq $rounds); do
    [ $i -eq 1 ] || fresh_source
    start_shadow sh src shadow-policy=sequential shadow-bandwidth=16M
    stress_until_ready -u "$(uri sh)" "${stress_args[@]}" -s $((seed + i)) \
        --verify written --allow-disconnect --ready "$tmpdir/ready" \
        -c 3 -n 100000000 --writes 50 --flushes 3 --no-reader
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    stop_server sh KILL
    wait $stress || { cat "$tmpdir/stress.out"; echo "round $i: FAILED"; exit 1; }
    echo "round $i: killed with about $(json_get "$tmpdir/sh.json" blocks_present 2>/dev/null || echo 0) blocks local: $(tail -1 "$tmpdir/stress.out")"
done

fresh_source
start_shadow sh src shadow-policy=sequential
wait_json "$tmpdir/sh.json" state complete 60
./shadow-stress -u "$(uri sh)" "${stress_args[@]}" -n 0 --verify all |
    tee "$tmpdir/stress.out"
grep -q "^verify: 268435456 bytes checked, 0 mismatches" "$tmpdir/stress.out"
echo OK
