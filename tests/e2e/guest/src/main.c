/* The e2e guest's build workload: runs the pieces on generated data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "demo.h"

int
main (void)
{
  enum { N = 100000 };
  static int v[N];
  static unsigned char buf[N];

  srand (1);
  for (size_t i = 0; i < N; i++) {
    v[i] = rand ();
    buf[i] = (unsigned char) v[i];
  }
  sort_ints (v, N);
  for (size_t i = 1; i < N; i++)
    if (v[i - 1] > v[i])
      return 1;
  printf ("crc %08x words %zu sqrt %.3f\n", (unsigned) crc32_buf (buf, N),
          count_words ("a small program built in the guest"), sqrt ((double) N));
  return 0;
}
