#!/bin/sh -
# The standard scenario on a slice of a real trace: the policies rank as
# they must (oracle best, none worst, gap_closed 0 for sequential and 1
# for oracle), predict beats sequential, and the plot draws every policy.
. ./functions.sh
requires test -r "$TRACES/msn_fs_30s_replayer.trace"

head -n 30000 "$TRACES/msn_fs_30s_replayer.trace" > "$tmpdir/part.trace"
"$NBDSHADOW" import --format replayer "$tmpdir/part.trace" -o /dev/null \
    --split "$tmpdir/h.csv" "$tmpdir/f.csv"

for variant in dense sparse; do
    opt=; [ $variant = sparse ] && opt=--sparse
    "$NBDSHADOW" simulate --history "$tmpdir/h.csv" --future "$tmpdir/f.csv" \
        --policy all --bandwidth-ratio 1 --json $opt \
        --plot "$tmpdir/$variant.svg" > "$tmpdir/$variant.json"
    cat "$tmpdir/$variant.json"
    for p in none sequential frequency first-access predict oracle; do
        grep "\"policy\": \"$p\"" "$tmpdir/$variant.json" > "$tmpdir/$p.json"
        eval "stalls_$(echo $p | tr - _)=\$(json_get \$tmpdir/$p.json stalls)"
    done
    [ "$(json_get "$tmpdir/sequential.json" gap_closed)" = 0 ]
    [ "$(json_get "$tmpdir/oracle.json" gap_closed)" = 1 ]
    for s in $stalls_none $stalls_sequential $stalls_frequency \
             $stalls_first_access $stalls_predict; do
        [ "$stalls_oracle" -le "$s" ]
        [ "$s" -le "$stalls_none" ]
    done
    if [ "$stalls_predict" -gt "$stalls_sequential" ]; then
        echo "$0: $variant: predict ($stalls_predict stalls) worse than" \
             "sequential ($stalls_sequential)"
        exit 1
    fi
    # Every policy but none copies the whole volume, none never does.
    [ "$(json_get "$tmpdir/none.json" time_to_full_copy)" = null ]
    awk -v t="$(json_get "$tmpdir/predict.json" time_to_full_copy)" \
        'BEGIN { exit !(t > 0) }'
    # Two panels, one line per policy in each.
    [ "$(grep -c '<polyline' "$tmpdir/$variant.svg")" -eq \
      $((2 * $(grep -c '"policy"' "$tmpdir/$variant.json"))) ]
    grep -q '</svg>' "$tmpdir/$variant.svg"
done

# The sparse variant copies fewer blocks.
[ "$(json_get "$tmpdir/sparse.json" blocks_to_copy | head -1)" -lt \
  "$(json_get "$tmpdir/dense.json" blocks_to_copy | head -1)" ]

# More bandwidth never means more stalls for sequential.
"$NBDSHADOW" simulate --history "$tmpdir/h.csv" --future "$tmpdir/f.csv" \
    --policy sequential --bandwidth-ratio 4 --json > "$tmpdir/fast.json"
[ "$(json_get "$tmpdir/fast.json" stalls)" -le "$stalls_sequential" ]

# The stall model of DESIGN.md on a hand-made future (6 blocks, 1 ms RTT):
# a pull chosen at 0 is still in flight at 0.5 ms, so reading it stalls;
# a read of a block whose demand fetch is still on its way stalls too.
cat > "$tmpdir/tiny.csv" <<'CSV'
ts_us,op,offset,length
0,W,327680,65536
500,R,0,65536
2000,R,65536,65536
3000,R,196608,65536
3100,R,196608,65536
10000000,R,0,65536
CSV
"$NBDSHADOW" simulate --history "$tmpdir/tiny.csv" --future "$tmpdir/tiny.csv" \
    --policy sequential --bandwidth 1G --json > "$tmpdir/tiny-seq.json"
# Stalls: block 0 (in flight); blocks 1 and 3 arrived long before.
[ "$(json_get "$tmpdir/tiny-seq.json" stalls)" = 1 ]
"$NBDSHADOW" simulate --history "$tmpdir/tiny.csv" --future "$tmpdir/tiny.csv" \
    --policy none --bandwidth 1G --json > "$tmpdir/tiny-none.json"
# Every read waits but the last: block 3 twice (the second waits on the
# first's fetch); block 0 arrived long before the last read.
[ "$(json_get "$tmpdir/tiny-none.json" stalls)" = 4 ]
