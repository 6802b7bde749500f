#!/usr/bin/env bash
# Whole-disk copies through the shadow filter equal the source: nbdcopy
# and qemu-img convert, 64K and 4K blocks, an odd-sized random file
# (size not a multiple of 512) and the pattern plugin.  After the first
# pass every block is present and a second pass fetches nothing.
source ./functions.sh
requires nbdcopy --version
requires qemu-img --version

rsize=$((5 * 1024 * 1024 + 12345))
head -c $rsize /dev/urandom > "$tmpdir/random.img"
psize=$((3 * 1024 * 1024 + 8 * 7 + 3))
start_server rnd -r -t 64 file "$tmpdir/random.img"
start_server pat -t 64 pattern $psize
nbdcopy "$(uri pat)" "$tmpdir/pattern.img"
test "$(stat -c %s "$tmpdir/pattern.img")" -eq $psize

# check_copy SRC REF BLOCKSIZE: copy through fresh shadows and compare.
check_copy ()
{
    src=$1 ref=$2 bs=$3 name=sh_$1_$3
    size=$(stat -c %s "$ref")
    bytes=$((${bs%K} * 1024))
    echo "== $src, block size $bs ($size bytes)"

    start_shadow $name $src shadow-block-size=$bs shadow-policy=none
    nbdcopy "$(uri $name)" "$tmpdir/out.img"
    cmp "$ref" "$tmpdir/out.img"
    wait_json "$tmpdir/$name.json" state complete
    total=$(json_get "$tmpdir/$name.json" blocks_total)
    test "$(json_get "$tmpdir/$name.json" blocks_present)" -eq "$total"
    test "$(json_get "$tmpdir/$name.json" block_size)" -eq $bytes
    test "$total" -eq $(( (size + bytes - 1) / bytes ))
    fetched=$(json_get "$tmpdir/$name.json" bytes_fetched)
    test "$fetched" -ge "$size"
    # Second pass: served from the shadow, nothing more fetched.
    rm "$tmpdir/out.img"
    nbdcopy "$(uri $name)" "$tmpdir/out.img"
    cmp "$ref" "$tmpdir/out.img"
    stop_server $name
    test "$(json_get "$tmpdir/$name.json" bytes_fetched)" -eq "$fetched"
    test "$(json_get "$tmpdir/$name.json" hits)" -gt 0
    # Nothing went wrong on the link: no reconnect to report.
    test "$(json_get "$tmpdir/$name.json" reconnects)" -eq 0

    # qemu-img on a fresh shadow (it rounds the size up to 512 bytes
    # and pads with zeroes: compare the real bytes with cmp -n).
    start_shadow ${name}_q $src shadow-block-size=$bs shadow-policy=none
    qemu-img convert -f raw -O raw "$(uri ${name}_q)" "$tmpdir/out.img"
    cmp -n $size "$ref" "$tmpdir/out.img"
    qemu-img compare -f raw -F raw "$ref" "$tmpdir/out.img"
    qemu-img compare -f raw -F raw "$(uri ${name}_q)" "$ref"
    wait_json "$tmpdir/${name}_q.json" state complete
    stop_server ${name}_q
    rm -f "$tmpdir/out.img"
}

for bs in 64K 4K; do
    check_copy rnd "$tmpdir/random.img" $bs
    check_copy pat "$tmpdir/pattern.img" $bs
done
