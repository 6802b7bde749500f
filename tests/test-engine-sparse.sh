#!/usr/bin/env bash
# A sparse 64 GiB disk (about 100 MB of data): the engine asks the
# source for its allocation (base:allocation) and transfers only the
# data; holes become holes in the shadow.  The copy equals the source.
source ./functions.sh
requires qemu-img --version
requires nbdinfo --version

start_server src sparse-random 64G seed=4242 percent=0.25
start_shadow sh src
wait_json "$tmpdir/sh.json" state complete 120
wait_json "$tmpdir/sh.json" source detached 10
cat "$tmpdir/sh.json"

# Equal to the source (qemu-img compares holes by block status).
qemu-img compare -f raw -F raw "$tmpdir/sh.img" "$(uri src)"

# Holes were not transferred: the blocks counted as holes are exactly
# the source's fully unallocated 64K blocks, and the shadow stays sparse.
data=$(nbdinfo --map "$(uri src)" |
       awk '$3 == 0 { n += int(($1 + $2 + 65535) / 65536) - int($1 / 65536) }
            END { print n }')
holes=$(json_get "$tmpdir/sh.json" hole_blocks)
echo "source data blocks: $data, hole blocks: $holes"
test $((data + holes)) -eq "$(json_get "$tmpdir/sh.json" blocks_total)"
used=$(du -B1 "$tmpdir/sh.img" | cut -f1)
test "$used" -le $(((data + 16) * 65536))

# Extents of the finished shadow report the holes too.
nbdinfo --map "$(uri sh)" | awk '$3 == 3 { h += $2 } END { exit !(h > 60 * 2^30) }'
