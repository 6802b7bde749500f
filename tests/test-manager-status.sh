#!/bin/sh -
# nbdshadow status from Redis (a real redis-server on a unix socket):
# it follows a live migration (coverage rises, the ETA falls), shows a
# fleet of three concurrent migrations as three rows, refuses an unknown
# volume in one line, and --watch ends when every volume is complete.
. ./functions.sh
. ./redis-functions.sh

# The filter's Redis mirror (shadow-redis=) is needed.
requires grep -q shadow-redis-password-file "$FILTER"

NBDSHADOW_FILTER="$FILTER"
NBDSHADOW_REDIS="unix:$tmpdir/r.redis"
export NBDSHADOW_FILTER NBDSHADOW_REDIS
start_redis r

# Three sources of 12M, each behind a 1.5 MB/s link: about 8 s of copying.
for v in vm1 vm2 vm3; do
    head -c $((12 << 20)) /dev/urandom > "$tmpdir/$v.src"
    start_server "src$v" -r --filter=rate file "$tmpdir/$v.src" rate=12M
done
jobs=""
for v in vm1 vm2 vm3; do
    "$NBDSHADOW" migrate --source "$(uri "src$v")" --id "$v" \
        --dir "$tmpdir/vols" --detach > /dev/null &
    jobs="$jobs $!"
done
for j in $jobs; do wait $j; done
for v in vm1 vm2 vm3; do
    p=$(cat "$tmpdir/vols/$v.pid"); _pids="$p $_pids"
done

# The fleet: one row per volume, in the table and as JSON.
"$NBDSHADOW" status > "$tmpdir/fleet"
cat "$tmpdir/fleet"
head -1 "$tmpdir/fleet" | grep -q '^ID  *STATE  *COVERAGE  *BLOCKS  *RATE  *STALLS  *ETA  *PAUSED  *LIMIT$'
test "$(grep -c '^vm[123]  *copying ' "$tmpdir/fleet")" -eq 3
"$NBDSHADOW" status --json > "$tmpdir/fleet.json"
test "$(grep -c '^{"id": "vm[123]", ' "$tmpdir/fleet.json")" -eq 3

# One volume, read again and again to the end of its
# copy.
: > "$tmpdir/vm3.jsonl"
for _ in $(seq 40); do
    "$NBDSHADOW" status vm3 --json >> "$tmpdir/vm3.jsonl"
    tail -1 "$tmpdir/vm3.jsonl" | grep -q '"state": "copying"' || break
    sleep 0.5
done
cat "$tmpdir/vm3.jsonl"
grep '"state": "copying"' "$tmpdir/vm3.jsonl" | grep -v '"eta_s": null' > "$tmpdir/copying"
head -1 "$tmpdir/copying" > "$tmpdir/first"
tail -1 "$tmpdir/copying" > "$tmpdir/last"
test "$(json_get "$tmpdir/first" id)" = vm3
test "$(json_get "$tmpdir/first" blocks_total)" = 192
# Coverage rises; the ETA falls (from its highest: the link's first
# burst makes the very first estimate short).
awk -v a="$(json_get "$tmpdir/first" coverage)" -v b="$(json_get "$tmpdir/last" coverage)" \
    'BEGIN { exit !(b > a && a > 0 && b < 1) }'
max_eta=$(sed 's/.*"eta_s": \([0-9]*\).*/\1/' "$tmpdir/copying" | sort -n | tail -1)
test "$(json_get "$tmpdir/last" eta_s)" -lt "$max_eta"
test "$(json_get "$tmpdir/last" paused)" = false
test "$(json_get "$tmpdir/last" bandwidth_limit)" = 0

# Unknown volume: one line, exit 1.
if "$NBDSHADOW" status vm9 2> "$tmpdir/err"; then exit 1; fi
grep -q '^nbdshadow: volume vm9 is not known to Redis' "$tmpdir/err"
test "$(wc -l < "$tmpdir/err")" -eq 1

# --watch returns once all three are complete.
timeout 60 "$NBDSHADOW" status --watch --json > "$tmpdir/watch.json"
test "$(tail -3 "$tmpdir/watch.json" | grep -c '"state": "complete"')" -eq 3
