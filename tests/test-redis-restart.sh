#!/usr/bin/env bash
# Redis killed in the middle of a migration: no guest read fails and the
# copy goes on; once a new redis-server is up, the filter re-writes its
# whole mirror from local state within 5 s, and a pause sent before the
# filter was back (while it was reconnecting) takes effect.
source ./functions.sh
source ./redis-functions.sh
requires python3 -c "import nbd"

start_source_and_redis $((48 * 1024 * 1024))
start_mirrored sh vm1 shadow-policy=sequential shadow-bandwidth=6M

# The guest: random block reads checked against the source, all along.
cat > "$tmpdir/guest.py" <<'PY'
import nbd, random, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])
src = open(sys.argv[2], "rb")
bs, n, end = 65536, int(sys.argv[3]) // 65536, time.time() + float(sys.argv[4])
reads = 0
while time.time() < end:
    b = random.randrange(n)
    src.seek(b * bs)
    if h.pread(bs, b * bs) != src.read(bs):
        print("guest read of block %d differs" % b); sys.exit(1)
    reads += 1
    time.sleep(0.02)
print("guest: %d reads, all right" % reads)
PY
python3 "$tmpdir/guest.py" "$(uri sh)" "$tmpdir/src.img" $size 5 \
    > "$tmpdir/guest.out" 2>&1 &
guest=$!

sleep 1
stop_server r KILL
before=$(json_get "$json" blocks_present)
# Down long enough that the filter's retries back off to 1.6 s (they
# come 0.1, 0.3, 0.7, 1.5 and 3.1 s after the loss): the mirror must be
# back within 5 s all the same.
sleep 2.3
# Redis comes back empty (no persistence), and the pause goes in before
# the filter is back: the new server listens on another path until the
# pause is in its stream, then its socket is renamed to the one the
# filter keeps trying (a rename is atomic, so however slow the machine
# the filter cannot have reached it earlier).
start_redis r2
send_command r2 vm1 p1 pause
[ "$(rcli r2 EXISTS 'nbdshadow:{vm1}:info')" -eq 0 ] ||
    { echo "the filter was back before the pause was sent"; exit 1; }
mv "$tmpdir/r2.redis" "$tmpdir/r.redis"
t0=$(date +%s%N)
wait_rcli r copying 5 HGET 'nbdshadow:{vm1}:info' state
echo "info back $(( ($(date +%s%N) - t0) / 1000000 )) ms after the restart"
wait_rcli r ok 5 HGET 'nbdshadow:{vm1}:acks' p1
wait_json "$json" paused true 2
echo "mirror back and the pause applied $(( ($(date +%s%N) - t0) / 1000000 )) ms after the restart"
test $(( $(date +%s%N) - t0 )) -lt 5000000000
test "$(rcli r SISMEMBER nbdshadow:volumes vm1)" -eq 1
test "$(rcli r HGET 'nbdshadow:{vm1}:info' blocks_total)" -eq $((size / 65536))
wait_rcli r 1 1 HGET 'nbdshadow:{vm1}:progress' paused

wait $guest || { cat "$tmpdir/guest.out"; exit 1; }
cat "$tmpdir/guest.out"
test "$(json_get "$json" fetch_errors)" -eq 0
# Paused, the guest gone: nothing changes any more, and the mirror says
# exactly what the filter has.
sleep 1.2
n=$(json_get "$json" blocks_present)
test "$n" -gt "$before"         # the copy went on without Redis
test "$n" -lt $((size / 65536))
wait_rcli r "$n" 2 HGET 'nbdshadow:{vm1}:progress' blocks_present
test "$(rcli r BITCOUNT 'nbdshadow:{vm1}:coverage')" -eq "$n"
sleep 1.5
test "$(json_get "$json" blocks_present)" -eq "$n"
