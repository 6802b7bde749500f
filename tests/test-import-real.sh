#!/bin/sh -
# The real traces import completely, and match an independent awk
# conversion of their documented formats (README in $TRACES).
. ./functions.sh
requires test -r "$TRACES/msn_fs_30s_replayer.trace"
requires test -r "$TRACES/tpcc_small_mqsim.trace"

# replayer: time_ms disk offset size rw, 512-byte sectors, 1 = read.
"$NBDSHADOW" import --format replayer "$TRACES/msn_fs_30s_replayer.trace" \
    -o "$tmpdir/msn.csv" --json > "$tmpdir/msn.json"
awk 'BEGIN { print "ts_us,op,offset,length" }
     { printf "%.0f,%s,%.0f,%d\n", $1 * 1000, $5 == 1 ? "R" : "W",
              $3 * 512, $4 * 512 }' \
    "$TRACES/msn_fs_30s_replayer.trace" > "$tmpdir/msn.awk"
# The source is in time order, so the stable sort keeps it as is.
cmp "$tmpdir/msn.csv" "$tmpdir/msn.awk"
lines=$(wc -l < "$TRACES/msn_fs_30s_replayer.trace")
[ "$(json_get "$tmpdir/msn.json" requests)" -eq "$lines" ]

# disksim: arrival_ns device lba sectors type; device d at d * R.
"$NBDSHADOW" import --format disksim "$TRACES/tpcc_small_mqsim.trace" \
    -o "$tmpdir/tpcc.csv" --json > "$tmpdir/tpcc.json"
awk 'NR == FNR { e = ($3 + $4) * 512; if (e > max) max = e; next }
     FNR == 1 { G = 1073741824; R = int((max + G - 1) / G) * G;
                print "ts_us,op,offset,length" }
     { printf "%d,%s,%.0f,%d\n", int($1 / 1000), $5 == 1 ? "R" : "W",
              $2 * R + $3 * 512, $4 * 512 }' \
    "$TRACES/tpcc_small_mqsim.trace" "$TRACES/tpcc_small_mqsim.trace" \
    | sort -t, -s -n -k1,1 > "$tmpdir/tpcc.awk"
# sort puts the header (ts "ts_us" = 0) first too.
cmp "$tmpdir/tpcc.csv" "$tmpdir/tpcc.awk"
reads=$(awk '$5 == 1' "$TRACES/tpcc_small_mqsim.trace" | wc -l)
[ "$(json_get "$tmpdir/tpcc.json" reads)" -eq "$reads" ]
