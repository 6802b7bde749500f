#!/bin/sh -
# nbdshadow migrate: bad input refused with one line; a migration watched
# to the end (one line a second off a terminal) leaves nbdkit serving the
# complete disk; --detach hands out the URI at once; Ctrl-C (SIGINT to
# the whole process group, as a terminal sends it) stops the watching,
# not the copy; an ID with a state file resumes.
. ./functions.sh

NBDSHADOW_FILTER="$FILTER"
export NBDSHADOW_FILTER

# expect_fail MESSAGE ARGS...: migrate refuses with MESSAGE in one line.
expect_fail ()
{
    msg="$1"; shift
    if "$NBDSHADOW" migrate "$@" > "$tmpdir/out" 2> "$tmpdir/err"; then
        echo "$0: accepted: $*"; exit 1
    fi
    if ! grep -qF -- "$msg" "$tmpdir/err" || [ "$(wc -l < "$tmpdir/err")" -ne 1 ]; then
        echo "$0: $*: expected one line \"$msg\", got:"; cat "$tmpdir/err"; exit 1
    fi
}

# track NAME DIR: the nbdkit of volume NAME, started by migrate, is
# killed when the test ends; sets $pid_NAME.
track ()
{
    local p
    p=$(cat "$2/$1.pid")
    eval "pid_$1=$p"
    _pids="$p $_pids"
}

# A source that takes a few seconds to copy: 12M at 2 MB/s.
head -c $((12 << 20)) /dev/urandom > "$tmpdir/source.img"
start_server src -r --filter=rate file "$tmpdir/source.img" rate=16M
src="$(uri src)"
# The same disk at full speed, to verify against.
start_server fast -r file "$tmpdir/source.img"

d="$tmpdir/vols"
expect_fail '--id: expected 1 to 64 of' --source "$src" --id 'vm/1' --dir "$d"
expect_fail '--source: expected an NBD URI' --source /dev/sda --id vm1 --dir "$d"
expect_fail '--model and --history exclude each other' --source "$src" \
    --id vm1 --dir "$d" --model m --history h
expect_fail '--bandwidth: expected bytes per second' --source "$src" \
    --id vm1 --dir "$d" --bandwidth fast
expect_fail '--listen: expected unix:PATH or HOST:PORT' --source "$src" \
    --id vm1 --dir "$d" --listen localhost
expect_fail '--history nothere.csv: No such file' --source "$src" \
    --id vm1 --dir "$d" --history nothere.csv
expect_fail 'migrate: --source, --id and --dir are required' --id vm1 --dir "$d"
# nbdkit's own refusal, in one line (the source is not there).
expect_fail 'nbdkit did not start: ' --source "nbd+unix:///?socket=$tmpdir/none.sock" \
    --id bad --dir "$d"
test ! -e "$d/bad.pid"

# Watched to the end, not on a terminal: one line a second.
"$NBDSHADOW" migrate --source "$src" --id vm1 --dir "$d" > "$tmpdir/out" \
    2> "$tmpdir/err"
cat "$tmpdir/err" "$tmpdir/out"
track vm1 "$d"
grep -q "^migrating vm1: the VM's disk is nbd+unix:///?socket=$d/vm1.sock" "$tmpdir/err"
test "$(grep -c '^vm1 copying ' "$tmpdir/out")" -ge 2
grep -q '^vm1 complete 100.0% 192/192 blocks' "$tmpdir/out"
grep -q "^complete: the disk of vm1 now lives in $d/vm1.img, served at nbd+unix:///?socket=$d/vm1.sock" \
    "$tmpdir/out"
# nbdkit outlives the command and serves the disk; the files are private.
kill -0 $pid_vm1
"$NBDSHADOW" verify --source "$(uri fast)" --uri "nbd+unix:///?socket=$d/vm1.sock"
test "$(stat -c %a "$d")" = 700
for f in img state pid log json csv; do test "$(stat -c %a "$d/vm1.$f")" = 600; done
expect_fail 'migration vm1 is already running (nbdkit pid' --source "$src" \
    --id vm1 --dir "$d"

# --detach: the URI at once, while the copy goes on.
"$NBDSHADOW" migrate --source "$src" --id vm2 --dir "$d" --detach \
    > "$tmpdir/out"
track vm2 "$d"
test "$(cat "$tmpdir/out")" = "nbd+unix:///?socket=$d/vm2.sock"
sleep 1.2
test "$(json_get "$d/vm2.json" state)" = copying
qemu-io -r -f raw -c 'read 0 64k' "nbd+unix:///?socket=$d/vm2.sock" | grep -q 'read 65536/65536'

# Ctrl-C: the terminal signals migrate's whole process group.
stop_server vm2
setsid "$NBDSHADOW" migrate --source "$src" --id vm2 --dir "$d" --json \
    > "$tmpdir/out.json" 2> "$tmpdir/err" &
job=$!
for _ in $(seq 100); do grep -q '"event": "progress"\|"coverage"' "$tmpdir/out.json" && break; sleep 0.1; done
pgid=$(ps -o pgid= $job | tr -d ' ')
kill -INT -- -"$pgid"
wait $job
track vm2 "$d"
grep -q '"event": "serving".*"resumed": true' "$tmpdir/out.json"
grep -q '^stopped watching; the migration goes on (nbdkit pid' "$tmpdir/err"
! grep -q '"event": "complete"' "$tmpdir/out.json"
before=$(json_get "$d/vm2.json" blocks_present)
sleep 1.5
kill -0 $pid_vm2
test "$(json_get "$d/vm2.json" blocks_present)" -gt "$before"
wait_json "$d/vm2.json" state complete

# Resume a stopped migration to the end.
stop_server vm2
"$NBDSHADOW" migrate --source "$src" --id vm2 --dir "$d" --json > "$tmpdir/out.json"
track vm2 "$d"
grep -q '"event": "serving".*"resumed": true' "$tmpdir/out.json"
grep -q '"event": "complete", "shadow_file": "'"$d"'/vm2.img"' "$tmpdir/out.json"
"$NBDSHADOW" verify --source "$(uri fast)" --shadow "$d/vm2.img"
