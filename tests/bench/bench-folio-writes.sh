#!/usr/bin/env bash
# Benchmark (on demand): why the filter installs fetched data in 16K
# pieces (plugin/store.c).  The page cache keeps file data in folios as
# large as the writes that brought it (ext4, Linux 6.16+), and a 4K
# write into a large folio costs more.  A C loop writes SIZE of a file
# in pieces of each size (in 2 MiB stretches, as pulls come, starting
# writeback every 32 MiB as the filter does), syncs, then times 4K
# random pwrites over it.  CPU is this process's user+system time, the
# least noisy measure on a shared machine.
#
#   cd tests && bench/bench-folio-writes.sh        # SIZE=1G WRITES=50000 ROUNDS=3
source "$(dirname "$0")/../functions.sh"
requires cc --version

size=$(numfmt --from=iec "${SIZE:-1G}")
writes=${WRITES:-50000}
rounds=${ROUNDS:-3}

cat > "$tmpdir/folio.c" <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

static double
cpu (void)
{
  struct rusage u;
  getrusage (RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
    (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

int
main (int argc, char **argv)
{
  size_t size = strtoull (argv[2], NULL, 0), piece = strtoull (argv[3], NULL, 0);
  int writes = atoi (argv[4]);
  size_t stretch = 2 << 20;
  char *buf = malloc (stretch);
  int fd = open (argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  double c0, install, w;

  memset (buf, 7, stretch);
  c0 = cpu ();
  for (size_t o = 0; o < size; o += stretch) {
    for (size_t p = 0; p < stretch; p += piece)
      if (pwrite (fd, buf + p, piece, o + p) != (ssize_t) piece)
        return 1;
    if (o % (32 << 20) == 0)
      sync_file_range (fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  install = cpu () - c0;
  fdatasync (fd);
  srand (1);
  c0 = cpu ();
  for (int i = 0; i < writes; i++)
    if (pwrite (fd, buf, 4096, (off_t) (rand () % (size / 4096)) * 4096) != 4096)
      return 1;
  w = cpu () - c0;
  printf ("%.3f %.2f\n", install * (1 << 30) / size, w / writes * 1e6);
  close (fd);
  unlink (argv[1]);
  return 0;
}
C
cc -O2 -o "$tmpdir/folio" "$tmpdir/folio.c"

pieces="4096 16384 65536 2097152"
for r in $(seq "$rounds"); do
    for p in $pieces; do
        "$tmpdir/folio" "$tmpdir/f.img" "$size" "$p" "$writes" >> "$tmpdir/r.$p"
    done
done

median () { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "$(numfmt --to=iec "$size") written in pieces, then $writes 4K random pwrites; $rounds interleaved rounds (median)"
printf '%-10s %22s %24s\n' piece "install CPU-s per GiB" "CPU us per 4K write"
for p in $pieces; do
    printf '%-10s %22s %24s\n' "$(numfmt --to=iec $p)" \
        "$(awk '{ print $1 }' "$tmpdir/r.$p" | median)" \
        "$(awk '{ print $2 }' "$tmpdir/r.$p" | median)"
done
