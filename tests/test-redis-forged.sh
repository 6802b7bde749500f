#!/usr/bin/env bash
# Metadata forged in Redis changes nothing the guest reads: with every
# coverage bit set (and progress and state claiming the copy is done)
# for a shadow that holds nothing yet, every byte read through the
# filter is still the source's -- also after the filter restarts with
# the forged data in Redis -- because the filter never reads its mirror
# back.  Its next full write puts the truth back.
source ./functions.sh
source ./redis-functions.sh

start_source_and_redis $((8 * 1024 * 1024))

forge ()
{
    rcli r SET 'nbdshadow:{vm1}:coverage' \
        "$(head -c $((nblocks / 8)) /dev/zero | tr '\0' '\377')" >/dev/null
    rcli r HSET 'nbdshadow:{vm1}:progress' blocks_present $nblocks coverage 1 >/dev/null
    rcli r HSET 'nbdshadow:{vm1}:info' state complete >/dev/null
    test "$(rcli r BITCOUNT 'nbdshadow:{vm1}:coverage')" -eq $nblocks
}

# Demand fetches only: nothing is local but what the guest reads.
start_mirrored sh vm1 shadow-policy=none
forge
stop_server sh
# Restarted with the forgery in Redis, and forged again once it is up.
start_mirrored sh vm1 shadow-policy=none
wait_rcli r 0 5 BITCOUNT 'nbdshadow:{vm1}:coverage'
forge
sleep 0.5
test "$(json_get "$tmpdir/sh.json" blocks_present)" -eq 0

nbdcopy "$(uri sh)" "$tmpdir/out.img"
cmp "$tmpdir/src.img" "$tmpdir/out.img"
# Every byte came from the source (the stats file is rewritten once a
# second: it may not count nbdcopy's last reads yet).
wait_json "$tmpdir/sh.json" bytes_fetched $size 10
