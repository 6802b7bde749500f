# fault-guest.py URI REF SEED SECONDS [OPS_PER_S]: a guest for the fault
# tests, at most OPS_PER_S requests a second (default 100).
#
# Random reads (unaligned, any size up to 256K) checked against REF, a
# raw image of what the disk must hold, and random sector-aligned writes
# (which never need the old data, so a failing source cannot fail them)
# applied to REF as well, then a flush.  A read may fail (the source
# failed or went away: the guest gets EIO) but must never return wrong
# bytes.  Prints "R reads (E failed), W writes, 0 wrong" and exits 1 on
# any wrong byte or failed write.
import os, random, sys, time
import nbd

uri, ref_path, seed, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rate = float(sys.argv[5]) if len(sys.argv) > 5 else 100
rnd = random.Random(seed)
h = nbd.NBD()
h.connect_uri(uri)
size = h.get_size()
ref = os.open(ref_path, os.O_RDWR)
reads = failed = writes = wrong = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    time.sleep(1 / rate)
    if rnd.random() < 0.3:
        n = rnd.randint(1, 128) * 512
        off = rnd.randrange(0, size - n, 512)
        data = rnd.randbytes(n)
        h.pwrite(data, off)
        os.pwrite(ref, data, off)
        writes += 1
        if rnd.random() < 0.1:
            h.flush()
    else:
        n = rnd.randint(1, 256 * 1024)
        off = rnd.randrange(0, size - n)
        try:
            got = h.pread(n, off)
        except nbd.Error:
            failed += 1
            continue
        reads += 1
        if got != os.pread(ref, n, off):
            wrong += 1
            print("wrong bytes read at %d (%d bytes)" % (off, n))
h.flush()
print("%d reads (%d failed), %d writes, %d wrong" % (reads + failed, failed, writes, wrong))
sys.exit(1 if wrong else 0)
