#!/bin/sh -
# Same inputs, same numbers: two runs agree, and a model trained in the
# simulator behaves exactly like the same model saved and loaded.
. ./functions.sh
requires test -r "$TRACES/tpcc_small_mqsim.trace"

"$NBDSHADOW" import --format disksim "$TRACES/tpcc_small_mqsim.trace" \
    -o /dev/null --split "$tmpdir/h.csv" "$tmpdir/f.csv"
run ()
{
    "$NBDSHADOW" simulate --history "$tmpdir/h.csv" --future "$tmpdir/f.csv" \
        --policy frequency,predict,oracle --bandwidth-ratio 4 --json "$@"
}
run > "$tmpdir/a.json"
run > "$tmpdir/b.json"
cmp "$tmpdir/a.json" "$tmpdir/b.json"

"$NBDSHADOW" train --trace "$tmpdir/h.csv" -o "$tmpdir/model"
"$NBDSHADOW" train --trace "$tmpdir/h.csv" -o "$tmpdir/model2"
cmp "$tmpdir/model" "$tmpdir/model2"
run --model "$tmpdir/model" > "$tmpdir/c.json"
cmp "$tmpdir/a.json" "$tmpdir/c.json"
