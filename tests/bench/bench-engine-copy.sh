#!/usr/bin/env bash
# Time to full coverage of a disk over a unix socket: the shadowing
# engine's background copy (from nbdkit start to the last block local)
# against nbdcopy to a file (also with --flush: the shadow is durable,
# its checkpoints sync the data once a second) and nbdkit's cache filter
# (cache-on-read, filled by nbdcopy), side by side on the same source.
#
#   cd tests && bench/bench-engine-copy.sh [SIZE] [RUNS]    (default 1G 3)
source "$(dirname "$0")/../functions.sh"
requires nbdcopy --version

size=${1:-1G}
runs=${2:-3}
head -c "$size" /dev/urandom > "$tmpdir/src.img"
start_server src file "$tmpdir/src.img"
src=$(uri src)
cat "$tmpdir/src.img" >/dev/null           # the same page cache for all

now () { date +%s.%N; }

run_nbdcopy ()
{
    rm -f "$tmpdir/copy.img"
    t0=$(now); nbdcopy "$@" "$src" "$tmpdir/copy.img"; t1=$(now)
    cmp "$tmpdir/src.img" "$tmpdir/copy.img"
}

# The shadow filter with no client: the engine copies by itself.  The
# stats file is rewritten the moment the last block arrives.
run_engine ()
{
    rm -f "$tmpdir/sh.img" "$tmpdir/sh.state" "$tmpdir/sh.json" "$tmpdir/sh.sock"
    t0=$(now)
    /usr/bin/nbdkit -f -U "$tmpdir/sh.sock" --filter="$FILTER" nbd socket="$tmpdir/src.sock" \
        shadow-file="$tmpdir/sh.img" shadow-state="$tmpdir/sh.state" \
        shadow-stats="$tmpdir/sh.json" "$@" >"$tmpdir/sh.log" 2>&1 &
    pid=$!
    for _ in $(seq 30000); do
        grep -q '"state": "complete"' "$tmpdir/sh.json" 2>/dev/null && break
        sleep 0.01
    done
    t1=$(now)
    kill $pid; wait $pid || :
    cmp "$tmpdir/src.img" "$tmpdir/sh.img"
}

run_cache ()
{
    rm -rf "$tmpdir/cache"; mkdir "$tmpdir/cache"
    TMPDIR="$tmpdir/cache" /usr/bin/nbdkit -f -U "$tmpdir/c.sock" --filter=cache \
        nbd socket="$tmpdir/src.sock" cache-on-read=true >"$tmpdir/c.log" 2>&1 &
    pid=$!
    until [ -S "$tmpdir/c.sock" ]; do sleep 0.01; done
    t0=$(now); nbdcopy "nbd+unix:///?socket=$tmpdir/c.sock" null:; t1=$(now)
    kill $pid; wait $pid || :
    rm -f "$tmpdir/c.sock"
}

# median of the runs, in seconds
measure ()
{
    for _ in $(seq "$runs"); do
        "$@"
        echo "$t1 - $t0" | bc -l
    done | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] }'
}

base=$(measure run_nbdcopy)
printf "%-44s %8s %8s\n" "copy of $size over a unix socket" "seconds" "x nbdcopy"
row () { printf "%-44s %8s %8.2f\n" "$1" "$2" "$(echo "$2 / $base" | bc -l)"; }
row "nbdcopy SRC shadow.img" "$base"
row "nbdcopy --flush SRC shadow.img" "$(measure run_nbdcopy --flush)"
row "shadow engine (defaults)" "$(measure run_engine)"
row "shadow engine shadow-connections=1" "$(measure run_engine shadow-connections=1)"
row "shadow engine shadow-connections=4" "$(measure run_engine shadow-connections=4)"
row "nbdkit cache filter + nbdcopy" "$(measure run_cache)"
