#!/usr/bin/env bash
# The mirror's ETA while the source is still being mapped: unknown (-1),
# not the blocks left over the rate.  Until the map is complete the
# blocks not local yet include holes that cost no transfer; a guest's
# reads during the mapping give a rate, and the ETA counted every hole
# at it.  The source (32 GiB, all holes) answers its block status
# questions only after a minute, so the mapping is still going on when
# the guest has read and the mirror has measured the rate.
source ./functions.sh
source ./redis-functions.sh

start_server src -r --filter=delay memory 32G delay-extents=60
start_redis r
start_mirrored sh vm-map shadow-policy=sequential
key='nbdshadow:{vm-map}'

# The guest reads 4 MiB from the source (demand fetches).
nbdsh -u "$(uri sh)" -c 'assert h.pread(4 << 20, 0) == bytes(4 << 20)'
for _ in $(seq 100); do
    rate=$(rcli r HGET "$key:progress" rate_bytes_per_s)
    [ "${rate:-0}" -gt 0 ] && break
    sleep 0.1
done
present=$(rcli r HGET "$key:progress" blocks_present)
eta=$(rcli r HGET "$key:progress" eta_s)
echo "mapping: $present of $((32 * 16384)) blocks local, $rate bytes/s, eta $eta"
test "$rate" -gt 0
test "$present" -lt $((32 * 16384))
test "$eta" -eq -1
