#!/bin/sh -
# The blend train chooses holds its own against the history heuristics
# on a guest that does its work again: a real guest trace recorded twice
# (run 1 the history, run 2 the future), where frequency order serves
# the rerun almost perfectly.  predict must stay within 5 % (and a stall)
# of the better of first-access and frequency, dense, at ratios 0.25,
# 0.5 and 1.
. ./functions.sh
requires test -r "$TRACES/e2e-scan-run1.csv"
requires test -r "$TRACES/e2e-scan-run2.csv"

"$NBDSHADOW" train --trace "$TRACES/e2e-scan-run1.csv" -o "$tmpdir/model"
for ratio in 0.25 0.5 1; do
    "$NBDSHADOW" simulate --history "$TRACES/e2e-scan-run1.csv" \
        --future "$TRACES/e2e-scan-run2.csv" --model "$tmpdir/model" \
        --policy first-access,frequency,predict --bandwidth-ratio $ratio \
        --json > "$tmpdir/sim.json"
    stalls () {
        grep "\"policy\": \"$1\"" "$tmpdir/sim.json" |
            sed -n 's/.*"stalls": *\([0-9]*\).*/\1/p'
    }
    fa=$(stalls first-access) fq=$(stalls frequency) p=$(stalls predict)
    echo "ratio $ratio: first-access $fa, frequency $fq, predict $p"
    awk -v fa="$fa" -v fq="$fq" -v p="$p" 'BEGIN {
        h = fa < fq ? fa : fq
        exit !(p != "" && p <= 1.05 * h + 1) }' ||
        { echo "$0: predict $p stalls at ratio $ratio, heuristics $fa / $fq"; exit 1; }
done
