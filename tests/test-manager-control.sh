#!/bin/sh -
# nbdshadow pause, resume, throttle and finalize against a live migration
# through a real redis-server: pause holds the background copy for 3 s
# while the guest's demand reads are still served (and right); resume
# goes on; throttle bounds the measured pull rate within 20 %; finalize
# --wait returns complete, after which the source can die and the disk
# reads the same.  An unknown volume, a bad rate and a filter that does
# not answer each get one line and exit 1.
. ./functions.sh
. ./redis-functions.sh

# The filter's Redis command stream (shadow-redis=) is needed.
requires grep -q shadow-redis-password-file "$FILTER"
requires qemu-io --version

NBDSHADOW_FILTER="$FILTER"
NBDSHADOW_REDIS="unix:$tmpdir/r.redis"
export NBDSHADOW_FILTER NBDSHADOW_REDIS
start_redis r

# expect_fail MESSAGE ARGS...: one line with MESSAGE, exit 1.
expect_fail ()
{
    msg="$1"; shift
    if "$NBDSHADOW" "$@" > /dev/null 2> "$tmpdir/err"; then
        echo "$0: accepted: $*"; exit 1
    fi
    if ! grep -qF -- "$msg" "$tmpdir/err" || [ "$(wc -l < "$tmpdir/err")" -ne 1 ]; then
        echo "$0: $*: expected one line \"$msg\", got:"; cat "$tmpdir/err"; exit 1
    fi
}

# 48M behind a 10 MB/s link; the same file at full speed to compare with.
head -c $((48 << 20)) /dev/urandom > "$tmpdir/src.img"
start_server src -r --filter=rate file "$tmpdir/src.img" rate=80M
start_server fast -r file "$tmpdir/src.img"
"$NBDSHADOW" migrate --source "$(uri src)" --id vm1 --dir "$tmpdir/vols" \
    --detach > "$tmpdir/uri"
pid_vm1=$(cat "$tmpdir/vols/vm1.pid"); _pids="$pid_vm1 $_pids"
export_uri="$(cat "$tmpdir/uri")"
"$NBDSHADOW" pause vm1 | grep -qx 'pause vm1: done'

# progress FIELD: from the mirror in Redis.
progress () { rcli r HGET 'nbdshadow:{vm1}:progress' "$1"; }
# same_bytes OFFSET: the guest reads 4K at OFFSET from the shadow export
# and gets the source's bytes.
same_bytes ()
{
    qemu-io -r -f raw -c "read -v $1 4k" "$export_uri" | grep '^[0-9a-f]*:' > "$tmpdir/a"
    qemu-io -r -f raw -c "read -v $1 4k" "$(uri fast)" | grep '^[0-9a-f]*:' > "$tmpdir/b"
    test -s "$tmpdir/a" && cmp -s "$tmpdir/a" "$tmpdir/b"
}

# Paused: for 3 s nothing is pulled in the background; three demand
# reads of blocks not copied yet are served and make exactly those
# blocks local.
sleep 1.2               # pulls in flight finish, the mirror catches up
test "$(progress paused)" = 1
pulled0=$(progress bytes_pulled); present0=$(progress blocks_present)
"$NBDSHADOW" status vm1 --json | grep -q '"paused": true'
for off in $((40 << 20)) $((44 << 20)) $((47 << 20)); do
    same_bytes $off
    sleep 1
done
sleep 1.1
test "$(progress bytes_pulled)" = "$pulled0"
test "$(progress blocks_present)" -eq $((present0 + 3))
test "$(progress bytes_fetched)" -eq $((3 * 65536))

# Throttled to 1 MiB/s and resumed: the pull rate over 4 s, measured
# from the mirror's own timestamps.
"$NBDSHADOW" throttle vm1 1M > /dev/null
"$NBDSHADOW" resume vm1 > /dev/null
sleep 1.5
test "$(progress paused)" = 0
test "$(progress bandwidth_limit)" = 1048576
read -r b0 t0 <<< "$(pulled_at r vm1)"
test "$b0" -gt "$pulled0"       # resumed: the copy goes on
sleep 4
read -r b1 t1 <<< "$(pulled_at r vm1)"
rate=$(( (b1 - b0) * 1000000 / (t1 - t0) ))
echo "throttled to 1048576 bytes/s: pulled at $rate bytes/s"
test $rate -ge $((1048576 * 8 / 10))
test $rate -le $((1048576 * 12 / 10))

# Finalize: complete at full speed, then the source can go.
timeout 60 "$NBDSHADOW" finalize vm1 --wait > "$tmpdir/out"
tail -1 "$tmpdir/out" | grep -qx 'vm1 is complete: the source is detached and may go away'
test "$(rcli r HGET 'nbdshadow:{vm1}:info' state)" = complete
stop_server src
"$NBDSHADOW" verify --source "$(uri fast)" --uri "$export_uri"

# Refusals.
expect_fail 'volume vm9 is not known to redis' pause vm9
expect_fail 'throttle: expected a RATE in bytes/s like 20M, got "fast"' throttle vm1 fast
expect_fail 'expected a volume id' resume 'a b'
# A volume whose filter is gone: the command waits for it, one line.
stop_server vm1
expect_fail 'pause vm1: no acknowledgement from the filter within 1 s' \
    pause vm1 --timeout 1
