#!/usr/bin/env bash
# Benchmark (on demand, not part of make check): what background pulls
# cost a guest's demand reads, on three links, against the same link
# with nothing else on it, in the same run.
#
# Source: nbdkit's pattern plugin (-t 64), over a unix socket as it is,
# or behind --filter=delay --filter=rate (rdelay per read, rate in
# bits/s, the rate filter's bucket BURSTINESS seconds).  Per link:
#   idle     shadow-policy=none: demand reads only, the floor;
#   pulling  shadow-policy=sequential: first UTIL_SECS with no guest
#            reads, which gives the link's use by the pulls alone (MB/s,
#            and % of the rate), then the same demand reads.
# The guest reads READS random 4K pieces of distinct blocks of the
# upper half (not pulled yet during the run), one at a time, each
# between 0.5 and 1.5 x 10 rdelay after the last answer (the same
# seeded gaps in both cases: a fixed gap meets pulls sent at a steady
# pace always in the same phase, and the result then depends on it); latency p50, p99 and mean, and pulling / idle.  Also against
# "floor": rdelay + one block's transfer at the rate, what an idle link
# costs a demand fetch.  The rate filter's bucket lets an idle spell's
# tokens through at once: unless BURSTINESS holds less than a block
# (and then the filter loses tokens, serving big requests at a fraction
# of the rate), an idle-link read there pays for no transfer at all.
#
# LINK_MODEL=tbf (as root): an honest FIFO link instead of the rate
# filter.  The script re-runs itself in a private network namespace
# (unshare -n), where lo (MTU 1500) gets a tbf qdisc of the link's rate
# (a bucket of 1 ms of it, at least two packets; up to 100 ms queued)
# for what the source sends (TCP source port 10809: an htb class and a
# u32 filter), as on a full-duplex link the requests and TCP's acks
# going the other way do not queue behind the replies;
# LINK_MODEL=tbf-shared shapes both ways in the one queue instead (a
# request then waits behind the replies queued).  The source serves on
# TCP 127.0.0.1 behind --filter=delay alone, the shadow reaches it
# there, and the guest reaches the shadow over a unix socket.  Every
# byte the pulls send then sits ahead of a demand reply in one queue,
# and an idle-link read pays its block's transfer.  Rates count TCP/IP
# headers (about 4 % at MTU 1500): the pulls' MB/s is the data.
#
#   cd tests && /work/bin/quiet bench/bench-demand-latency.sh
#   READS=200 LINKS="unix 1G:1ms 100M:5ms" BURSTINESS=0.01 \
#       SHADOW_PARAMS="shadow-inflight=64" bench/bench-demand-latency.sh
#   LINK_MODEL=tbf LINKS="100M:5ms" bench/bench-demand-latency.sh
# SHADOW_FILTER=path/to/nbdkit-shadow-filter.so: measure that build.
link_model=${LINK_MODEL:-rate}
if [ "${link_model#tbf}" != "$link_model" ] && [ -z "${BENCH_IN_NETNS:-}" ]; then
    exec env BENCH_IN_NETNS=1 unshare -n "$0" "$@"
fi
source "$(dirname "$0")/../functions.sh"
FILTER=${SHADOW_FILTER:-$FILTER}
requires /usr/bin/python3 -c 'import nbd'

reads=${READS:-200}
links=${LINKS:-"unix 1G:1ms 100M:5ms"}
burstiness=${BURSTINESS:-0.01}
util_secs=${UTIL_SECS:-4}
case $link_model in
    rate) ;;
    tbf|tbf-shared)
        requires tc -V
        ip link set lo up
        ip link set lo mtu 1500
        ;;
    *) echo "$0: LINK_MODEL must be rate, tbf or tbf-shared"; exit 1 ;;
esac
port=10809                      # in the private namespace: nothing else there

