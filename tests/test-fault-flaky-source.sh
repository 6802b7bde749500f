#!/usr/bin/env bash
# Fault injection: a source that fails 20 % of its reads (nbdkit error
# filter), answers slowly (delay filter), is killed in the middle of the
# copy and comes back.  A guest reads and writes all along: no read may
# return wrong bytes (failed reads are allowed: the guest sees EIO), no
# write may fail, and at the end the shadow equals the reference (the
# source plus the guest's writes), byte for byte.
source ./functions.sh
requires qemu-img --version
requires python3 -c 'import nbd'

size=128M
nbdkit -U - pattern $size --run 'nbdcopy "$uri" '"$tmpdir/ref.img"
source_args="--filter=error --filter=delay pattern $size rdelay=2ms
             error-pread-rate=0.2 error=EIO"
start_server src -t 64 $source_args
start_shadow sh src shadow-policy=sequential shadow-bandwidth=8M shadow-timeout=2

python3 "${abs_srcdir:-.}/fault-guest.py" "$(uri sh)" "$tmpdir/ref.img" 1 3
echo "== the source killed mid-copy ($(json_get "$tmpdir/sh.json" blocks_present) of 2048 blocks local)"
test "$(json_get "$tmpdir/sh.json" blocks_present)" -lt 2048
stop_server src KILL
python3 "${abs_srcdir:-.}/fault-guest.py" "$(uri sh)" "$tmpdir/ref.img" 2 3
echo "== and back"
start_server src -t 64 $source_args
python3 "${abs_srcdir:-.}/fault-guest.py" "$(uri sh)" "$tmpdir/ref.img" 3 3
wait_json "$tmpdir/sh.json" state complete 60
echo "fetch errors survived: $(json_get "$tmpdir/sh.json" fetch_errors)"
qemu-img compare -f raw -F raw "$tmpdir/sh.img" "$tmpdir/ref.img"
echo OK
