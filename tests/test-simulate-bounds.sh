#!/bin/sh -
# simulate: volumes and block sizes it cannot handle are refused at once
# with one line, never a crash (a request ending at 2^64 - 1 used to
# segfault in the volume's rounding), a run away in time and memory
# (offsets near 1 PB), or a huge allocation (--block-size 1T).
. ./functions.sh

printf 'ts_us,op,offset,length\n0,R,0,512\n1000,R,65536,512\n' > "$tmpdir/ok.csv"

# expect_refusal MESSAGE SIMULATE-ARGS...: fails within 10 s saying it.
expect_refusal ()
{
    local msg="$1" r=0; shift
    timeout 10 "$NBDSHADOW" simulate --policy sequential "$@" \
        > /dev/null 2> "$tmpdir/err" || r=$?
    cat "$tmpdir/err"
    if [ $r -eq 0 ] || [ $r -ge 124 ]; then
        echo "$0: not refused (exit $r): $*"; exit 1
    fi
    if ! grep -qF -- "$msg" "$tmpdir/err" || [ "$(wc -l < "$tmpdir/err")" -ne 1 ]
    then
        echo "$0: expected one line saying \"$msg\""; exit 1
    fi
}

printf 'ts_us,op,offset,length\n0,R,0,512\n1000,R,18446744073709551104,511\n' \
    > "$tmpdir/end.csv"
expect_refusal 'line 3: request at 18446744073709551104 + 511 ends beyond' \
    --history "$tmpdir/ok.csv" --future "$tmpdir/end.csv"
printf 'ts_us,op,offset,length\n0,R,0,512\n1000,R,1125899906842624,512\n' \
    > "$tmpdir/pb.csv"
expect_refusal 'more than 67108864 blocks of 65536 bytes' \
    --history "$tmpdir/pb.csv" --future "$tmpdir/ok.csv"
for bs in 9223372036854775808 1T 128M 256 3K 0 -64K; do
    expect_refusal "--block-size: expected a power of 2 from 512 to 64M" \
        --history "$tmpdir/ok.csv" --future "$tmpdir/ok.csv" --block-size "$bs"
done
# The same bound for train.
if "$NBDSHADOW" train --trace "$tmpdir/ok.csv" --block-size 1T \
    -o "$tmpdir/m" 2> "$tmpdir/err"; then
    echo "$0: train accepted --block-size 1T"; exit 1
fi
grep -qF -- "--block-size: expected a power of 2 from 512 to 64M" "$tmpdir/err"

# Just inside the bounds: a 4 TiB volume in 64K blocks (2^26), and 64M
# blocks, simulate; 4 TiB and a byte does not.
printf 'ts_us,op,offset,length\n0,R,0,512\n1000,R,4398046511103,1\n' \
    > "$tmpdir/4t.csv"
timeout 120 "$NBDSHADOW" simulate --policy none --history "$tmpdir/4t.csv" \
    --future "$tmpdir/4t.csv" --json > "$tmpdir/out.json"
grep -q '"blocks_total": 67108864' "$tmpdir/out.json"
printf 'ts_us,op,offset,length\n0,R,0,512\n1000,R,4398046511104,1\n' \
    > "$tmpdir/4t1.csv"
expect_refusal 'more than 67108864 blocks of 65536 bytes' \
    --history "$tmpdir/4t1.csv" --future "$tmpdir/ok.csv"
"$NBDSHADOW" simulate --policy sequential --history "$tmpdir/ok.csv" \
    --future "$tmpdir/ok.csv" --block-size 64M > /dev/null
