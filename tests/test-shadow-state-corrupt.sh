#!/usr/bin/env bash
# A state file that fails its checks is refused with one line naming
# the part (and offset) that failed, never guessed: a flipped bit in the
# bitmap used to make the filter serve zeros for a block it never had,
# and two bad journal slots made it fetch over a flushed guest sector.
# Old formats and foreign files are refused too.  After each refusal the
# intact state resumes with the guest's data.
source ./functions.sh
requires nbdsh --version

start_server src pattern 8M
start_shadow s src shadow-policy=none
# Blocks 0 and 2 local (read), a partial write to absent block 5.
nbdsh -u "$(uri s)" -c '
h.pread(65536, 0)
h.pread(65536, 2 * 65536)
h.pwrite(b"guest", 5 * 65536 + 1024)
h.flush()'
stop_server s
state="$tmpdir/s.state"
cp "$state" "$tmpdir/good.state"

# u64 FILE OFFSET: a little-endian 64-bit field of the header.
u64 () { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
u32 () { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
bitmap_offset=$(u64 "$state" 32)
journal_offset=$(u64 "$state" 48)
slot_bytes=$(u32 "$state" 56)

# poke OFFSET BYTE: overwrite one byte of the state file.
poke () { printf "\\x$2" | dd of="$state" bs=1 seek="$1" conv=notrunc status=none; }
# flip OFFSET: invert one byte (a fixed value at a checksum or random
# byte would leave the file unchanged one time in 256).
flip () { poke "$1" "$(printf %02x $(( $(od -An -tu1 -j "$1" -N1 "$state") ^ 255 )))"; }

# refused REGEX: the filter must refuse the state with one matching line.
refused ()
{
    local r=0
    nbdkit_refuses "$tmpdir/err" -U "$tmpdir/r.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/s.img" \
        shadow-state="$state" shadow-policy=none || r=1
    cat "$tmpdir/err"
    if [ $r -ne 0 ]; then echo "FAIL: not refused ($1)"; exit 1; fi
    test "$(grep -c error "$tmpdir/err")" -eq 1
    grep error "$tmpdir/err" | grep -qE -- "$1" ||
        { echo "FAIL: the error line does not match: $1"; exit 1; }
    cp "$tmpdir/good.state" "$state"
}

echo "== a flipped bit in the bitmap (block 1 said local)"
poke $bitmap_offset 07
refused "bitmap page 0 \\(offset $bitmap_offset, blocks 0-[0-9]+\\) fails its checksum"

echo "== both journal slots corrupt"
flip $((journal_offset + 40))
flip $((journal_offset + slot_bytes + 40))
refused "both journal slots \\(offsets $journal_offset and $((journal_offset + slot_bytes))\\)"

echo "== the header"
poke 20 01
refused "header \\(page 0\\) fails its checksum"

echo "== both session records"
flip 4200
flip 8300
refused "both session records"

echo "== an older format"
poke 8 01
refused "state format 1, this filter reads format 2"

echo "== a foreign file"
head -c 200000 /dev/urandom > "$state"
refused "is not an nbdshadow state file"

echo "== truncated"
head -c $journal_offset "$tmpdir/good.state" > "$state"
refused "is truncated"

# Untouched by all that: resumes with the guest's sector.
cmp "$state" "$tmpdir/good.state"
start_shadow s src shadow-policy=none
nbdsh -u "$(uri s)" -c '
import struct
assert h.pread(5, 5 * 65536 + 1024) == b"guest"
off = 5 * 65536
assert struct.unpack(">Q", h.pread(8, off))[0] == off
off = 65536 + 8
assert struct.unpack(">Q", h.pread(8, off))[0] == off'
echo OK
