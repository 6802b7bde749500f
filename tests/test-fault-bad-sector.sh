#!/usr/bin/env bash
# Fault injection: a source with a sector it can never read (an eval
# plugin answering EIO for one 4K range, like a failing disk).  The
# blocks beside it, read by the same pulls, must still become local;
# the bad block is retried with growing waits, not in a loop that
# hammers the source and floods the log.  The guest gets EIO where its
# read takes in the bad sector, and the source's bytes everywhere else,
# in the bad sector's block too (asked for alone, as a disk answers).
# Then a source whose storage goes away under a second copy (every read
# fails): a few lines per pass, not one per block.
source ./functions.sh
requires nbdsh --version
requires dd --version

head -c 16M /dev/urandom > "$tmpdir/src.img"
bad=$((82 * 65536 + 4096))      # in block 82 of 256, no fingerprint sample
start_server src eval get_size='echo 16777216' thread_model='echo parallel' \
    can_extents='exit 3' \
    pread="if [ -e '$tmpdir/broken' ] ||
              { [ \$4 -lt $((bad + 4096)) ] && [ \$((\$4 + \$3)) -gt $bad ]; }; then
               echo EIO cannot read the sector >&2; exit 1
           fi
           dd if='$tmpdir/src.img' skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none"
start_shadow sh src shadow-policy=sequential shadow-timeout=2

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
rm "$tmpdir/broken"
wait_json "$tmpdir/all.json" blocks_present 255 60
echo OK
