#!/bin/sh -
# The blend train chooses holds its own against the history heuristics
# on a guest that does its work again: real guest traces recorded twice
# (run 1 the history, run 2 the future).  predict must stay within 5 %
# (and a stall) of the better of first-access and frequency:
#   scan, dense, ratios 0.25, 0.5 and 1: frequency order serves the
#     rerun almost perfectly, first-access too once the link keeps up;
#   boot and build, sparse, ratio 1: the second run keeps the first
#     one's requests but not its pace, which the blend for a rerun is
#     chosen on (an exact replay of the history chose first-access for
#     boot, 237 stalls against frequency's 181, and first-access plus
#     frequency for build, 420 against first-access's 323);
#   sqlite and unpack, sparse, ratio 0.25: a link that cannot keep up
#     with the guest's bursts, where the blocks touched most must go
#     first (first-access: 624 and 649 stalls, frequency 487 and 473);
#     at ratio 1 on sqlite first-access still wins (2 against 373).
. ./functions.sh

# check WORKLOAD VARIANT RATIO...
check ()
{
    w=$1 variant=$2; shift 2
    h="$TRACES/e2e-$w-run1.csv" f="$TRACES/e2e-$w-run2.csv"
    requires test -r "$h"
    requires test -r "$f"
    opt=; [ "$variant" = sparse ] && opt=--sparse
    "$NBDSHADOW" train --trace "$h" -o "$tmpdir/model"
    for ratio; do
        "$NBDSHADOW" simulate --history "$h" --future "$f" \
            --model "$tmpdir/model" --policy first-access,frequency,predict \
            --bandwidth-ratio $ratio $opt --json > "$tmpdir/sim.json"
        fa=$(stalls first-access) fq=$(stalls frequency) p=$(stalls predict)
        echo "$w $variant ratio $ratio: first-access $fa, frequency $fq, predict $p"
        awk -v fa="$fa" -v fq="$fq" -v p="$p" 'BEGIN {
            h = fa < fq ? fa : fq
            exit !(p != "" && p <= 1.05 * h + 1) }' ||
            { echo "$0: $w $variant: predict $p stalls at ratio $ratio," \
                   "heuristics $fa / $fq"; exit 1; }
    done
}

stalls ()
{
    grep "\"policy\": \"$1\"" "$tmpdir/sim.json" |
        sed -n 's/.*"stalls": *\([0-9]*\).*/\1/p'
}

check scan dense 0.25 0.5 1
check boot sparse 1
check build sparse 1
check sqlite sparse 0.25 1
check unpack sparse 0.25
