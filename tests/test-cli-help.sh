#!/bin/sh -
# --help on the program and every subcommand; bad usage fails loudly.
. ./functions.sh

"$NBDSHADOW" --help | grep -q '^  simulate'
"$NBDSHADOW" --help | grep -q '^  replay'
for cmd in import train simulate replay; do
    "$NBDSHADOW" $cmd --help > "$tmpdir/help"
    grep -q "^usage: nbdshadow $cmd" "$tmpdir/help"
done
"$NBDSHADOW" simulate --help | grep -q -- '--bandwidth-ratio'
"$NBDSHADOW" import --help | grep -q 'disksim'
"$NBDSHADOW" replay --help | grep -q 'o XOR 0x5752495445000000'

# expect_fail MESSAGE ARGS...
expect_fail ()
{
    msg="$1"; shift
    if "$NBDSHADOW" "$@" > /dev/null 2> "$tmpdir/err"; then
        echo "$0: accepted: $*"; exit 1
    fi
    if ! grep -qF -- "$msg" "$tmpdir/err"; then
        echo "$0: $*: expected \"$msg\", got:"; cat "$tmpdir/err"; exit 1
    fi
}
data="$abs_srcdir/data"
expect_fail 'unknown command "frobnicate"' frobnicate
expect_fail 'usage: nbdshadow import' import "$data/sample.csv"
expect_fail 'unknown policy "fastest"' simulate --history "$data/sample.csv" \
    --future "$data/sample.csv" --policy fastest
# The policy list comes from the one table: every policy is in the help
# and in the error, the simulator-only ones marked.
expect_fail 'one of none, sequential, frequency, first-access, predict, predict-fixed, regions, oracle' \
    simulate --history "$data/sample.csv" --future "$data/sample.csv" \
    --policy fastest
"$NBDSHADOW" simulate --help | grep -q '^  oracle .*(simulator only)'
"$NBDSHADOW" simulate --help | grep -q '^  predict .*(model)'
expect_fail '--block-size: expected a power of 2' train \
    --trace "$data/sample.csv" --block-size 3000 -o "$tmpdir/m"
expect_fail '--rtt: expected a duration' simulate --history "$data/sample.csv" \
    --future "$data/sample.csv" --policy none --rtt soon
expect_fail 'usage: nbdshadow replay' replay --trace "$data/sample.csv"
expect_fail '--speed: expected a number' replay --trace "$data/sample.csv" \
    --uri nbd://localhost --speed -2
expect_fail 'No such file' simulate --history "$tmpdir/missing.csv" \
    --future "$data/sample.csv" --policy none
