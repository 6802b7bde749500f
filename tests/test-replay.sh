#!/usr/bin/env bash
# nbdshadow replay against real nbdkit servers: counts, the image it
# leaves (timed replay = --speed 0 replay; the write pattern itself),
# latency and duration against delayed exports, open-loop issuing, the
# ordering --speed 0 keeps, and one-line errors.
source ./functions.sh
requires nbdcopy --version

# json FILE KEY
json () { json_get "$1" "$2"; }
# check DESCRIPTION AWK-CONDITION: fail with DESCRIPTION unless it holds.
check ()
{
    if ! awk "BEGIN { exit !($2) }"; then
        echo "$0: $1 ($2)"; exit 1
    fi
}

# A mix of every op, 300 requests 3.3 ms apart (~1 s).  Request i goes to
# band i % 7 (8M each) so that requests close in time never overlap (the
# image does not depend on the server's ordering), while requests far apart
# do (trims and zeroes over earlier writes, and the reverse).  Every 7th
# write is unaligned.  Then fixed requests at 60M to check by hand: a
# write (word at 60M+8), a write zeroed again, an unaligned write.
awk 'BEGIN {
    srand(7); ops = "RRRRWWWTZF"
    print "ts_us,op,offset,length"
    for (i = 0; i < 300; i++) {
        op = substr(ops, int(rand() * 10) + 1, 1)
        off = (i % 7) * 8388608 + int(rand() * 2000) * 4096
        len = (int(rand() * 16) + 1) * 4096
        if (op == "W" && i % 7 == 0) { off += 3; len -= 5 }
        if (op == "F") { off = 0; len = 0 }
        print i * 3333 "," op "," off "," len
    }
    print "1000000,W,62914560,4096"
    print "1010000,W,63963136,4096"
    print "1020000,Z,63963136,4096"
    print "1030000,W,65011715,10"
}' > "$tmpdir/mix.csv"
n_ops () { awk -F, -v op="$1" 'NR > 1 && $2 == op' "$tmpdir/mix.csv" | wc -l; }

start_server a memory 64M
start_server b memory 64M
"$NBDSHADOW" replay --trace "$tmpdir/mix.csv" --uri "$(uri a)" --json \
    > "$tmpdir/a.json"
cat "$tmpdir/a.json"
test "$(json "$tmpdir/a.json" requests)" -eq 304
test "$(json "$tmpdir/a.json" reads)" -eq "$(n_ops R)"
test "$(json "$tmpdir/a.json" writes)" -eq "$(n_ops W)"
test "$(json "$tmpdir/a.json" trims)" -eq "$(n_ops T)"
test "$(json "$tmpdir/a.json" zeroes)" -eq "$(n_ops Z)"
test "$(json "$tmpdir/a.json" flushes)" -eq "$(n_ops F)"
test "$(json "$tmpdir/a.json" skipped)" -eq 0
test "$(json "$tmpdir/a.json" errors)" -eq 0
test "$(json "$tmpdir/a.json" export_size)" -eq 67108864
check "a timed replay lasts the trace's span" \
    "$(json "$tmpdir/a.json" duration_seconds) >= 1.03"

# The expected image: the same trace as fast as possible on a fresh copy.
"$NBDSHADOW" replay --trace "$tmpdir/mix.csv" --uri "$(uri b)" --speed 0 \
    --json > "$tmpdir/b.json"
test "$(json "$tmpdir/b.json" errors)" -eq 0
test "$(json "$tmpdir/b.json" lateness_max_ms)" = null
nbdcopy "$(uri a)" "$tmpdir/a.img"
nbdcopy "$(uri b)" "$tmpdir/b.img"
cmp "$tmpdir/a.img" "$tmpdir/b.img"

# The pattern: the word at o holds o XOR 0x5752495445000000, big-endian.
# bytes OFFSET COUNT: the image's bytes in hex.
bytes () { od -v -A n -t x1 -j "$1" -N "$2" "$tmpdir/a.img" | tr -d ' \n'; }
o=$((62914560 + 8))
test "$(bytes $o 8)" = "$(printf '%016x' $((o ^ 0x5752495445000000)))"
test "$(bytes $o 8)" = 5752495446c00008
test "$(bytes 63963136 4096 | tr -d 0)" = ""
# 65011715..65011724: bytes 3-7 of the word at 65011712, 0-4 of the next.
w1=$(printf '%016x' $((65011712 ^ 0x5752495445000000)))
w2=$(printf '%016x' $((65011720 ^ 0x5752495445000000)))
test "$(bytes 65011712 16)" = "000000${w1:6}${w2:0:10}000000"
# Writes landed elsewhere too (the mix is not all reads and trims).
test "$(od -v -A n -c "$tmpdir/a.img" | grep -c 'W   R   I   T')" -gt 100

# Latency and duration: 100 reads 10 ms apart (~1 s) at double speed on
# an export delaying reads by 20 ms.
awk 'BEGIN { print "ts_us,op,offset,length"
             for (i = 0; i < 100; i++) print i * 10000 ",R," i * 65536 ",4096" }' \
    > "$tmpdir/reads.csv"
start_server slow --filter=delay memory 64M rdelay=20ms
"$NBDSHADOW" replay --trace "$tmpdir/reads.csv" --uri "$(uri slow)" \
    --speed 2 --json > "$tmpdir/slow.json"
cat "$tmpdir/slow.json"
check "read p50 covers the 20 ms delay" \
    "$(json "$tmpdir/slow.json" read_latency_p50_ms) >= 20"
