#!/usr/bin/env bash
# Switchover: once every block is present (stats: complete), the source
# can die.  A client connected before keeps working, new connections
# work (reads, writes, flush, metadata), and a restart of the filter on
# the complete state serves the same data with no source at all.
source ./functions.sh
requires nbdcopy --version
requires nbdsh --version

size=$((8 * 1024 * 1024))
ops=20000
[ -z "${NBDKIT_VALGRIND:-}" ] || ops=1000
start_server src -t 64 pattern $size
start_shadow sw src shadow-block-size=64K shadow-policy=none

# A client that connects now and does its I/O after the source is gone
# (waits for $tmpdir/go), in the upper half of the disk.
cat > "$tmpdir/early.py" <<'PY'
import os, struct, sys, time
tmp = sys.argv[1]
open(tmp + "/connected", "w").close()
while not os.path.exists(tmp + "/go"):
    time.sleep(0.05)
def pattern(off, n):
    b = b"".join(struct.pack(">Q", o) for o in range(off & ~7, off + n + 8, 8))
    return b[off & 7:(off & 7) + n]
size = h.get_size()
for off in (size // 2, size // 2 + 12345, size - 4096):
    assert h.pread(4096, off) == pattern(off, 4096), off
h.pwrite(b"early" * 1000, size // 2 + 100000, nbd.CMD_FLAG_FUA)
assert h.pread(5000, size // 2 + 100000) == b"early" * 1000
h.flush()
PY
nbdsh -u "$(uri sw)" -c "import sys; sys.argv=['', '$tmpdir']" \
    -c "exec(open('$tmpdir/early.py').read())" &
early=$!
for _ in $(seq 100); do [ -e "$tmpdir/connected" ] && break; sleep 0.1; done

# Full coverage by reading everything through the filter.
nbdcopy "$(uri sw)" null:
wait_json "$tmpdir/sw.json" state complete
test "$(json_get "$tmpdir/sw.json" blocks_present)" -eq \
     "$(json_get "$tmpdir/sw.json" blocks_total)"
fetched=$(json_get "$tmpdir/sw.json" bytes_fetched)

stop_server src
test ! -S "$tmpdir/src.sock" || rm "$tmpdir/src.sock"
touch "$tmpdir/go"
wait $early

# New connections after the source died: metadata, and random I/O in the
# lower half checked against the pattern.
nbdinfo "$(uri sw)" > "$tmpdir/info"
grep -q "export-size: $size" "$tmpdir/info"
./shadow-stress -u "$(uri sw)" --size $((size / 2)) -c 2 -n $ops \
    --source pattern --final-verify --timeout 300 | tee "$tmpdir/stress.out"
grep -q "^$ops ops, 0 mismatches$" "$tmpdir/stress.out"
nbdsh -u "$(uri sw)" -c 'h.flush()'
nbdcopy "$(uri sw)" "$tmpdir/before.img"
test "$(json_get "$tmpdir/sw.json" bytes_fetched)" -eq "$fetched"

# Restart on the complete state: no source needed, same data, writable.
stop_server sw
start_shadow sw src shadow-block-size=64K shadow-policy=none
nbdcopy "$(uri sw)" "$tmpdir/after.img"
cmp "$tmpdir/before.img" "$tmpdir/after.img"
nbdsh -u "$(uri sw)" -c '
h.pwrite(b"x" * 512, 4096)
assert h.pread(512, 4096) == b"x" * 512
h.flush()'
wait_json "$tmpdir/sw.json" state complete
