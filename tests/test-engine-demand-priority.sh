#!/usr/bin/env bash
# Demand reads go first on a link shared with the background copy: no
# pull is sent while a guest's read of an absent block waits for the
# source or is in flight (the stats file's pull_bytes_under_demand),
# while the copy itself goes on between them; and the demand reads
# return the source's bytes.
source ./functions.sh
requires /usr/bin/python3 -c 'import nbd'

# A slow link (2 ms each way, 200 Mbit/s): the copy of 1 GiB lasts far
# longer than the reads, so they all meet pulls on the link.
start_server src -t 64 --filter=delay --filter=rate pattern 1G \
    rdelay=2ms rate=200M burstiness=0.01
start_shadow sh src shadow-policy=sequential
wait_json "$tmpdir/sh.json" state copying

cat > "$tmpdir/reader.py" <<'PY'
# 40 reads of 4K in distinct blocks of the upper half, 20 ms apart;
# the pattern plugin's every 8 bytes hold their own offset.
import nbd, random, struct, sys, time
h = nbd.NBD(); h.connect_uri(sys.argv[1])
size = h.get_size(); block = 65536
rng = random.Random(7)
for b in rng.sample(range(size // block // 2, size // block), 40):
    off = b * block + rng.randrange(0, block - 4096, 512)
    data = h.pread(4096, off)
    want = b"".join(struct.pack(">Q", off + i) for i in range(0, 4096, 8))
    if data != want:
        sys.exit("wrong data at %d" % off)
    time.sleep(0.02)
PY
/usr/bin/python3 "$tmpdir/reader.py" "$(uri sh)"
sleep 1.2                       # the stats file is rewritten every second

cat "$tmpdir/sh.json"
test "$(json_get "$tmpdir/sh.json" state)" = copying
test "$(json_get "$tmpdir/sh.json" stalls)" -ge 40
test "$(json_get "$tmpdir/sh.json" bytes_pulled)" -gt 0
test "$(json_get "$tmpdir/sh.json" pull_bytes_under_demand)" -eq 0
