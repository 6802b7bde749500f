#!/bin/sh -
# Training on a real history gives a model file that loads; a corrupt,
# truncated, foreign, older or future-version model is refused with a clear
# error.
. ./functions.sh
requires test -r "$TRACES/msn_fs_30s_replayer.trace"

head -n 20000 "$TRACES/msn_fs_30s_replayer.trace" > "$tmpdir/part.trace"
"$NBDSHADOW" import --format replayer "$tmpdir/part.trace" -o /dev/null \
    --split "$tmpdir/h.csv" "$tmpdir/f.csv"
"$NBDSHADOW" train --trace "$tmpdir/h.csv" -o "$tmpdir/model" --json \
    > "$tmpdir/train.json"
cat "$tmpdir/train.json"
[ "$(json_get "$tmpdir/train.json" requests)" -eq \
  "$(tail -n +2 "$tmpdir/h.csv" | wc -l)" ]
# Both sequence models were evaluated and one of them chosen.
json_get "$tmpdir/train.json" sequence_model | grep -qE '^(ngram|gru)$'
awk -v n="$(json_get "$tmpdir/train.json" ngram_hit_rate)" \
    -v g="$(json_get "$tmpdir/train.json" gru_hit_rate)" \
    'BEGIN { exit !(n >= 0 && n <= 1 && g >= 0 && g <= 1) }'
[ "$(json_get "$tmpdir/train.json" block_svs)" -gt 0 ]

sim ()
{
    "$NBDSHADOW" simulate --history "$tmpdir/h.csv" --future "$tmpdir/f.csv" \
        --policy predict --model "$1" --json
}
sim "$tmpdir/model" > "$tmpdir/ok.json"
[ "$(json_get "$tmpdir/ok.json" requests)" -gt 0 ]

# expect_refused FILE MESSAGE
expect_refused ()
{
    if sim "$1" > /dev/null 2> "$tmpdir/err"; then
        echo "$0: $1 was accepted"; exit 1
    fi
    if ! grep -qF "$2" "$tmpdir/err"; then
        echo "$0: expected \"$2\", got:"; cat "$tmpdir/err"; exit 1
    fi
}

size=$(stat -c %s "$tmpdir/model")

# One flipped byte in the middle of the payload.
cp "$tmpdir/model" "$tmpdir/corrupt"
off=$(( size / 2 ))
byte=$(od -An -tu1 -j "$off" -N1 "$tmpdir/corrupt" | tr -d ' ')
printf "$(printf '\\%03o' $(( (byte + 1) % 256 )))" |
    dd of="$tmpdir/corrupt" bs=1 seek="$off" conv=notrunc status=none
expect_refused "$tmpdir/corrupt" "SHA-256 checksum mismatch"

head -c $(( size - 100 )) "$tmpdir/model" > "$tmpdir/truncated"
expect_refused "$tmpdir/truncated" "truncated or corrupt model"
head -c 20 "$tmpdir/model" > "$tmpdir/stub"
expect_refused "$tmpdir/stub" "not an nbdshadow model (file too short)"
cp "$tmpdir/h.csv" "$tmpdir/notmodel"
expect_refused "$tmpdir/notmodel" "not an nbdshadow model (bad magic)"
cp "$tmpdir/model" "$tmpdir/future"
printf '\143' | dd of="$tmpdir/future" bs=1 seek=8 conv=notrunc status=none
expect_refused "$tmpdir/future" "model version 99 is not supported"
# A model of the previous format (version 1) is refused, naming the cure.
cp "$tmpdir/model" "$tmpdir/old"
printf '\001' | dd of="$tmpdir/old" bs=1 seek=8 conv=notrunc status=none
expect_refused "$tmpdir/old" \
    "model version 1 is from an older nbdshadow; retrain it with nbdshadow train"
# The blend train chose is reported, for both kinds of source.
json_get "$tmpdir/train.json" blend_dense | grep -qE '^[a-z-]+ [0-9]'
json_get "$tmpdir/train.json" blend_sparse | grep -qE '^[a-z-]+ [0-9]'

# A model for another block size is refused by the pull order.
"$NBDSHADOW" simulate --history "$tmpdir/h.csv" --future "$tmpdir/f.csv" \
    --policy predict --model "$tmpdir/model" --block-size 4K \
    2> "$tmpdir/err" && exit 1
grep -qF "model was trained with block size 65536, not 4096" "$tmpdir/err"
