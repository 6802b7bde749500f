#!/usr/bin/env bash
# Bad parameters and mismatched or unusable shadow/state files: nbdkit
# must exit non-zero (not serve) with exactly one error line, naming the
# parameter or file.  A refused state file is left intact and usable.
source ./functions.sh
requires nbdsh --version

start_server src8 pattern 8M
start_server src16 pattern 16M
start_server other8 memory 8M

# expect_refusal REGEX SOURCE PARAMS...: nbdkit with the filter over
# SOURCE must fail with one error line matching REGEX.
expect_refusal ()
{
    local regex="$1" src="$2" r=0; shift 2
    echo "== $*"
    rm -f "$tmpdir/p.sock"
    nbdkit_refuses "$tmpdir/err" -U "$tmpdir/p.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/$src.sock" "$@" || r=1
    cat "$tmpdir/err"
    if [ $r -ne 0 ]; then
        echo "FAIL: nbdkit did not refuse"; exit 1
    fi
    if [ "$(grep -c error "$tmpdir/err")" -ne 1 ]; then
        echo "FAIL: expected exactly one error line"; exit 1
    fi
    if ! grep error "$tmpdir/err" | grep -qE -- "$regex"; then
        echo "FAIL: the error line does not match: $regex"; exit 1
    fi
}

img="$tmpdir/disk.img"
expect_refusal 'shadow-foo' src8 shadow-file="$img" shadow-foo=1
for bs in 3K 8M 2K abc 0; do
    expect_refusal "shadow-block-size" src8 shadow-file="$img" shadow-block-size=$bs
done
expect_refusal 'shadow-file' src8
expect_refusal '/dev/null/x' src8 shadow-file=/dev/null/x
expect_refusal "$tmpdir" src8 shadow-file="$tmpdir"
expect_refusal 'shadow-policy' src8 shadow-file="$img" shadow-policy=bogus
# The predictor: a model from nbdshadow train, checked before serving.
"$NBDSHADOW" train --trace "$abs_top_srcdir/tests/data/sample.csv" \
    --block-size 64K -o "$tmpdir/64k.model" > /dev/null
expect_refusal 'oracle' src8 shadow-file="$img" shadow-policy=oracle
expect_refusal 'needs a model' src8 shadow-file="$img" shadow-policy=predict
expect_refusal 'needs a model' src8 shadow-file="$img" shadow-policy=frequency
expect_refusal 'shadow-model.*/dev/null/m' src8 shadow-file="$img" \
    shadow-model=/dev/null/m
head -c 1000 "$tmpdir/64k.model" > "$tmpdir/short.model"
expect_refusal "shadow-model.*$tmpdir/short.model" src8 shadow-file="$img" \
    shadow-model="$tmpdir/short.model"
cp "$tmpdir/64k.model" "$tmpdir/bad.model"
printf 'X' | dd of="$tmpdir/bad.model" bs=1 seek=2000 conv=notrunc 2>/dev/null
expect_refusal "shadow-model.*$tmpdir/bad.model" src8 shadow-file="$img" \
    shadow-model="$tmpdir/bad.model"
expect_refusal 'shadow-model.*65536-byte blocks.*4096' src8 shadow-file="$img" \
    shadow-model="$tmpdir/64k.model" shadow-block-size=4K
echo "not a trace" > "$tmpdir/notes.txt"
expect_refusal "shadow-record.*$tmpdir/notes.txt" src8 shadow-file="$img" \
    shadow-record="$tmpdir/notes.txt"
test "$(cat "$tmpdir/notes.txt")" = "not a trace"
expect_refusal 'shadow-record.*/dev/null/r' src8 shadow-file="$img" \
    shadow-record=/dev/null/r
# A start that fails later (here: no source) leaves no record file.
expect_refusal 'source' nosuch shadow-file="$img" \
    shadow-record="$tmpdir/new.csv"
test ! -e "$tmpdir/new.csv"
# Nothing is created for a bad parameter.
test ! -e "$img"
expect_refusal '/dev/null/s' src8 shadow-file="$img" shadow-state=/dev/null/s
rm -f "$img"

# A state for the 8M disk with 64K blocks, incomplete, holding a write.
start_shadow good src8 shadow-block-size=64K shadow-policy=none
nbdsh -u "$(uri good)" -c '
h.pread(4096, 0)
h.pwrite(b"guest data", 100000)
h.flush()'
stop_server good
img="$tmpdir/good.img" state="$tmpdir/good.state"
cp "$state" "$tmpdir/state.orig"

expect_refusal "$state" src16 shadow-file="$img" shadow-state="$state" shadow-policy=none
expect_refusal "$state" src8 shadow-file="$img" shadow-state="$state" \
    shadow-block-size=128K shadow-policy=none
expect_refusal "$state" src8 shadow-file="$img" shadow-state="$state" \
    shadow-block-size=4K shadow-policy=none
expect_refusal "$state" other8 shadow-file="$img" shadow-state="$state" shadow-policy=none
# Data in the shadow file but no state to say what it is.
expect_refusal "$img" src8 shadow-file="$img" shadow-state="$tmpdir/none.state"
test ! -e "$tmpdir/none.state"

# The refused state is untouched and still resumes.
cmp "$state" "$tmpdir/state.orig"
start_shadow good src8 shadow-block-size=64K shadow-policy=none
nbdsh -u "$(uri good)" -c '
assert h.pread(10, 100000) == b"guest data"
assert h.get_size() == 8 * 1024 * 1024'
