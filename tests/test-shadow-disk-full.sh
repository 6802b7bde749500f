#!/usr/bin/env bash
# The shadow's file system fills up during the copy (a small tmpfs,
# mounted in a private mount namespace).  The filter warns at start,
# says that the file system is full (not once per failed write), pauses
# the background copy instead of pulling blocks it cannot store again
# and again, serves guest reads of blocks not yet local from the source
# (they used to fail with ENOSPC), and once there is room again finishes
# the copy: the shadow equals the source.
if [ -z "${NBDSHADOW_UNSHARED:-}" ]; then
    if unshare -m --propagation private true 2>/dev/null; then
        NBDSHADOW_UNSHARED=1 exec unshare -m --propagation private "$BASH" "$0" "$@"
    fi
    echo "$0: test skipped because a private mount namespace is not available"
    exit 77
fi
source ./functions.sh
requires nbdsh --version
requires qemu-img --version

mkdir "$tmpdir/small"
mount -t tmpfs -o size=24m tmpfs "$tmpdir/small"
# Detached lazily on exit: the servers still hold files there.
trap 'r=$?; umount -l "$tmpdir/small" 2>/dev/null || :; set +e; (exit $r); cleanup' \
    INT QUIT TERM EXIT

size=64M
start_server src -t 64 pattern $size
start_server sh -v --filter="$FILTER" nbd socket="$tmpdir/src.sock" \
    shadow-file="$tmpdir/small/sh.img" shadow-state="$tmpdir/sh.state" \
    shadow-stats="$tmpdir/sh.json" shadow-policy=sequential
# wait_log REGEX: until the filter's log has a line matching it.
wait_log ()
{
    for _ in $(seq 100); do
        grep -q "$1" "$tmpdir/sh.log" && return 0
        sleep 0.1
    done
    echo "FAIL: no log line matching: $1"; exit 1
}
wait_log "warning: [0-9]* bytes free on its file system"
# Full within a second or so; then a few seconds of being full.
wait_log "its file system is full"
wait_json "$tmpdir/sh.json" disk_full true 10

# The guest keeps reading blocks not yet local for 6 s (a guest keeps
# the engine busy; one that sleeps would hide a copy that loops): the
# source's data, no error, while the background copy must not go on
# pulling blocks it cannot store.
before=$(json_get "$tmpdir/sh.json" bytes_pulled)
nbdsh -u "$(uri sh)" -c '
import struct, time
end = time.monotonic() + 6
off = 30 << 20
while time.monotonic() < end:
    buf = h.pread(65536, off)
    for i in range(0, 65536, 4096):
        assert struct.unpack(">Q", buf[i:i+8])[0] == off + i, off
    o = off + 12345 & ~7
    assert struct.unpack(">Q", h.pread(8, o))[0] == o
    off = (off + (1 << 20)) % (64 << 20)
    time.sleep(0.05)'
pulled=$(( $(json_get "$tmpdir/sh.json" bytes_pulled) - before ))
echo "pulled $pulled bytes in 6 s while the 24M file system was full"
if [ "$pulled" -gt $((48 * 1024 * 1024)) ]; then
    echo "FAIL: the copy kept pulling into a full file system"; exit 1
fi
# Said once, or again after a pull that fit in between: not per write.
full_lines=$(grep -c "its file system is full" "$tmpdir/sh.log")
if [ "$full_lines" -gt 5 ]; then
    echo "FAIL: 'file system is full' said $full_lines times"; exit 1
fi
if [ "$(grep -c "shadow-file: write" "$tmpdir/sh.log")" -gt 0 ]; then
    echo "FAIL: a write error line per failed write"; exit 1
fi

# Room again: the copy finishes and the shadow is the source.
mount -o remount,size=100m "$tmpdir/small"
wait_json "$tmpdir/sh.json" state complete 90
test "$(json_get "$tmpdir/sh.json" disk_full)" = false
qemu-img compare -f raw -F raw "$tmpdir/small/sh.img" "$(uri src)"
echo OK