check "latencies are not inflated" \
    "$(json "$tmpdir/slow.json" read_latency_p50_ms) < 200"
d=$(json "$tmpdir/slow.json" duration_seconds)
check "0.99 s at speed 2 takes about 0.5 s" "$d >= 0.49 && $d <= 1.5"

# Open-loop: reads every 10 ms on an export taking 200 ms each.  Waiting
# for each before the next would take 50 x 200 ms = 10 s.
head -51 "$tmpdir/reads.csv" > "$tmpdir/reads50.csv"
start_server stall --filter=delay memory 64M rdelay=200ms
"$NBDSHADOW" replay --trace "$tmpdir/reads50.csv" --uri "$(uri stall)" \
    --json > "$tmpdir/stall.json"
cat "$tmpdir/stall.json"
check "open-loop: stalls overlap" \
    "$(json "$tmpdir/stall.json" duration_seconds) < 2.5"
check "open-loop: many in flight" \
    "$(json "$tmpdir/stall.json" inflight_max) >= 10"
check "the issuer kept up" \
    "$(json "$tmpdir/stall.json" lateness_mean_ms) < 50"

# --speed 0 keeps a write and a zero of the same range in trace order even
# when the write is slow: the zero wins.  A timed replay issues the zero
# on time and reports the race.
printf 'ts_us,op,offset,length\n0,W,0,4096\n0,Z,0,4096\n' > "$tmpdir/wz.csv"
start_server wz --filter=delay memory 1M delay-write=300ms
"$NBDSHADOW" replay --trace "$tmpdir/wz.csv" --uri "$(uri wz)" --speed 0 \
    --json > "$tmpdir/wz.json"
test "$(json "$tmpdir/wz.json" races)" -eq 0
nbdcopy "$(uri wz)" "$tmpdir/wz.img"
test "$(od -v -A n -t x1 -N 4096 "$tmpdir/wz.img" | tr -d ' \n0')" = ""
"$NBDSHADOW" replay --trace "$tmpdir/wz.csv" --uri "$(uri wz)" \
    --json > "$tmpdir/wz.json"
test "$(json "$tmpdir/wz.json" races)" -eq 1

# A failing request: counted, reported, exit 1.
start_server eio --filter=error memory 1M error-pread=EIO error-pread-rate=1
printf 'ts_us,op,offset,length\n0,R,0,512\n10,W,0,512\n20,R,512,512\n' \
    > "$tmpdir/eio.csv"
if "$NBDSHADOW" replay --trace "$tmpdir/eio.csv" --uri "$(uri eio)" --json \
       > "$tmpdir/eio.json" 2> "$tmpdir/err"; then
    echo "$0: failed reads did not fail the replay"; exit 1
fi
test "$(json "$tmpdir/eio.json" errors)" -eq 2
grep -q 'nbdshadow: 2 of 3 requests failed; the first: R at ts_us' "$tmpdir/err"

# Errors: one line on stderr, nothing on stdout, exit 1, nothing sent.
# expect_error MESSAGE ARGS...
expect_error ()
{
    local msg="$1" status=0; shift
    "$NBDSHADOW" replay "$@" > "$tmpdir/out" 2> "$tmpdir/err" || status=$?
    if [ $status -ne 1 ] || [ -s "$tmpdir/out" ] ||
       [ "$(wc -l < "$tmpdir/err")" -ne 1 ] ||
       ! grep -qF -- "$msg" "$tmpdir/err"; then
        echo "$0: replay $*: expected exit 1 and \"$msg\", got $status:"
        cat "$tmpdir/out" "$tmpdir/err"; exit 1
    fi
}
start_server small memory 1M
printf 'ts_us,op,offset,length\n0,W,0,4096\n10,R,1048000,4096\n' \
    > "$tmpdir/beyond.csv"
expect_error "R at ts_us 10: offset 1048000 + length 4096 is beyond the export's size 1048576" \
    --trace "$tmpdir/beyond.csv" --uri "$(uri small)"
test "$(od -v -A n -t x1 -N 8 <(nbdcopy "$(uri small)" - | head -c 8))" = \
    " 00 00 00 00 00 00 00 00"
printf 'ts_us,op,offset,length\n0,R,0,4096\n10,X,0,4096\n' > "$tmpdir/bad.csv"
expect_error "bad.csv: line 3: op must be one of R W T Z F" \
    --trace "$tmpdir/bad.csv" --uri "$(uri small)"
expect_error "missing.csv: No such file or directory" \
    --trace "$tmpdir/missing.csv" --uri "$(uri small)"
printf 'ts_us,op,offset,length\n0,R,0,33554944\n' > "$tmpdir/huge.csv"
start_server large memory 64M
expect_error "length 33554944 is over the largest request" \
    --trace "$tmpdir/huge.csv" --uri "$(uri large)"
for s in -1 fast 1x nan; do
    expect_error "--speed: expected a number >= 0" \
        --trace "$tmpdir/mix.csv" --uri "$(uri small)" --speed "$s"
done
expect_error "nbd_connect_uri: connect:" \
    --trace "$tmpdir/mix.csv" --uri "nbd+unix:///?socket=$tmpdir/none.sock"
expect_error "nbd_connect_uri:" --trace "$tmpdir/mix.csv" --uri "not a uri"
start_server ro -r memory 64M
expect_error "the export is read-only but" \
    --trace "$tmpdir/mix.csv" --uri "$(uri ro)"
