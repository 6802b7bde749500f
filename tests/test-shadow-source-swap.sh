#!/usr/bin/env bash
# The source is re-identified on every reconnection.  Half-way through
# a copy from disk A, the source dies and disk B (same size) comes back
# at the same address: the filter must refuse it and say so, never pull
# from it; once A is back the copy completes and equals A.  (Before, the
# copy completed with half of A and half of B, without a word.)
source ./functions.sh
requires qemu-img --version

nbdkit -U - pattern 16M --run 'nbdcopy "$uri" '"$tmpdir/a.disk"
head -c 16M /dev/urandom > "$tmpdir/b.disk"
# A slow source, so that the copy is still running when it dies.
start_server src --filter=delay file "$tmpdir/a.disk" rdelay=20ms
start_shadow sh src shadow-policy=sequential shadow-bandwidth=2M
for _ in $(seq 100); do
    [ "$(json_get "$tmpdir/sh.json" blocks_present 2>/dev/null)" -gt 16 ] 2>/dev/null && break
    sleep 0.1
done

echo "== disk B at A's address"
stop_server src KILL
start_server src file "$tmpdir/b.disk"
for _ in $(seq 100); do
    grep -q "is another disk now" "$tmpdir/sh.log" && break
    sleep 0.1
done
grep "is another disk now" "$tmpdir/sh.log" ||
    { echo "FAIL: disk B was not refused"; cat "$tmpdir/sh.json"; exit 1; }
sleep 2
test "$(json_get "$tmpdir/sh.json" state)" = copying
test "$(json_get "$tmpdir/sh.json" source)" = disconnected

echo "== disk A back"
stop_server src
start_server src file "$tmpdir/a.disk"
wait_json "$tmpdir/sh.json" state complete 60
qemu-img compare -f raw -F raw "$tmpdir/sh.img" "$tmpdir/a.disk"
echo OK
