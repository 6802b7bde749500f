#!/usr/bin/env bash
# Stopping the filter mid-copy leaves its source running.  nbdkit 1.32.4
# and 1.32.5 abort when a client disconnects while their replies are
# still being sent (docs/RELIABILITY.md), so the filter waits for the
# replies in flight (a second at most) before it lets its connections
# go.  Here the source delays each read by 50 ms, so every stop finds
# pulls in flight; without the wait about one stop in five killed it.
source ./functions.sh

rounds=15
head -c 16M /dev/urandom > "$tmpdir/src.img"
for i in $(seq $rounds); do
    start_server src -r -t 64 --filter=delay file "$tmpdir/src.img" rdelay=50ms
    start_shadow sh src
    sleep 0.5
    stop_server sh
    # Stopped before the copy was done.
    test "$(json_get "$tmpdir/sh.json" blocks_present)" -lt "$(json_get "$tmpdir/sh.json" blocks_total)"
    sleep 0.5
    if ! kill -0 $pid_src 2>/dev/null; then
        echo "FAIL: the source died when the filter stopped (round $i of $rounds):"
        grep -h "Assertion\|abort" "$tmpdir/src.log" | tail -1
        exit 1
    fi
    stop_server src
    rm -f "$tmpdir/sh.img" "$tmpdir/sh.state" "$tmpdir/sh.json" "$tmpdir/src.log"
done
echo "the source outlived $rounds stops mid-copy"
