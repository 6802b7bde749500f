#!/bin/sh -
# Every import format on a small handwritten sample holding the same four
# requests: the canonical CSV must match (timestamps relative to the
# first, since each format has its own time origin).
. ./functions.sh

data="$abs_srcdir/data"
expected="$data/sample-expected.csv"

for fmt in csv nbdkit-log blkparse msr vscsi disksim replayer; do
    "$NBDSHADOW" import --format "$fmt" "$data/sample.$fmt" -o "$tmpdir/$fmt.csv"
    awk -F, 'NR == 1 { print; next }
             NR == 2 { t0 = $1 }
             { print $1 - t0 "," $2 "," $3 "," $4 }' \
        "$tmpdir/$fmt.csv" > "$tmpdir/$fmt.rel"
    if ! cmp -s "$tmpdir/$fmt.rel" "$expected"; then
        echo "$0: format $fmt: wrong conversion:"
        diff "$expected" "$tmpdir/$fmt.rel" || :
        exit 1
    fi
done

# The canonical CSV imports to itself, timestamps included.
"$NBDSHADOW" import --format csv "$data/sample.csv" > "$tmpdir/again.csv"
cmp "$data/sample.csv" "$tmpdir/again.csv"

# disksim places device d at d * R, R = largest extent rounded to 1 GiB.
printf '0 0 0 8 1\n10 2 4194303 1 0\n' > "$tmpdir/dev.disksim"
"$NBDSHADOW" import --format disksim "$tmpdir/dev.disksim" -o "$tmpdir/dev.csv"
# Largest end: (4194303 + 1) * 512 = 2 GiB exactly, so R = 2 GiB.
want=$(( 2 * 2147483648 + 4194303 * 512 ))
got=$(awk -F, 'NR == 3 { print $3 }' "$tmpdir/dev.csv")
if [ "$got" != "$want" ]; then
    echo "$0: disksim device 2 placed at $got, expected $want"
    exit 1
fi

# --split: the history holds the first half of the time span.
"$NBDSHADOW" import --format csv "$data/sample.csv" -o /dev/null \
    --split "$tmpdir/h.csv" "$tmpdir/f.csv"
[ "$(tail -n +2 "$tmpdir/h.csv" | wc -l)" -eq 2 ]
[ "$(tail -n +2 "$tmpdir/f.csv" | wc -l)" -eq 2 ]
[ "$(awk -F, 'NR == 2 { print $1 }' "$tmpdir/f.csv")" -eq 7500 ]
