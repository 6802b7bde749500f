#!/usr/bin/env bash
# Time to full coverage of a disk over a unix socket: the shadowing
# engine's background copy (from nbdkit start to the last block local
# and synced) against nbdcopy to a file (also with --flush, which makes
# its copy durable too) and nbdkit's cache filter (cache-on-read, filled
# by nbdcopy), side by side on the same source; the engine also with its
# Redis mirror attached (a redis-server on a unix socket), with the
# mirror's round trips per GiB copied.
#
# The cases are interleaved round by round, so a noisy spell of the
# machine hits every peer alike; the ratio to nbdcopy is taken within
# each round and its median reported.
#
#   cd tests && bench/bench-engine-copy.sh [SIZE] [ROUNDS]  (default 1G 5)
#
# BASELINE_FILTER=/other/build/plugin/.libs/nbdkit-shadow-filter.so adds
# the engine cases again with that build of the filter (before and after
# a change, in the same rounds).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../redis-functions.sh"
requires nbdcopy --version

size=${1:-1G}
rounds=${2:-5}
head -c "$size" /dev/urandom > "$tmpdir/src.img"
start_server src file "$tmpdir/src.img"
start_redis r
src=$(uri src)
cat "$tmpdir/src.img" >/dev/null           # the same page cache for all

# Memory this virtual machine has not touched since it booted costs a
# fault on the host the first time (the slow outliers of every peer, up
# to 3x, were spent copying into fresh page-cache pages): touch enough of
# it once, by writing a file four times the size of the copies and
# removing it.
head -c "$size" /dev/zero > "$tmpdir/zero.img"
for _ in 1 2 3 4; do cat "$tmpdir/zero.img"; done > "$tmpdir/warm.img"
rm -f "$tmpdir/zero.img" "$tmpdir/warm.img"

now () { date +%s.%N; }

run_nbdcopy ()
{
    rm -f "$tmpdir/copy.img"
    t0=$(now); nbdcopy "$@" "$src" "$tmpdir/copy.img"; t1=$(now)
    cmp "$tmpdir/src.img" "$tmpdir/copy.img"
}

# The shadow filter with no client: the engine copies by itself.  The
# stats file is rewritten the moment the last block is local ("covered",
# t1) and again once that is durable and the source let go ("complete",
# t2).  It is polled with the shell's own read, and the poller waits by
# a read with a timeout on a pipe nobody writes: a sleep(1) every 5 ms
# would cost the machine about 0.3 CPU-seconds per second of copy, taken
# from the engine on two cores (nbdcopy runs with no poller beside it).
exec {nap_fd}<> <(:)
nap () { read -r -t "$1" -u "$nap_fd" _ || :; }

run_engine ()
{
    local stats= t2=
    rm -f "$tmpdir/sh.img" "$tmpdir/sh.state" "$tmpdir/sh.json" "$tmpdir/sh.sock"
    t0=$(now) t1=
    /usr/bin/nbdkit -f -U "$tmpdir/sh.sock" --filter="${engine_filter:-$FILTER}" nbd socket="$tmpdir/src.sock" \
        shadow-file="$tmpdir/sh.img" shadow-state="$tmpdir/sh.state" \
        shadow-stats="$tmpdir/sh.json" "$@" >"$tmpdir/sh.log" 2>&1 &
    pid=$!
    for _ in $(seq 60000); do
        [ -f "$tmpdir/sh.json" ] && read -r -d '' stats < "$tmpdir/sh.json" || :
        case $stats in
            *'"state": "covered"'*) t1=${t1:-$(now)} ;;
            *'"state": "complete"'*) t2=$(now); t1=${t1:-$t2}; break ;;
        esac
        nap 0.005
    done
    kill $pid; wait $pid || :
    cmp "$tmpdir/src.img" "$tmpdir/sh.img"
    echo "$t2 - $t0" | bc -l >> "$tmpdir/times.${i}d"     # i: the case
    case $stats in
        *redis_round_trips*) json_get "$tmpdir/sh.json" redis_round_trips >> "$tmpdir/trips" ;;
    esac
}

run_engine_baseline () { engine_filter="$BASELINE_FILTER" run_engine "$@"; }

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

names=("nbdcopy SRC shadow.img"
       "nbdcopy --flush SRC shadow.img"
       "shadow engine (defaults)"
       "shadow engine shadow-connections=2"
       "shadow engine + Redis mirror"
       "nbdkit cache filter + nbdcopy")
cases=("run_nbdcopy"
       "run_nbdcopy --flush"
       "run_engine"
       "run_engine shadow-connections=2"
       "run_engine shadow-redis=unix:$tmpdir/r.redis shadow-id=bench"
       "run_cache")
if [ -n "${BASELINE_FILTER:-}" ]; then
    names+=("shadow engine (defaults), baseline build"
            "shadow engine shadow-connections=2, baseline build")
    cases+=("run_engine_baseline" "run_engine_baseline shadow-connections=2")
fi

# times.I: case I's seconds, one line per round (times.Id: the engine's
# until durable); ratios.I: over nbdcopy's in the same round.
for r in $(seq "$rounds"); do
    for i in "${!cases[@]}"; do
        ${cases[$i]}
        echo "$t1 - $t0" | bc -l >> "$tmpdir/times.$i"
    done
done

median () { sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] }'; }
spread () { sort -n "$1" | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }'; }
row ()
{
    paste -d' ' "$tmpdir/times.0" "$tmpdir/$2" | awk '{ print $2 / $1 }' > "$tmpdir/ratios"
    printf "%-58s %8s %9s  %s\n" "$1" "$(median "$tmpdir/$2")" \
        "$(median "$tmpdir/ratios")" "$(spread "$tmpdir/ratios")"
}

printf "copy of %s over a unix socket, %s interleaved rounds\n" "$size" "$rounds"
printf "%-58s %8s %9s  %s\n" case seconds "x nbdcopy" "ratios within each round, sorted"
for i in "${!cases[@]}"; do
    case ${cases[$i]} in
        run_engine*)
            row "${names[$i]}: every block local" "times.$i"
            row "${names[$i]}: durable, source detached" "times.${i}d" ;;
        *)
            row "${names[$i]}" "times.$i" ;;
    esac
done
# The mirror's cost: the engine with Redis over the engine without, in
# the same round.
paste -d' ' "$tmpdir/times.2d" "$tmpdir/times.4d" | awk '{ print $2 / $1 }' > "$tmpdir/ratios"
printf "%-58s %8s %9s  %s\n" "shadow engine + Redis mirror / without, durable" "" \
    "$(median "$tmpdir/ratios")" "$(spread "$tmpdir/ratios")"
if [ -s "$tmpdir/trips" ]; then
    gib=$(echo "$(numfmt --from=iec "$size") / 1073741824" | bc -l)
    printf "Redis round trips per GiB copied (mirror batches and command reads): %s\n" \
        "$(sort -n "$tmpdir/trips" | awk -v g=$gib '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] / g }')"
fi
