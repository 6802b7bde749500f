#!/usr/bin/env bash
# One filter owns a shadow and its state: a second nbdkit on the same
# files (or on the same state with another shadow) refuses with one
# clear line, and the first one's flushed writes survive (without the
# lock both served, and a fetch by one overwrote a write flushed through
# the other).
source ./functions.sh
requires nbdsh --version

start_server src pattern 8M
start_shadow a src shadow-policy=none
nbdsh -u "$(uri a)" -c '
h.pwrite(b"A" * 4096, 65536 + 4096)
h.flush()'

for shadow in a.img other.img; do
    if nbdkit_refuses "$tmpdir/second.log" -U "$tmpdir/second.sock" \
            --filter="$FILTER" nbd socket="$tmpdir/src.sock" \
            shadow-file="$tmpdir/$shadow" shadow-state="$tmpdir/a.state"; then
        cat "$tmpdir/second.log"
        test "$(grep -c error "$tmpdir/second.log")" -eq 1
        grep -q "error: shadow-.*is in use by another nbdkit shadow filter" \
            "$tmpdir/second.log"
    else
        cat "$tmpdir/second.log"
        echo "FAIL: a second filter on $shadow and a.state started"; exit 1
    fi
done

# The first filter is untouched by the attempts, and so are its files.
nbdsh -u "$(uri a)" -c '
assert h.pread(4096, 65536 + 4096) == b"A" * 4096
h.pwrite(b"B" * 512, 3 * 65536)
h.flush()'
stop_server a
start_shadow a src shadow-policy=none
nbdsh -u "$(uri a)" -c '
assert h.pread(4096, 65536 + 4096) == b"A" * 4096
assert h.pread(512, 3 * 65536) == b"B" * 512
import struct
# The rest of the block is the source pattern: each 8 bytes hold their offset.
off = 65536 + 8192
assert struct.unpack(">Q", h.pread(8, off))[0] == off'
echo OK
