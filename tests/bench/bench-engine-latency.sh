#!/usr/bin/env bash
# Demand-fetch latency while the engine pulls at full speed from a slow
# source: nbdkit's delay filter (rdelay=10ms) over its rate filter
# (100 Mbit/s).  A guest reads random 4K pieces of blocks not local yet
# (one demand fetch each); we report latency percentiles against the goal
# p99 <= 2 x (delay + one 64K block's transfer time), side by side with:
#   - demand only (shadow-policy=none): the floor, nothing else on the link;
#   - demand only while nbdcopy copies the same source unpaced (what a
#     background copier without pacing does to the guest).
#
#   cd tests && [BURSTINESS=SECS] bench/bench-engine-latency.sh [READS]
#                                                      (default 200 reads)
source "$(dirname "$0")/../functions.sh"
requires nbdcopy --version
requires /usr/bin/python3 -c 'import nbd'

reads=${1:-200}
delay_ms=10
rate_bits=100000000
size=512M
head -c $size /dev/urandom > "$tmpdir/src.img"
# BURSTINESS=SECS: the rate filter's bucket (nbdkit's default, 2 s, lets
# that much of the rate through at once after an idle spell; a link that
# serializes is about BURSTINESS=0.001).
start_server src -t 64 --filter=delay --filter=rate file "$tmpdir/src.img" \
    rdelay=${delay_ms}ms rate=$rate_bits ${BURSTINESS:+burstiness=$BURSTINESS}

cat > "$tmpdir/reader.py" <<'PY'
# Random 4K reads, one per absent block of the upper half, 50 ms apart.
import nbd, random, sys, time
uri, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
h = nbd.NBD(); h.connect_uri(uri)
size = h.get_size(); block = 65536
rng = random.Random(1)
blocks = rng.sample(range(size // block // 2, size // block), n)
lat = []
for b in blocks:
    t0 = time.monotonic()
    h.pread(4096, b * block + rng.randrange(0, block - 4096, 512))
    lat.append((time.monotonic() - t0) * 1000)
    time.sleep(0.05)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
with open(out, "w") as f:
    f.write("%.1f %.1f %.1f %.1f\n" % (pct(50), pct(90), pct(99), lat[-1]))
PY

# measure NAME FILTER-PARAMS...: the reader against a fresh shadow.
measure ()
{
    local name=$1; shift
    rm -f "$tmpdir/$name".*
    start_shadow "$name" src "$@"
    p0=$(json_get "$tmpdir/$name.json" bytes_pulled 2>/dev/null || echo 0)
    t0=$(date +%s.%N)
    /usr/bin/python3 "$tmpdir/reader.py" "$(uri "$name")" "$reads" "$tmpdir/$name.lat"
    t1=$(date +%s.%N)
    sleep 1.1        # the stats file is rewritten every second
    p1=$(json_get "$tmpdir/$name.json" bytes_pulled)
    pulled=$(echo "(${p1:-0} - ${p0:-0}) / ($t1 - $t0) / 1000000" | bc -l)
    window=$(json_get "$tmpdir/$name.json" pull_window)
    stop_server "$name"
}

goal=$(echo "2 * ($delay_ms + 65536 * 8 * 1000 / $rate_bits)" | bc -l)
printf "demand latency (ms), %s reads; goal p99 <= %.1f\n" "$reads" "$goal"
printf "%-46s %6s %6s %6s %6s %10s\n" case p50 p90 p99 max "pull MB/s"
row () { printf "%-46s %6s %6s %6s %6s %10.2f\n" "$1" $(cat "$tmpdir/$2.lat") "$3"; }

measure idle shadow-policy=none
row "demand only (shadow-policy=none)" idle 0

measure engine
row "engine pulling (defaults, window ~$((window / 1024))K)" engine "$pulled"

nbdcopy "$(uri src)" null: &
copier=$!
measure flood shadow-policy=none
kill $copier 2>/dev/null || :
wait $copier 2>/dev/null || :
row "demand only + unpaced nbdcopy on the source" flood 0
