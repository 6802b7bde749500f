#!/bin/sh -
# The stats file: written as soon as nbdkit serves; stall_wall_us is
# the time with at least one guest request waiting, so concurrent stalls
# count once there and in full in stall_us; a filter stopped mid-copy
# says "stopped" (state and source), not "detached" as after a
# switchover; a restart that resumes the migration continues the
# counters.
. ./functions.sh
requires nbdsh --version
requires nbdinfo --version

# Every read of the source takes 300 ms; nothing copies in the background.
start_server src -r --filter=delay pattern 64M rdelay=300ms
start_shadow sh src shadow-policy=none
nbdinfo --size "$(uri sh)" > /dev/null     # answered: nbdkit serves
[ -f "$tmpdir/sh.json" ] ||
    { echo "$0: no stats file when nbdkit started serving"; exit 1; }

# Eight reads of eight distinct blocks, all in flight at once.
stalls8='
for i in range(8):
    h.aio_pread(nbd.Buffer(4096), (OFFSET + i) * 65536)
while h.aio_in_flight() > 0:
    h.poll(-1)
'
nbdsh -u "$(uri sh)" -c "$(echo "$stalls8" | sed 's/OFFSET/0/')"
wait_json "$tmpdir/sh.json" stalls 8
stall_us=$(json_get "$tmpdir/sh.json" stall_us)
wall_us=$(json_get "$tmpdir/sh.json" stall_wall_us)
echo "stall_us=$stall_us stall_wall_us=$wall_us"
if [ -z "$wall_us" ] || [ "$wall_us" -lt 250000 ] || [ $((wall_us * 3)) -gt "$stall_us" ]; then
    echo "$0: stall_wall_us is not the wall-clock time of overlapping stalls:"
    cat "$tmpdir/sh.json"; exit 1
fi

stop_server sh
for f in state source; do
    [ "$(json_get "$tmpdir/sh.json" $f)" = stopped ] ||
        { echo "$0: stopped mid-copy, the stats file says:"; cat "$tmpdir/sh.json"; exit 1; }
done

# Resumed: the counters go on from where they were.
start_shadow sh src shadow-policy=none
nbdsh -u "$(uri sh)" -c "$(echo "$stalls8" | sed 's/OFFSET/100/')"
wait_json "$tmpdir/sh.json" stalls 16 ||
    { echo "$0: the counters did not survive the restart"; exit 1; }
[ "$(json_get "$tmpdir/sh.json" stall_us)" -gt "$stall_us" ]
[ "$(json_get "$tmpdir/sh.json" stall_wall_us)" -gt "$wall_us" ]
[ "$(json_get "$tmpdir/sh.json" state)" = copying ]
