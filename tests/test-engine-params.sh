#!/usr/bin/env bash
# Engine parameters: bad values stop nbdkit with one clear error line;
# shadow-policy=none pulls nothing in the background; shadow-bandwidth
# caps the background copy.
source ./functions.sh
requires nbdsh --version

start_server src pattern 16M

for bad in shadow-inflight=0 shadow-inflight=x shadow-connections=16 \
           shadow-bandwidth=fast shadow-timeout=0 shadow-timeout=-1 \
           tls=maybe tls-verify=perhaps shadow-policy=random vsock=2; do
    rm -f "$tmpdir/bad.img" "$tmpdir/bad.sock"
    if ! nbdkit_refuses "$tmpdir/bad.log" -U "$tmpdir/bad.sock" --filter="$FILTER" \
        nbd socket="$tmpdir/src.sock" shadow-file="$tmpdir/bad.img" "$bad"; then
        echo "$0: nbdkit accepted $bad"; exit 1
    fi
    echo "$bad: $(cat "$tmpdir/bad.log")"
    grep -q "error" "$tmpdir/bad.log"
    test "$(grep -c error "$tmpdir/bad.log")" -eq 1
done

# Demand only: what the guest reads is fetched, nothing else.
start_shadow none src shadow-policy=none
nbdsh -u "$(uri none)" -c 'h.pread(65536, 1048576)'
sleep 2
test "$(json_get "$tmpdir/none.json" policy)" = none
test "$(json_get "$tmpdir/none.json" state)" = copying
test "$(json_get "$tmpdir/none.json" bytes_pulled)" -eq 0
test "$(json_get "$tmpdir/none.json" bytes_fetched)" -eq 65536
test "$(json_get "$tmpdir/none.json" blocks_present)" -eq 1

# 16M at 4 MiB/s.  The fingerprint's samples count against the cap too:
# the filter reads them (1M, kept as blocks) and the engine's connection
# again, so the link carries about 17M.  Less the burst the cap allows
# (one 2M pull, and one block over), that is 3.7 s at least.
start=$(date +%s.%N)
start_shadow capped src shadow-bandwidth=4M
wait_json "$tmpdir/capped.json" state complete 30
elapsed=$(echo "$(date +%s.%N) - $start" | bc -l)
echo "16M copied in $elapsed s with shadow-bandwidth=4M"
test "$(echo "$elapsed >= 3.6 && $elapsed < 15" | bc -l)" = 1
nbdsh -u "$(uri capped)" -c '
for off in range(0, 16 * 2**20, 2**20 + 8):
    assert int.from_bytes(h.pread(8, off - off % 8), "big") == off - off % 8'
