#!/usr/bin/env bash
# A 16 TiB disk through the shadow filter: reads near the start, middle
# and end (including the very last bytes) return the source's data,
# unaligned writes there read back (also after a restart), and the
# neighbouring source bytes are intact.
source ./functions.sh
requires nbdsh --version

size=$((16 * 1024 ** 4))
find_sparse_dir $size || {
    echo "$0: no file system here holds a sparse 16 TiB file"; exit 77; }
shadow_dir="$sparse_dir"
start_server src pattern $size
start_shadow big src shadow-policy=none

cat > "$tmpdir/check.py" <<'PY'
import struct, sys
phase = sys.argv[1]
size = h.get_size()
assert size == 16 * 1024 ** 4, size
def pattern(off, n):
    b = b"".join(struct.pack(">Q", o) for o in range(off & ~7, off + n + 8, 8))
    return b[off & 7:(off & 7) + n]
def data(off, n):
    return bytes((off + i) * 7 % 251 for i in range(n))
# (offset, length) of each write; the 64 KiB around each is checked.
writes = [(0, 1), (4095, 2), (size // 2 - 3, 7), (size // 2 + 65533, 9),
          (size - 65536 - 5, 11), (size - 13, 13), (size - 1, 1)]
def check(off, n, written):
    lo = max(0, off - 32768); hi = min(size, off + n + 32768)
    got = h.pread(hi - lo, lo)
    exp = bytearray(pattern(lo, hi - lo))
    for (o, k) in written:
        if o < hi and o + k > lo:
            a = max(o, lo); b = min(o + k, hi)
            exp[a - lo:b - lo] = data(a, b - a)
    assert got == bytes(exp), (phase, off, n)
if phase == "write":
    for off, n in writes:
        check(off, n, [])
    for off, n in writes:
        h.pwrite(data(off, n), off)
    h.flush()
for off, n in writes:
    check(off, n, writes)
assert h.pread(1, size - 1) == data(size - 1, 1)
print(phase, "ok")
PY
nbdsh -u "$(uri big)" -c "import sys; sys.argv=['', 'write']" \
    -c "exec(open('$tmpdir/check.py').read())"
stop_server big
start_shadow big src shadow-policy=none
nbdsh -u "$(uri big)" -c "import sys; sys.argv=['', 'reread']" \
    -c "exec(open('$tmpdir/check.py').read())"
wait_json "$tmpdir/big.json" blocks_total 268435456
test "$(json_get "$tmpdir/big.json" state)" = copying
