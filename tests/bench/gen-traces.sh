#!/bin/sh -
# Synthetic history/future pairs that stress the choice between pull
# strategies (docs/PREDICTION.md), deterministic (a Park-Miller generator
# inside awk: the same files on every awk).  Writes canonical trace CSVs
# into DIR:
#   vmboot-h.csv vmboot-f.csv   a VM that boots, runs services and a batch
#                               job twice: the future repeats the history
#                               with a few files changed
#   halfnew-h.csv halfnew-f.csv a future half made of history blocks, half
#                               of blocks the history never saw (near its
#                               busy places)
#   shift-h.csv shift-f.csv     a future that re-reads the history's data
#                               for its first half, then reads the data
#                               next to it, which the history never touched
# Usage: gen-traces.sh DIR
set -eu

dir=${1:?usage: gen-traces.sh DIR}
mkdir -p "$dir"

awk -v dir="$dir" '
function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
function irand(n) { return int(rnd() * n) }
# One request at the current time; BS-sized units are blocks of 64 KiB.
function req(file, op, block, len) {
    printf "%d,%s,%d,%d\n", now, op, block * 65536 + irand(16) * 4096, len > file
    now += gap * (0.5 + rnd())
}
# A file layout: NF_ files of 1..16 blocks in the first SPAN blocks.
function layout(prefix, nfiles, base, span,    i) {
    for (i = 0; i < nfiles; i++) {
        fstart[prefix, i] = base + irand(span)
        flen[prefix, i] = 1 + irand(16)
    }
}
function read_file(file, prefix, i,    b) {
    for (b = 0; b < flen[prefix, i]; b++)
        req(file, "R", fstart[prefix, i] + b, 65536)
}
# Boot: the same files in the same order; CHANGED of every 1000 replaced.
function boot(file, changed,    i) {
    for (i = 0; i < 600; i++)
        if (irand(1000) < changed)
            read_file(file, "alt", i)
        else
            read_file(file, "os", i)
}
# Services: random small reads over the boot files, log writes.
function services(file, n,    k, i) {
    for (k = 0; k < n; k++) {
        i = irand(600)
        if (irand(4) == 0)
            req(file, "W", 60000 + irand(200), 4096)
        else
            req(file, "R", fstart["os", i] + irand(flen["os", i]), 8192)
    }
}
# Batch: archive the /usr files in order, write the archive.
function batch(file,    i, b, out) {
    out = 40000
    for (i = 0; i < 400; i++) {
        for (b = 0; b < flen["usr", i]; b++) {
            req(file, "R", fstart["usr", i] + b, 65536)
            if (irand(2) == 0)
                req(file, "W", out++, 65536)
        }
    }
}
# N random reads in the even-numbered of the first 2 * PAIRS /usr
# files, in both, or in the even ones for the first half and the odd
# ones for the second.
function usr_reads(file, n, pairs, which,    k, i) {
    for (k = 0; k < n; k++) {
        i = 2 * irand(pairs)
        if (which == "both")
            i += irand(2)
        else if (which == "even-then-odd")
            i += k >= n / 2
        req(file, "R", fstart["usr", i] + irand(flen["usr", i]), 16384)
    }
}
BEGIN {
    seed = 12345
    layout("os", 600, 0, 8000)
    layout("alt", 600, 8000, 4000)
    layout("usr", 400, 12000, 20000)

    # vmboot: run 1 = history, run 2 = future.
    f = dir "/vmboot-h.csv"; print "ts_us,op,offset,length" > f
    now = 0; gap = 400
    boot(f, 0); services(f, 8000); batch(f)
    f = dir "/vmboot-f.csv"; print "ts_us,op,offset,length" > f
    now += 5000000
    boot(f, 30); services(f, 8000); batch(f)

    # halfnew: history over half the files; the future re-reads them and
    # reads their unread neighbours.
    f = dir "/halfnew-h.csv"; print "ts_us,op,offset,length" > f
    now = 0; gap = 300
    usr_reads(f, 15000, 300, "even")
    f = dir "/halfnew-f.csv"; print "ts_us,op,offset,length" > f
    usr_reads(f, 15000, 300, "both")

    # shift: the history reads half the files; the future re-reads them,
    # then reads the other half.
    f = dir "/shift-h.csv"; print "ts_us,op,offset,length" > f
    now = 0; gap = 300
    usr_reads(f, 15000, 200, "even")
    f = dir "/shift-f.csv"; print "ts_us,op,offset,length" > f
    usr_reads(f, 15000, 200, "even-then-odd")
}'
