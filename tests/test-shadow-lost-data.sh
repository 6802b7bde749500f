#!/usr/bin/env bash
# A shadow file that lost its data since the filter's last clean stop
# (truncated and re-extended to its size, or replaced by another disk's
# of the same size) is refused instead of served: it used to read as
# zeros.  After a SIGKILL the shadow may hold anything written since the
# last checkpoint, so a restart after a crash must not be refused.
source ./functions.sh
requires nbdsh --version
requires qemu-img --version

start_server src pattern 16M
start_shadow s src shadow-policy=sequential
wait_json "$tmpdir/s.json" state complete 60
stop_server s
cp --sparse=always "$tmpdir/s.img" "$tmpdir/good.img"

refused ()
{
    local r=0
    nbdkit_refuses "$tmpdir/err" -U "$tmpdir/r.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/s.img" \
        shadow-state="$tmpdir/s.state" || r=1
    cat "$tmpdir/err"
    if [ $r -ne 0 ]; then echo "FAIL: the shadow was served ($1)"; exit 1; fi
    test "$(grep -c error "$tmpdir/err")" -eq 1
    grep -q "error: shadow-file: .*s.img lost data since the filter's last stop" \
        "$tmpdir/err"
}

echo "== truncated and re-extended"
truncate -s 0 "$tmpdir/s.img"
truncate -s 16M "$tmpdir/s.img"
refused truncated

echo "== replaced by another disk of the same size"
head -c 16M /dev/urandom > "$tmpdir/s.img"
refused replaced

echo "== restored: served again"
cp --sparse=always "$tmpdir/good.img" "$tmpdir/s.img"
start_shadow s src
qemu-img compare -f raw -F raw "$(uri s)" "$(uri src)"

echo "== a crash: writes after the last checkpoint, then SIGKILL"
nbdsh -u "$(uri s)" -c '
for i in range(64):
    h.pwrite(bytes([i + 1]) * 65536, i * 262144)'
stop_server s KILL
start_shadow s src
stop_server s
echo "== and the clean stop after it is checked again"
truncate -s 0 "$tmpdir/s.img"
truncate -s 16M "$tmpdir/s.img"
refused "truncated after a crash and a clean restart"
echo OK
