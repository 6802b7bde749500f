#!/usr/bin/env bash
# A model file whose checksum is right but whose fields are not what
# `nbdshadow train` writes (a block size that is not a power of two, a
# rate that is NaN) is refused with one line by the simulator and by the
# filter, before anything uses it.  (Such a block size used to be taken
# by the filter, whose block arithmetic then corrupted its heap.)
source ./functions.sh
requires python3 --version

"$NBDSHADOW" train --trace "$abs_top_srcdir/tests/data/sample.csv" \
    --block-size 64K -o "$tmpdir/good.model" > /dev/null

# forge OUT WHERE FORMAT VALUE: the good model with the payload field at
# byte WHERE (negative: from the end) set to VALUE (python struct FORMAT),
# and the header's SHA-256 of the payload recomputed.
forge ()
{
    python3 - "$tmpdir/good.model" "$@" <<'PY'
import hashlib, struct, sys
src, out, where, fmt, value = sys.argv[1:]
data = bytearray(open(src, "rb").read())
HEADER = 8 + 4 + 4 + 8 + 32
payload = data[HEADER:]
where = int(where)
if where < 0:
    where += len(payload)
value = float(value) if fmt in "dfe" else int(value)
struct.pack_into("<" + fmt, payload, where, value)
data[HEADER:] = payload
data[24:56] = hashlib.sha256(payload).digest()
open(out, "wb").write(data)
PY
}

# The payload starts with the block size; it ends with the retouch rate
# and the expected number of new blocks (two doubles), the blends of
# pull strategies (dense, sparse; each for either future and for a
# rerun: 5 floats each), then the share of repeats a future that goes
# on shows (a float).  Before them lies the region model's fit, ending
# with the last region's growth (a float), the period of the devices
# and the number of sub-bins (none in this small history).
forge "$tmpdir/bs.model" 0 Q 65537
forge "$tmpdir/bs3.model" 0 Q 3
forge "$tmpdir/rate.model" -100 d nan
forge "$tmpdir/blend.model" -8 f -1
forge "$tmpdir/repeat.model" -4 f 2
forge "$tmpdir/growth.model" -120 f -1
forge "$tmpdir/same.model" 0 Q 65536

# The forging itself keeps a good model good.
"$NBDSHADOW" simulate --history "$abs_top_srcdir/tests/data/sample.csv" \
    --future "$abs_top_srcdir/tests/data/sample.csv" --policy predict \
    --model "$tmpdir/same.model" > /dev/null

# simulate_refuses MODEL MESSAGE
simulate_refuses ()
{
    if "$NBDSHADOW" simulate --history "$abs_top_srcdir/tests/data/sample.csv" \
        --future "$abs_top_srcdir/tests/data/sample.csv" --policy predict \
        --model "$1" > /dev/null 2> "$tmpdir/err"; then
        echo "$0: simulate accepted $1"; exit 1
    fi
    cat "$tmpdir/err"
    if ! grep -qF -- "$2" "$tmpdir/err" || [ "$(wc -l < "$tmpdir/err")" -ne 1 ]
    then
        echo "$0: expected one line saying \"$2\""; exit 1
    fi
}
simulate_refuses "$tmpdir/bs.model" "invalid model: block size 65537 is not a power of two"
simulate_refuses "$tmpdir/bs3.model" "invalid model: block size 3 is not a power of two"
simulate_refuses "$tmpdir/rate.model" "invalid model: a rate is out of range"
simulate_refuses "$tmpdir/repeat.model" "invalid model: a rate is out of range"
simulate_refuses "$tmpdir/growth.model" "invalid model: region growth"
simulate_refuses "$tmpdir/blend.model" \
    "invalid model: the sparse source's blend of strategies is not a set of pull shares"

# The filter refuses them at start-up, naming the parameter.
requires nbdsh --version
start_server src pattern 8M
for m in bs rate; do
    rm -f "$tmpdir/p.sock" "$tmpdir/d.img" "$tmpdir/d.img.state"
    if ! nbdkit_refuses "$tmpdir/log" -U "$tmpdir/p.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/d.img" \
        shadow-model="$tmpdir/$m.model"; then
        cat "$tmpdir/log"; echo "$0: the filter took $m.model"; exit 1
    fi
    cat "$tmpdir/log"
    grep error "$tmpdir/log" | grep -q "shadow-model: .*$m.model: invalid model"
done
