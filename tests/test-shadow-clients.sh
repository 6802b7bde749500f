#!/bin/sh -
# Real NBD clients beyond QEMU through the shadow filter, mid-migration
# (demand fetches only: shadow-policy=none, so every read that reaches an
# absent block goes to the source): nbdinfo sees the source's size,
# qemu-img compare finds the export equal to the source, qemu-io's and
# fio's writes read back (qemu-io's pattern check, fio's own crc32c
# verify), and qemu-img convert and nbdcopy read the same bytes as the
# shadow file holds.
. ./functions.sh
requires nbdinfo --version
requires nbdcopy --version
requires qemu-img --version
requires qemu-io --version
requires sh -c 'fio --enghelp | grep -qw nbd'

# A source with data, a hole and data again.
src="$tmpdir/src.img"
head -c 24M /dev/urandom > "$src"
truncate -s 40M "$src"
head -c 8M /dev/urandom >> "$src"
start_server src -r file "$src"
start_shadow sh src shadow-policy=none

[ "$(nbdinfo --size "$(uri sh)")" = "$(stat -c %s "$src")" ] ||
    { echo "$0: nbdinfo --size: $(nbdinfo --size "$(uri sh)")"; exit 1; }
qemu-img compare -f raw -F raw "$(uri sh)" "$src"

# qemu-io: a pattern written over absent and present blocks reads back,
# and the data around it is still the source's.
qemu-io -f raw -c "write -P 0xcd 1000k 200k" -c "read -P 0xcd 1000k 200k" \
    -c "write -P 0x5a 30M 64k" -c "read -P 0x5a 30M 64k" "$(uri sh)" > "$tmpdir/qio" ||
    { cat "$tmpdir/qio"; exit 1; }
if grep -q "Pattern verification failed" "$tmpdir/qio"; then cat "$tmpdir/qio"; exit 1; fi
cp "$src" "$tmpdir/expected"
qemu-io -f raw -c "write -P 0xcd 1000k 200k" -c "write -P 0x5a 30M 64k" \
    "$tmpdir/expected" > /dev/null
qemu-img compare -f raw -F raw "$(uri sh)" "$tmpdir/expected"

# fio over the nbd engine: random 4K writes into the still-absent tail,
# each verified by reading it back.
fio --name=verify --ioengine=nbd --uri="$(uri sh)" --rw=randwrite --bs=4k \
    --offset=40M --size=8M --verify=crc32c --do_verify=1 --iodepth=8 \
    --output="$tmpdir/fio.out" > /dev/null ||
    { cat "$tmpdir/fio.out"; exit 1; }
grep -q "err= 0" "$tmpdir/fio.out" || { cat "$tmpdir/fio.out"; exit 1; }

# Copy the whole export out two ways; both equal what the shadow file
# holds once every block is local.
qemu-img convert -f raw -O raw "$(uri sh)" "$tmpdir/convert.img"
nbdcopy "$(uri sh)" "$tmpdir/nbdcopy.img"
cmp "$tmpdir/convert.img" "$tmpdir/nbdcopy.img"
qemu-img compare -f raw -F raw "$tmpdir/convert.img" "$tmpdir/sh.img"
cmp -n 40M "$tmpdir/expected" "$tmpdir/convert.img"
