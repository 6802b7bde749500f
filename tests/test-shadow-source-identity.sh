#!/usr/bin/env bash
# A state file belongs to one source disk.  VMs cloned from one template
# share their first block, so that is not enough to tell them apart: the
# fingerprint samples blocks spread over the disk, and the operator can
# name the disk (shadow-source-id=), which must match on every restart.
source ./functions.sh
requires nbdsh --version

# Disk A and its "clone" B: identical but for 4 KiB at 5 MiB.
nbdkit -U - pattern 16M --run 'nbdcopy "$uri" '"$tmpdir/a.disk"
cp "$tmpdir/a.disk" "$tmpdir/b.disk"
printf 'clone B%.0s' $(seq 585) | dd of="$tmpdir/b.disk" bs=1 seek=$((5 << 20)) \
    conv=notrunc status=none
cmp -n 65536 "$tmpdir/a.disk" "$tmpdir/b.disk"
start_server a file "$tmpdir/a.disk"
start_server b file "$tmpdir/b.disk"

# refused SOURCE REGEX PARAMS...: the shadow of A resumed against SOURCE.
refused ()
{
    local src="$1" regex="$2" r=0; shift 2
    nbdkit_refuses "$tmpdir/err" -U "$tmpdir/r.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/$src.sock" shadow-file="$tmpdir/s.img" \
        shadow-state="$tmpdir/s.state" shadow-policy=none "$@" || r=1
    cat "$tmpdir/err"
    if [ $r -ne 0 ]; then echo "FAIL: not refused: $src $*"; exit 1; fi
    test "$(grep -c error "$tmpdir/err")" -eq 1
    grep error "$tmpdir/err" | grep -qE -- "$regex" ||
        { echo "FAIL: the error line does not match: $regex"; exit 1; }
}

start_shadow s a shadow-policy=none shadow-source-id=vm-a/disk0
nbdsh -u "$(uri s)" -c 'h.pread(65536, 0)'
stop_server s

echo "== the clone, same first block"
refused b "belongs to another disk" shadow-source-id=vm-a/disk0
echo "== another name"
refused a "belongs to shadow-source-id=vm-a/disk0, not vm-b/disk0" \
    shadow-source-id=vm-b/disk0
echo "== no name"
refused a "was made with shadow-source-id=vm-a/disk0: give it again"
echo "== a bad name"
refused a "shadow-source-id: printable ASCII" "shadow-source-id=a b"

echo "== the right disk and name"
start_shadow s a shadow-policy=none shadow-source-id=vm-a/disk0
nbdsh -u "$(uri s)" -c '
import struct
assert struct.unpack(">Q", h.pread(8, 5 << 20))[0] == 5 << 20'
echo OK
