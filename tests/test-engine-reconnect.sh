#!/usr/bin/env bash
# The source dies in the middle of the copy.  The engine keeps trying to
# reconnect; a guest read of a block that is not local fails with EIO
# after shadow-timeout instead of hanging; when the source comes back
# the copy resumes and completes, equal to the source.
source ./functions.sh
requires nbdsh --version

size=$((32 * 1024 * 1024))
head -c $size /dev/urandom > "$tmpdir/src.img"
# About 8 s for the whole copy (the rate filter lets the first 2 s of
# its rate through at once): time enough to kill the source mid-way.
source_args="--filter=rate file $tmpdir/src.img rate=24M"
start_server src $source_args
start_shadow sh src shadow-timeout=2

for _ in $(seq 300); do
    n=$(json_get "$tmpdir/sh.json" blocks_present 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 150 ] && break
    sleep 0.1
done
stop_server src KILL
wait_json "$tmpdir/sh.json" source disconnected 10
present=$(json_get "$tmpdir/sh.json" blocks_present)
echo "source killed with $present of 512 blocks local"
test "$present" -lt 512

# Block 500 is not local yet (the copy goes in ascending order; it is
# not one of the fingerprint's samples, made local at start): reading
# it waits for the source, then fails after about 2 s.
late=$((500 * 65536))
start=$SECONDS
if nbdsh -u "$(uri sh)" -c "h.pread(65536, $late)" 2>"$tmpdir/read.err"; then
    echo "$0: a read from a dead source succeeded"; exit 1
fi
elapsed=$((SECONDS - start))
echo "demand read failed after ${elapsed}s: $(tail -1 "$tmpdir/read.err")"
test $elapsed -le 10
grep -q 'no answer from the source within 2000 ms' "$tmpdir/sh.log"

# The source returns: the copy completes by itself.
start_server src $source_args
wait_json "$tmpdir/sh.json" state complete 60
wait_json "$tmpdir/sh.json" source detached 10
test "$(json_get "$tmpdir/sh.json" reconnects)" -ge 1
cmp "$tmpdir/src.img" "$tmpdir/sh.img"
nbdsh -u "$(uri sh)" -c "assert h.pread(65536, $late) == open('$tmpdir/src.img', 'rb').read()[$late:$late + 65536]"
