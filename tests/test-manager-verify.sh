#!/bin/sh -
# nbdshadow verify: identical after a finished migration (through the
# export and on the shadow file), a single corrupted byte found with its
# offset, in data and in a range that is a hole on the source.
. ./functions.sh

# A sparse source: three data extents, holes elsewhere.
truncate -s 32M "$tmpdir/source.img"
for mib in 1 9 20; do
    head -c 1500000 /dev/urandom |
        dd of="$tmpdir/source.img" bs=1M seek=$mib conv=notrunc status=none
done
start_server src -r file "$tmpdir/source.img"
start_shadow dst src
wait_json "$tmpdir/dst.json" state complete

src="$(uri src)"
"$NBDSHADOW" verify --source "$src" --uri "$(uri dst)" > "$tmpdir/out"
grep -q '^identical: ' "$tmpdir/out"
"$NBDSHADOW" verify --source "$src" --shadow "$tmpdir/dst.img" --json \
    --chunk 256K --connections 3 > "$tmpdir/out.json"
test "$(json_get "$tmpdir/out.json" identical)" = true
# Holes on both sides are skipped, data is hashed: about 4.5 MiB of 32.
hashed=$(json_get "$tmpdir/out.json" bytes_hashed)
skipped=$(json_get "$tmpdir/out.json" bytes_skipped)
test "$hashed" -ge 4500000
test "$hashed" -le $((8 << 20))
test $((hashed + skipped)) -eq $((32 << 20))

# One byte changed in the shadow, in data the source holds.
stop_server dst
corrupt ()
{
    printf "$2" | dd of="$tmpdir/dst.img" bs=1 seek="$1" conv=notrunc status=none
}
off=$(( (9 << 20) + 777777 ))
old=$(od -An -tx1 -j $off -N1 "$tmpdir/dst.img" | tr -d ' ')
new=$(printf '%02x' $(( 0x$old ^ 0x5a )))
corrupt $off "\\$(printf '%03o' 0x$new)"
status=0
"$NBDSHADOW" verify --source "$src" --shadow "$tmpdir/dst.img" \
    > "$tmpdir/out" || status=$?
cat "$tmpdir/out"
test $status -eq 1
grep -qx "mismatch: offset $off length 1" "$tmpdir/out"
test "$(grep -c '^mismatch' "$tmpdir/out")" -eq 1
grep -q '^DIFFERENT: .*1 byte differs in 1 range' "$tmpdir/out"

# A byte written where the source has a hole: not skipped as "zero".
hole=$(( (30 << 20) + 4095 ))
corrupt $hole '\001'
status=0
"$NBDSHADOW" verify --source "$src" --shadow "$tmpdir/dst.img" --json \
    > "$tmpdir/out.json" || status=$?
test $status -eq 1
grep -q "\"mismatches\": \[{\"offset\": $off, \"length\": 1}, {\"offset\": $hole, \"length\": 1}\]" \
    "$tmpdir/out.json"

# The same through the export of the complete shadow (no source needed).
start_shadow dst src
status=0
"$NBDSHADOW" verify --source "$src" --uri "$(uri dst)" > "$tmpdir/out" ||
    status=$?
test $status -eq 1
grep -qx "mismatch: offset $hole length 1" "$tmpdir/out"

# Trouble is exit 2, not "different".
status=0
"$NBDSHADOW" verify --source "nbd+unix:///?socket=$tmpdir/none.sock" \
    --shadow "$tmpdir/dst.img" 2> "$tmpdir/err" || status=$?
test $status -eq 2
grep -q '^nbdshadow: nbd+unix:///?socket=.*none.sock: ' "$tmpdir/err"
truncate -s 16M "$tmpdir/short.img"
status=0
"$NBDSHADOW" verify --source "$src" --shadow "$tmpdir/short.img" \
    > "$tmpdir/out" || status=$?
test $status -eq 1
grep -q '^sizes differ: source 33554432 bytes, shadow 16777216 bytes' "$tmpdir/out"

# A directory given as the shadow: one line saying so, before any read.
status=0
"$NBDSHADOW" verify --source "$src" --shadow "$tmpdir" 2> "$tmpdir/err" ||
    status=$?
test $status -eq 2
test "$(cat "$tmpdir/err")" = "nbdshadow: $tmpdir: not a regular file or block device"
