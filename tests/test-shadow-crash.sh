#!/usr/bin/env bash
# Crash consistency: nbdkit with the shadow filter is killed with SIGKILL
# at random points of a write-heavy run, then restarted on the same
# shadow-file/shadow-state.  After every restart the disk must hold every
# write acknowledged and then covered by a completed flush (or FUA)
# (shadow-stress --log checks), no block entirely overwritten by such
# writes may be fetched from the source again, and at the end the whole
# disk must equal the reference.
source ./functions.sh

rounds=${SHADOW_CRASH_ROUNDS:-10}
[ -z "${NBDKIT_VALGRIND:-}" ] || rounds=${SHADOW_CRASH_ROUNDS:-3}
seed=${SHADOW_CRASH_SEED:-$RANDOM}
echo "seed $seed"
RANDOM=$seed

start_server src -t 64 pattern 128M
shadow_opts="-v -D shadow.fetch=1"
stress_args=(--log "$tmpdir/ops.log" --source pattern --block-size 16K
             --durable-blocks "$tmpdir/durable" --timeout 600)

for i in $(seq $rounds); do
    rm -f "$tmpdir/sh.log" "$tmpdir/ready"
    start_shadow sh src shadow-block-size=16K shadow-policy=none
    # Verifies what the earlier rounds flushed, then writes until killed.
    stress_until_ready -u "$(uri sh)" "${stress_args[@]}" -s $((seed + i)) \
        --verify written --allow-disconnect --ready "$tmpdir/ready" \
        -c 3 -n 100000000 --writes 70 --flushes 3 --no-reader
    # Kill at a random point 0.2 .. 1.5 s into the run.
    sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
    sleep "0.$((2 + RANDOM % 3))"
    stop_server sh KILL
    wait $stress || { cat "$tmpdir/stress.out"; echo "round $i: FAILED"; exit 1; }
    sed "s/^/round $i: /" "$tmpdir/stress.out"
    grep -q "stopped by server disconnect" "$tmpdir/stress.out"

    # Blocks entirely overwritten by flushed writes must not be fetched.
    fetched_blocks "$tmpdir/sh.log" > "$tmpdir/fetched"
    sort -u "$tmpdir/durable" > "$tmpdir/durable.sorted"
    refetched=$(comm -12 "$tmpdir/fetched" "$tmpdir/durable.sorted" | wc -l)
    echo "round $i: $(wc -l < "$tmpdir/durable") blocks hold flushed guest data," \
        "$(wc -l < "$tmpdir/fetched") fetched, $refetched of them re-fetched"
    if [ "$refetched" -ne 0 ]; then
        echo "re-fetched over guest data:"; comm -12 "$tmpdir/fetched" "$tmpdir/durable.sorted" | head
        exit 1
    fi
done

# The last crash too, then a final full comparison against the reference.
rm -f "$tmpdir/sh.log"
start_shadow sh src shadow-block-size=16K shadow-policy=none
./shadow-stress -u "$(uri sh)" "${stress_args[@]}" -n 0 --verify all |
    tee "$tmpdir/stress.out"
grep -q "^verify: 134217728 bytes checked, 0 mismatches" "$tmpdir/stress.out"
grep -q "^0 ops, 0 mismatches" "$tmpdir/stress.out"
fetched_blocks "$tmpdir/sh.log" > "$tmpdir/fetched"
sort -u "$tmpdir/durable" > "$tmpdir/durable.sorted"
test "$(comm -12 "$tmpdir/fetched" "$tmpdir/durable.sorted" | wc -l)" -eq 0
