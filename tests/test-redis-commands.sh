#!/usr/bin/env bash
# The operator's commands through the Redis stream, sent with redis-cli
# as the CLI sends them: pause stops the background copy within a second
# while the guest's demand reads are still served, and the mirror then
# matches the filter exactly; resume goes on; throttle caps the pull rate
# (within 20 %); bad commands are answered with an error; finalize lifts
# the cap and completes the copy.  Every command is acknowledged in the
# acks hash and with XACK.
source ./functions.sh
source ./redis-functions.sh
requires nbdsh --version

start_source_and_redis $((64 * 1024 * 1024))
start_mirrored sh vm1 shadow-policy=sequential shadow-bandwidth=8M

present () { json_get "$json" blocks_present; }

# pause: acknowledged at once, and within a second nothing more is
# pulled.
t0=$(date +%s%N)
send_command r vm1 p1 pause
wait_rcli r ok 3 HGET 'nbdshadow:{vm1}:acks' p1
ack_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "pause acknowledged after $ack_ms ms"
test $ack_ms -lt 1000
wait_json "$json" paused true 2
sleep 1
a=$(present)
# The guest's reads are served meanwhile: a block far from what was
# copied is fetched on demand and is the source's.
off=$((size - 3 * 65536))
nbdsh -u "$(uri sh)" -c "import sys; sys.stdout.buffer.write(h.pread(65536, $off))" \
    > "$tmpdir/got"
dd if="$tmpdir/src.img" of="$tmpdir/want" bs=65536 skip=$((off / 65536)) count=1 status=none
cmp "$tmpdir/want" "$tmpdir/got"
sleep 2
b=$(present)
echo "paused: blocks_present $a -> $b (one more from the demand read)"
test "$b" -le $((a + 1))
test "$b" -lt $((size / 65536))
# The mirror says exactly what the filter has.
wait_rcli r 1 3 HGET 'nbdshadow:{vm1}:progress' paused
wait_rcli r "$b" 3 HGET 'nbdshadow:{vm1}:progress' blocks_present
test "$(rcli r BITCOUNT 'nbdshadow:{vm1}:coverage')" -eq "$b"
# Bit i is block i (SETBIT numbering): the block read on demand is set,
# its neighbours are not.
db=$((off / 65536))
test "$(rcli r GETBIT 'nbdshadow:{vm1}:coverage' $db)" -eq 1
test "$(rcli r GETBIT 'nbdshadow:{vm1}:coverage' $((db - 1)))" -eq 0
test "$(rcli r GETBIT 'nbdshadow:{vm1}:coverage' $((db + 1)))" -eq 0
test "$(rcli r XPENDING 'nbdshadow:{vm1}:commands' filter | head -1)" -eq 0

# resume: the copy goes on.
send_command r vm1 r1 resume
wait_rcli r ok 3 HGET 'nbdshadow:{vm1}:acks' r1
sleep 1
test "$(present)" -gt $((b + 8))
wait_rcli r 0 3 HGET 'nbdshadow:{vm1}:progress' paused

# throttle: 3 MB/s, measured over 3 s.
send_command r vm1 t1 throttle 3000000
wait_rcli r ok 3 HGET 'nbdshadow:{vm1}:acks' t1
wait_json "$json" bandwidth_limit 3000000 2
sleep 0.5
# The mirror's own timestamps: the stats file is rewritten about once a
# second, so a wall-clock window over it may hold 2 or 4 seconds' pulls.
read -r p0 t0 <<< "$(pulled_at r vm1)"
sleep 3
read -r p1 t1 <<< "$(pulled_at r vm1)"
rate=$(( (p1 - p0) * 1000000 / (t1 - t0) ))
echo "throttled to 3000000 bytes/s: measured $rate"
test $rate -ge 2400000
test $rate -le 3600000
wait_rcli r 3000000 3 HGET 'nbdshadow:{vm1}:progress' bandwidth_limit

# Bad commands are answered, not applied.
send_command r vm1 x1 reboot
send_command r vm1 x2 throttle fast
wait_rcli r "error: unknown command 'reboot'" 3 HGET 'nbdshadow:{vm1}:acks' x1
wait_rcli r "error: throttle needs rate, a number of bytes/s" 3 \
    HGET 'nbdshadow:{vm1}:acks' x2
test "$(json_get "$json" bandwidth_limit)" -eq 3000000

# finalize: no cap, the copy completes and the source is let go.
send_command r vm1 f1 finalize
wait_rcli r ok 3 HGET 'nbdshadow:{vm1}:acks' f1
wait_rcli r complete 20 HGET 'nbdshadow:{vm1}:info' state
test "$(json_get "$json" bandwidth_limit)" -eq 0
test "$(rcli r BITCOUNT 'nbdshadow:{vm1}:coverage')" -eq $((size / 65536))
rcli r XRANGE 'nbdshadow:{vm1}:events' - + > "$tmpdir/events"
for t in started paused resumed throttled finalizing complete switchover; do
    grep -qx "$t" "$tmpdir/events" || { echo "no $t event"; cat "$tmpdir/events"; exit 1; }
done
nbdcopy "$(uri sh)" "$tmpdir/out.img"
cmp "$tmpdir/src.img" "$tmpdir/out.img"
