#!/bin/sh -
# Same inputs, same numbers: two runs agree, two trainings write the
# same model, and a model trained in the simulator behaves exactly like
# the same model saved and loaded.  Two real guest pairs: boot's model
# uses the GRU, sqlite's the n-gram.
. ./functions.sh
requires test -r "$TRACES/e2e-boot-run1.csv"

for w in boot sqlite; do
    hist="$TRACES/e2e-$w-run1.csv"
    fut="$TRACES/e2e-$w-run2.csv"
    run ()
    {
        "$NBDSHADOW" simulate --history "$hist" --future "$fut" \
            --policy all --json "$@"
    }
    "$NBDSHADOW" train --trace "$hist" -o "$tmpdir/model" > /dev/null
    "$NBDSHADOW" train --trace "$hist" -o "$tmpdir/model2" > /dev/null
    cmp "$tmpdir/model" "$tmpdir/model2"
    for args in "--bandwidth-ratio 1" "--bandwidth-ratio 0.25 --sparse"; do
        run $args > "$tmpdir/a.json"
        run $args > "$tmpdir/b.json"
        cmp "$tmpdir/a.json" "$tmpdir/b.json"
        run $args --model "$tmpdir/model" > "$tmpdir/c.json"
        cmp "$tmpdir/a.json" "$tmpdir/c.json"
        echo "$w $args: deterministic"
    done
done
grep -q '"policy": *"predict"' "$tmpdir/a.json"
