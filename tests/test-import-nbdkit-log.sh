#!/bin/sh -
# A real log written by nbdkit's log filter imports to the requests the
# client made, and a flush, trim and zero keep their op letters.
. ./functions.sh
requires nbdkit --version
requires nbdsh --version
requires nbdkit --filter=log null --dump-plugin

nbdkit -U - --filter=log memory 1M logfile="$tmpdir/log" \
    --run 'nbdsh -u "$uri" -c "h.pread(4096, 0)" \
              -c "h.pwrite(b\"x\" * 512, 8192)" -c "h.flush()" \
              -c "h.trim(4096, 65536)" -c "h.zero(4096, 131072)"'
"$NBDSHADOW" import --format nbdkit-log "$tmpdir/log" -o "$tmpdir/out.csv"
cut -d, -f2- "$tmpdir/out.csv" > "$tmpdir/ops"
cat > "$tmpdir/expected" <<'END'
op,offset,length
R,0,4096
W,8192,512
F,0,0
T,65536,4096
Z,131072,4096
END
if ! cmp -s "$tmpdir/ops" "$tmpdir/expected"; then
    echo "$0: unexpected import of:"; cat "$tmpdir/log"
    diff "$tmpdir/expected" "$tmpdir/ops" || :
    exit 1
fi
# Timestamps keep the log's microseconds and never go backwards.
awk -F, 'NR > 2 && $1 < prev { exit 1 } { prev = $1 }' "$tmpdir/out.csv"
