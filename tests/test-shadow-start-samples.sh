#!/usr/bin/env bash
# The source's fingerprint samples, read before the filter serves, are
# installed as local blocks: a guest's first read of block 0 (QEMU
# probes it as it opens the disk) does not wait for the source.  Bytes
# compared: the samples' blocks equal the source's, and a sector the
# guest wrote into a sample's block before stays the guest's.
# shadow-policy=none (demand only) installs nothing.
source ./functions.sh
requires nbdsh --version

nbdkit -U - pattern 16M --run 'nbdcopy "$uri" '"$tmpdir/src.disk"
# 8 Mbit/s and 100 ms a read: the copy of 256 blocks takes many seconds.
start_server src --filter=rate --filter=delay file "$tmpdir/src.disk" \
    rate=8M rdelay=100ms
cp "$tmpdir/src.disk" "$tmpdir/want.disk"
printf 'G%.0s' $(seq 512) |
    dd of="$tmpdir/want.disk" bs=1 seek=$(((1 << 20) + 4096)) conv=notrunc status=none

# stalls NAME: guest reads that waited for the source, from the first
# stats file written after the reads (it is rewritten every second; its
# counters survive a restart).
stalls ()
{
    touch "$tmpdir/mark"
    for _ in $(seq 100); do
        if [ "$tmpdir/$1.json" -nt "$tmpdir/mark" ]; then
            json_get "$tmpdir/$1.json" stalls; return
        fi
        sleep 0.1
    done
    echo "$0: $tmpdir/$1.json not rewritten in 10 s" >&2; echo -1
}

echo "== demand only: block 0 stalls; a sector written into block 16"
start_shadow s src shadow-policy=none
nbdsh -u "$(uri s)" -c '
h.pwrite(b"G" * 512, (1 << 20) + 4096)
h.pread(512, 0)'
test "$(stalls s)" -eq 1
stop_server s

echo "== sequential: the samples' blocks are local at once"
start_shadow s src shadow-policy=sequential
nbdsh -u "$(uri s)" -c '
want = open("'"$tmpdir/want.disk"'", "rb").read()
for off in (0, 1 << 20, 15 << 20, (16 << 20) - 65536):
    assert h.pread(65536, off) == want[off:off + 65536], off
h.pread(512, 200 << 16)       # no sample there: this one waits
'
n=$(stalls s)
if [ "$n" -ne 2 ]; then
    echo "FAIL: $n stalls, want 1 before and 1 for block 200"; cat "$tmpdir/s.json"
    exit 1
fi
echo "samples' blocks local, guest sector kept"
