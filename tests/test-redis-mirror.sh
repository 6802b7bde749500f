#!/usr/bin/env bash
# The filter's mirror in Redis: the info hash (identity, no secrets),
# progress, the coverage bitmap bit for bit, the volume in the fleet set
# and the events stream, through a whole migration; the state "stopped"
# when the filter stops before the copy is done.  Updates are batched:
# each batch ends with one PING, so the server's count of PINGs is the
# number of round trips, which must stay within one per 64 blocks copied
# plus one a second.
source ./functions.sh
source ./redis-functions.sh

start_source_and_redis $((24 * 1024 * 1024))
t0=$(date +%s%N)
start_mirrored sh vm.1_a-b shadow-policy=sequential shadow-bandwidth=4M \
    shadow-export-uri=nbd://dest:10809
key='nbdshadow:{vm.1_a-b}'

info () { rcli r HGET "$key:info" "$1"; }
test "$(info id)" = vm.1_a-b
test "$(info size)" -eq $size
test "$(info block_size)" -eq 65536
test "$(info blocks_total)" -eq $nblocks
test "$(info policy)" = sequential
test "$(info pid)" -eq "$pid_sh"
test "$(info host)" = "$(hostname)"
test "$(info source)" = "unix:$tmpdir/src.sock"
test "$(info export_uri)" = nbd://dest:10809
test "$(info started_us)" -gt $((t0 / 1000 - 1000000))
test "$(rcli r SISMEMBER nbdshadow:volumes vm.1_a-b)" -eq 1

# Mid-copy: progress moves, with a rate near the cap (measured over the
# last 2 s: past the first burst) and an ETA.
sleep 3
p=$(rcli r HGET "$key:progress" blocks_present)
test "$p" -gt 0
test "$p" -lt $nblocks
rate=$(rcli r HGET "$key:progress" rate_bytes_per_s)
echo "mid-copy: $p blocks, $rate bytes/s, eta $(rcli r HGET "$key:progress" eta_s) s"
test "$rate" -gt 3000000
test "$rate" -lt 5500000
test "$(rcli r HGET "$key:progress" eta_s)" -gt 0
test "$(rcli r HGET "$key:progress" bandwidth_limit)" -eq 4194304
test "$(json_get "$json" redis)" = up
# The predicted set: the order's latest picks, bounded; sequential's
# newest pick is near what is local.  The set is re-written at most once
# a second, so it may lag by the blocks of two seconds at the cap (64 a
# second) but no more.
n=$(rcli r ZCARD "$key:predicted")
test "$n" -gt 0
test "$n" -le 1024
top=$(rcli r ZREVRANGE "$key:predicted" 0 0)
echo "newest pick $top, $p blocks present"
test "$top" -ge $((p - 2 * 64))
test "$top" -lt $nblocks

# The source goes away for a second and comes back: two events.
stop_server src KILL
sleep 1
start_server src -r file "$tmpdir/src.img"

wait_rcli r complete 20 HGET "$key:info" state
# Every bit set, and no more: nblocks/8 bytes of 0xff.
test "$(rcli r BITCOUNT "$key:coverage")" -eq $nblocks
test "$(rcli r STRLEN "$key:coverage")" -eq $((nblocks / 8))
test "$(rcli r HGET "$key:progress" coverage)" = 1.000000
test "$(rcli r HGET "$key:progress" eta_s)" -eq 0
stop_server sh
secs=$(( ($(date +%s%N) - t0) / 1000000000 + 1 ))
pings=$(rcli r INFO commandstats | sed -n 's/^cmdstat_ping:calls=\([0-9]*\),.*/\1/p')
echo "$pings round trips in $secs s for $nblocks blocks"
# One start-up check and one PING per connection (2), then batches.
test "$pings" -le $((3 + nblocks / 64 + secs + 4))
test "$(info state)" = complete
rcli r XRANGE "$key:events" - + > "$tmpdir/events"
for t in started source-lost source-back complete switchover; do
    grep -qx "$t" "$tmpdir/events" || { echo "no $t event"; cat "$tmpdir/events"; exit 1; }
done

# Stopped before the end: the state says so; the source shown without
# the URI's query.
start_server sh2 --filter="$FILTER" nbd uri="nbd+unix:///?socket=$tmpdir/src.sock" \
    shadow-file="$tmpdir/sh2.img" shadow-redis=unix:$tmpdir/r.redis \
    shadow-id=vm2 shadow-policy=none
wait_rcli r copying 5 HGET 'nbdshadow:{vm2}:info' state
test "$(rcli r HGET 'nbdshadow:{vm2}:info' source)" = "nbd+unix:///"
stop_server sh2
test "$(rcli r HGET 'nbdshadow:{vm2}:info' state)" = stopped
rcli r XRANGE 'nbdshadow:{vm2}:events' - + | grep -qx stopped
