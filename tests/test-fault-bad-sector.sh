#!/usr/bin/env bash
# Fault injection: a source with a sector it can never read (an eval
# plugin answering EIO for one 4K range, like a failing disk).  The
# blocks beside it, read by the same pulls, must still become local;
# the bad block is retried with growing waits, not in a loop that
# hammers the source and floods the log.  The guest gets EIO where its
# read takes in the bad sector, and the source's bytes everywhere else,
# in the bad sector's block too (asked for alone, as a disk answers).
# The operator is told: the stats, `nbdshadow status` and an event in
# Redis say how many blocks the source fails to read; once the sector
# reads again the copy completes and they say so.  Then a source whose
# storage goes away under a second copy (every read fails): a few lines
# per pass, not one per block.
source ./functions.sh
source ./redis-functions.sh
requires nbdsh --version
requires dd --version

head -c 16M /dev/urandom > "$tmpdir/src.img"
bad=$((82 * 65536 + 4096))      # in block 82 of 256, no fingerprint sample
start_server src eval get_size='echo 16777216' thread_model='echo parallel' \
    can_extents='exit 3' \
    pread="if [ -e '$tmpdir/broken' ] ||
              { [ -e '$tmpdir/sick' ] &&
                [ \$4 -lt $((bad + 4096)) ] && [ \$((\$4 + \$3)) -gt $bad ]; }; then
               echo EIO cannot read the sector >&2; exit 1
           fi
           dd if='$tmpdir/src.img' skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none"
touch "$tmpdir/sick"
start_redis r
start_shadow sh src shadow-policy=sequential shadow-timeout=2 \
    shadow-redis="unix:$tmpdir/r.redis" shadow-id=sick

# Every block but the bad one is local soon, however the pulls grouped it.
wait_json "$tmpdir/sh.json" blocks_present 255 30
sleep 6
cat "$tmpdir/sh.json"; echo
test "$(json_get "$tmpdir/sh.json" blocks_present)" -eq 255
test "$(json_get "$tmpdir/sh.json" state)" = copying

# Retried, not hammered: over these seconds a loop would fail hundreds
# of times a second, with a log line each.
errors=$(json_get "$tmpdir/sh.json" fetch_errors)
lines=$(grep -c "pulling .*Input/output error" "$tmpdir/sh.log" || :)
echo "fetch errors: $errors, log lines: $lines"
test "$errors" -lt 40
test "$lines" -lt 20

# Told: one block the source cannot read, in the stats, in status (from
# the stats file and from Redis) and as an event.
test "$(json_get "$tmpdir/sh.json" unreadable_blocks)" -eq 1
"$NBDSHADOW" status sick --stats "$tmpdir/sh.json" > "$tmpdir/status"
cat "$tmpdir/status"
grep -q "^sick: 1 block unreadable at the source: .*until the source reads" "$tmpdir/status"
wait_rcli r 1 5 HGET 'nbdshadow:{sick}:progress' unreadable_blocks
"$NBDSHADOW" status sick --redis "unix:$tmpdir/r.redis" --json > "$tmpdir/status.json"
grep -q '"unreadable_blocks": 1,' "$tmpdir/status.json"
rcli r XRANGE 'nbdshadow:{sick}:events' - + | grep -qx source-read-error

nbdsh -u "$(uri sh)" -c "
import errno
for off, n in (($bad, 4096), ($bad - 512, 1024), (82 * 65536, 65536)):
    try:
        h.pread(n, off)
        assert False, 'the bad sector was read at %d' % off
    except nbd.Error as e:
        assert e.errnum == errno.EIO, e
src = open('$tmpdir/src.img', 'rb').read()
for off, n in ((82 * 65536, 4096), ($bad + 4096, 8192), (81 * 65536, 65536),
               (82 * 65536 - 4096, 4096), (83 * 65536, 4096), (0, 4096)):
    assert h.pread(n, off) == src[off:off + n], off
"

# The sector reads again: the next retry (6.4 s apart at most) makes
# the copy complete, and nothing says a block is unreadable any more.
rm "$tmpdir/sick"
wait_json "$tmpdir/sh.json" blocks_present 256 20
wait_rcli r complete 10 HGET 'nbdshadow:{sick}:info' state
test "$(json_get "$tmpdir/sh.json" unreadable_blocks)" -eq 0
rcli r XRANGE 'nbdshadow:{sick}:events' - + | grep -qx source-read-ok
nbdsh -u "$(uri sh)" -c "
src = open('$tmpdir/src.img', 'rb').read()
assert h.pread(65536, 82 * 65536) == src[82 * 65536:83 * 65536]
"

start_shadow all src shadow-policy=sequential shadow-timeout=2 \
    shadow-bandwidth=2M
# Once pulls arrive (more than the fingerprint's 17 samples are local):
# the engine's connection is verified, and every read fails from now on.
for _ in $(seq 300); do
    [ "$(json_get "$tmpdir/all.json" blocks_present 2>/dev/null)" -gt 17 ] 2>/dev/null && break
    sleep 0.1
done
touch "$tmpdir/broken"
sleep 6
all_lines=$(grep -c "pulling .*Input/output error\|more pulls failed" "$tmpdir/all.log" || :)
echo "every read failing: $(json_get "$tmpdir/all.json" blocks_present) blocks local, $all_lines log lines"
test "$all_lines" -ge 1
test "$all_lines" -lt 30
# Once a pass is over, every block not local yet is one it failed,
# counted once though the order and then the sweep asked for it.
for _ in $(seq 400); do
    [ "$(json_get "$tmpdir/all.json" unreadable_blocks)" -gt 0 ] && break
    sleep 0.1
done
absent=$((256 - $(json_get "$tmpdir/all.json" blocks_present)))
test "$(json_get "$tmpdir/all.json" unreadable_blocks)" -eq $absent
rm "$tmpdir/broken"
wait_json "$tmpdir/all.json" blocks_present 256 60
echo OK
