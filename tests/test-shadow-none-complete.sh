#!/bin/sh -
# shadow-policy=none (demand fetches only) reaches "complete" once the
# guest has read every block that holds data: the source's holes are
# known from its allocation map and made local without a transfer, as
# no guest ever reads them.  Then the source is detached, and the export
# still equals the source.
. ./functions.sh
requires nbdcopy --version
requires qemu-img --version

src="$tmpdir/src.img"
head -c 4M /dev/urandom > "$src"
truncate -s 12M "$src"
head -c 2M /dev/urandom >> "$src"
truncate -s 16M "$src"
start_server src -r file "$src"
start_shadow sh src shadow-policy=none

# Only the two data stretches, as a guest that never reads the holes.
qemu-io -f raw -c "read 0 4M" -c "read 12M 2M" "$(uri sh)" > /dev/null
wait_json "$tmpdir/sh.json" state complete 30
[ "$(json_get "$tmpdir/sh.json" bytes_pulled)" = 0 ] ||
    { echo "$0: policy none pulled in the background:"; cat "$tmpdir/sh.json"; exit 1; }
[ "$(json_get "$tmpdir/sh.json" hole_blocks)" -gt 0 ]
stop_server src
qemu-img compare -f raw -F raw "$(uri sh)" "$src"
