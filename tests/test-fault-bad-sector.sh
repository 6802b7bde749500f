#!/usr/bin/env bash
# Fault injection: a source with a sector it can never read (an eval
# plugin answering EIO for one 4K range, like a failing disk).  The
# blocks beside it, read by the same pulls, must still become local;
# the bad block is retried with growing waits, not in a loop that
# hammers the source and floods the log; the guest reading it gets EIO
# and every other block is the source's.  (The whole of block 82 reads
# as EIO, not just the sector: the shadow fetches whole blocks.)
source ./functions.sh
requires nbdsh --version
requires dd --version

head -c 16M /dev/urandom > "$tmpdir/src.img"
bad=$((82 * 65536 + 4096))      # in block 82 of 256, no fingerprint sample
start_server src eval get_size='echo 16777216' thread_model='echo parallel' \
    can_extents='exit 3' \
    pread="if [ \$4 -lt $((bad + 4096)) ] && [ \$((\$4 + \$3)) -gt $bad ]; then
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
lines=$(grep -c "pulling .*Input/output error" "$tmpdir/sh.log")
echo "fetch errors: $errors, log lines: $lines"
test "$errors" -lt 40
test "$lines" -lt 20

nbdsh -u "$(uri sh)" -c "
import errno
try:
    h.pread(4096, $bad)
    assert False, 'the bad sector was read'
except nbd.Error as e:
    assert e.errnum == errno.EIO, e
src = open('$tmpdir/src.img', 'rb').read()
for off in (81 * 65536, 82 * 65536 - 4096, 83 * 65536, 0, 16 * 2**20 - 4096):
    assert h.pread(4096, off) == src[off:off + 4096], off
"
echo OK
