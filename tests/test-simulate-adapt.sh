#!/bin/sh -
# predict adapts online: on a future that re-reads the history's data for
# its first half and then reads the data next to it, which the history
# never touched (gen-traces.sh's shift), train's blend (first-access: all
# the history shows is re-reading) runs dry half-way, and the bandit must
# move the pulls to the region model.  predict then stalls far less than
# the same blend held fixed, and less than both history heuristics.
. ./functions.sh

"$abs_srcdir/bench/gen-traces.sh" "$tmpdir"
"$NBDSHADOW" train --trace "$tmpdir/shift-h.csv" -o "$tmpdir/model" --json \
    > "$tmpdir/train.json"
cat "$tmpdir/train.json"
"$NBDSHADOW" simulate --history "$tmpdir/shift-h.csv" \
    --future "$tmpdir/shift-f.csv" --model "$tmpdir/model" \
    --policy first-access,frequency,predict-fixed,predict --json \
    > "$tmpdir/sim.json"
cat "$tmpdir/sim.json"
for p in first-access frequency predict-fixed predict; do
    grep "\"policy\": \"$p\"" "$tmpdir/sim.json" > "$tmpdir/$p.json"
done
awk -v p="$(json_get "$tmpdir/predict.json" stalls)" \
    -v x="$(json_get "$tmpdir/predict-fixed.json" stalls)" \
    -v a="$(json_get "$tmpdir/first-access.json" stalls)" \
    -v f="$(json_get "$tmpdir/frequency.json" stalls)" 'BEGIN {
    if (!(p < 0.75 * x)) { print "predict " p " not below 3/4 of fixed " x; exit 1 }
    if (!(p < a && p < f)) { print "predict " p " not below " a ", " f; exit 1 }
}'