cat > "$tmpdir/reader.py" <<'PY'
# READS random 4K reads, one per block of the upper half, gaps of
# 0.5-1.5 x GAP_MS.
import nbd, random, sys, time
uri, n, gap, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
h = nbd.NBD(); h.connect_uri(uri)
size = h.get_size(); block = 65536
rng = random.Random(1)
blocks = rng.sample(range(size // block // 2, size // block), n + 1)
h.pread(4096, blocks.pop() * block)     # the first one also waits for the mapping
lat = []
for b in blocks:
    t0 = time.monotonic()
    h.pread(4096, b * block + rng.randrange(0, block - 4096, 512))
    lat.append((time.monotonic() - t0) * 1000)
    time.sleep(gap * rng.uniform(0.5, 1.5) / 1000)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
with open(out, "w") as f:
    f.write("%.2f %.2f %.2f\n" % (pct(50), pct(99), sum(lat) / len(lat)))
PY

# stat NAME KEY: a field of the shadow's stats file.
stat () { json_get "$tmpdir/$1.json" "$2"; }

# sample NAME: "TIME BYTES_PULLED" from the next rewrite of its stats
# file (once a second), TIME being when it was written.
sample ()
{
    local f="$tmpdir/$1.json" m
    m=$(date -r "$f" +%s.%N)
    while [ "$(date -r "$f" +%s.%N)" = "$m" ]; do sleep 0.05; done
    echo "$(date -r "$f" +%s.%N) $(stat "$1" bytes_pulled)"
}

printf "demand latency (ms), %s reads of 4K one at a time; link model %s%s\n" \
    "$reads" "$link_model" "$([ $link_model = rate ] && echo ", burstiness $burstiness s")"
printf "%-10s %7s %7s %7s  %7s %7s %7s  %6s %6s  %6s %6s %6s  %8s %6s %8s\n" link \
    "idle50" "idle99" "idlemn" "pull50" "pull99" "pullmn" "x p50" "x mean" \
    "floor" "f p50" "f mean" "pull MB/s" "use %" "window K"
for link in $links; do
    l=${link//[:.]/_}
    if [ "$link" = unix ]; then
        size=16G gap=5 bits=0 warm=0.5 secs=2 floor=0
        start_server "src_$l" -t 64 pattern $size
    else
        rate=${link%%:*} delay=${link#*:}
        bits=$(numfmt --from=si "$rate")
        # Big enough that the sweep stays in the lower half for the run.
        size=$(( bits / 8 * 40 / 1024 / 1024 / 1024 + 1 ))G
        gap=$(( ${delay%ms} * 10 )) warm=2 secs=$util_secs
        floor=$(echo "${delay%ms} + 65536 * 8 * 1000 / $bits" | bc -l)
        if [ $link_model != rate ]; then
            burst=$(( bits / 8 / 1000 ))
            [ $burst -ge 3028 ] || burst=3028
            shaper="tbf rate ${bits}bit burst $burst latency 100ms"
            tc qdisc del dev lo root 2>/dev/null || :
            if [ $link_model = tbf-shared ]; then
                tc qdisc add dev lo root $shaper
            else
                tc qdisc add dev lo root handle 1: htb default 2 r2q 100000
                tc class add dev lo parent 1: classid 1:1 htb rate 100gbit burst 1m cburst 1m
                tc class add dev lo parent 1: classid 1:2 htb rate 100gbit burst 1m cburst 1m
                tc qdisc add dev lo parent 1:1 $shaper
                tc filter add dev lo parent 1: protocol ip prio 1 u32 \
                    match ip sport $port 0xffff flowid 1:1
            fi
            TCP_PORT=$port start_server "src_$l" -t 64 --filter=delay pattern $size rdelay=$delay
        else
            start_server "src_$l" -t 64 --filter=delay --filter=rate \
                pattern $size rdelay=$delay rate=$bits burstiness=$burstiness
        fi
    fi
    for c in idle pulling; do
        n=${c}_$l
        policy=none
        [ $c = pulling ] && policy=sequential
        source_addr=
        [ $link_model != rate ] && [ "$link" != unix ] &&
            source_addr="hostname=127.0.0.1 port=$port"
        shadow_source=$source_addr start_shadow "$n" "src_$l" \
            shadow-policy=$policy ${SHADOW_PARAMS:-}
        if [ $c = pulling ]; then
            wait_json "$tmpdir/$n.json" state copying
            sleep $warm                 # the pacer's start
            read -r t0 p0 < <(sample "$n")
            sleep "$secs"
            read -r t1 p1 < <(sample "$n")
            mbs=$(echo "($p1 - $p0) / ($t1 - $t0) / 1000000" | bc -l)
            use=-
            [ "$bits" -gt 0 ] && use=$(printf "%.1f" "$(echo "$mbs * 800000000 / $bits" | bc -l)")
            window=$(( $(stat "$n" pull_window) / 1024 ))
        fi
        /usr/bin/python3 "$tmpdir/reader.py" "$(uri "$n")" "$reads" "$gap" \
            "$tmpdir/$c.lat"
        stop_server "$n"
    done
    stop_server "src_$l"
    read -r i50 i99 imn < "$tmpdir/idle.lat"
    read -r p50 p99 pmn < "$tmpdir/pulling.lat"
    fp50=- fmn=-
    if [ "$bits" -gt 0 ]; then
        fp50=$(printf "%.2f" "$(echo "$p50 / $floor" | bc -l)")
        fmn=$(printf "%.2f" "$(echo "$pmn / $floor" | bc -l)")
    fi
    printf "%-10s %7s %7s %7s  %7s %7s %7s  %6.2f %6.2f  %6.2f %6s %6s  %8.2f %6s %8s\n" \
        "$link" "$i50" "$i99" "$imn" "$p50" "$p99" "$pmn" \
        "$(echo "$p50 / $i50" | bc -l)" "$(echo "$pmn / $imn" | bc -l)" \
        "$floor" "$fp50" "$fmn" "$mbs" "$use" "$window"
done
