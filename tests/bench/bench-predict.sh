#!/bin/sh -
# The prediction benchmark of DESIGN.md ("How prediction is measured") on
# every real trace: split 50/50 by time, train on the history only, then
# simulate all policies at bandwidth ratios 0.25, 1 and 4, dense and
# sparse.  Prints markdown tables (docs/PREDICTION.md) with the gap closed
# and the goals checked.  Run from the build tree: tests/bench/bench-predict.sh
# Needs a few minutes of one CPU.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
NBDSHADOW="${NBDSHADOW:-$top/cli/nbdshadow}"
TRACES="${TRACES:-$top/../shared/traces}"
work=$(mktemp -d /tmp/bench-predict.XXXXXX)
trap 'rm -rf "$work"' EXIT

json_get () { sed -n "s/.*\"$2\": *\"\{0,1\}\([^,\"}]*\)\"\{0,1\}.*/\1/p" "$1"; }

for spec in msn_fs_30s_replayer.trace:replayer tpcc_small_mqsim.trace:disksim
do
    file=${spec%%:*}; fmt=${spec##*:}; name=${file%%.*}
    "$NBDSHADOW" import --format "$fmt" "$TRACES/$file" -o "$work/all.csv" \
        --split "$work/h.csv" "$work/f.csv"
    "$NBDSHADOW" train --trace "$work/h.csv" -o "$work/model" --json \
        > "$work/train.json"
    echo "### $name"
    echo
    echo "history $(($(wc -l < "$work/h.csv") - 1)) requests," \
         "future $(($(wc -l < "$work/f.csv") - 1));" \
         "training $(json_get "$work/train.json" train_seconds) s;" \
         "regions of $(json_get "$work/train.json" region_blocks) blocks;" \
         "sequence models, top-4 next-block hit rate on the history's last" \
         "fifth: n-gram $(json_get "$work/train.json" ngram_hit_rate)," \
         "GRU $(json_get "$work/train.json" gru_hit_rate)" \
         "(using $(json_get "$work/train.json" sequence_model))"
    echo
    echo "| variant | ratio | none | sequential | frequency | first-access | predict | oracle | predict gap closed | best heuristic gap | predict observe us/req | goals |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for variant in dense sparse; do
        opt=; [ $variant = sparse ] && opt=--sparse
        for ratio in 0.25 1 4; do
            "$NBDSHADOW" simulate --history "$work/h.csv" --future "$work/f.csv" \
                --model "$work/model" --policy all --bandwidth-ratio $ratio \
                --timing --json $opt > "$work/sim.json"
            row="| $variant | $ratio |"
            for p in none sequential frequency first-access predict oracle; do
                grep "\"policy\": \"$p\"" "$work/sim.json" > "$work/$p.json"
                row="$row $(json_get "$work/$p.json" stalls) |"
            done
            gap=$(json_get "$work/predict.json" gap_closed)
            hgap=$(for p in frequency first-access; do
                       json_get "$work/$p.json" gap_closed; done |
                   sort -g | tail -1)
            obs=$(json_get "$work/predict.json" observe_us)
            # Goals: never worse than sequential, nor than the best history
            # heuristic by more than 5 % (in stalls); gap >= 0.7 at ratio 1.
            goals=$(awk -v p="$(json_get "$work/predict.json" stalls)" \
                -v s="$(json_get "$work/sequential.json" stalls)" \
                -v f="$(json_get "$work/frequency.json" stalls)" \
                -v a="$(json_get "$work/first-access.json" stalls)" \
                -v g="$gap" -v r=$ratio 'BEGIN {
                    h = f < a ? f : a; out = ""
                    out = out (p <= s ? "<=seq" : "WORSE-THAN-SEQ")
                    out = out (p <= 1.05 * h ? " <=heur+5%" : " WORSE-THAN-HEUR")
                    if (r == 1) out = out (g >= 0.7 ? " gap>=0.7" : " gap<0.7")
                    print out }')
            echo "$row $gap | $hgap | $obs | $goals |"
        done
    done
    # Both sequence models on the real metric (dense, ratio 1).
    for seq in ngram gru; do
        "$NBDSHADOW" simulate --history "$work/h.csv" --future "$work/f.csv" \
            --model "$work/model" --policy predict --seq-model $seq --json \
            > "$work/seq.json"
        echo "- predict with the $seq sequence model (dense, ratio 1):" \
             "$(json_get "$work/seq.json" stalls) stalls," \
             "gap closed $(json_get "$work/seq.json" gap_closed)"
    done
    # Held-out check: the hyper-parameters were chosen on the futures
    # above, so also score the history alone, split again by time: train
    # on its first half, replay its second (ratio 1).
    "$NBDSHADOW" import --format csv "$work/h.csv" -o "$work/vall.csv" \
        --split "$work/vh.csv" "$work/vf.csv"
    "$NBDSHADOW" train --trace "$work/vh.csv" -o "$work/vmodel" > /dev/null
    for variant in dense sparse; do
        opt=; [ $variant = sparse ] && opt=--sparse
        "$NBDSHADOW" simulate --history "$work/vh.csv" --future "$work/vf.csv" \
            --model "$work/vmodel" --policy sequential,predict,oracle \
            --json $opt > "$work/sim.json"
        for p in sequential predict oracle; do
            grep "\"policy\": \"$p\"" "$work/sim.json" > "$work/$p.json"
        done
        echo "- held out (the history split again; ratio 1, $variant):" \
             "sequential $(json_get "$work/sequential.json" stalls)," \
             "predict $(json_get "$work/predict.json" stalls)," \
             "oracle $(json_get "$work/oracle.json" stalls) stalls," \
             "gap closed $(json_get "$work/predict.json" gap_closed)"
    done
    echo
done
