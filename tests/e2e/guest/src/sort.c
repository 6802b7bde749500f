/* The e2e guest's build workload: a heap sort. */
#include "demo.h"

static void
sift (int *v, size_t i, size_t n)
{
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      return;
    if (c + 1 < n && v[c + 1] > v[c])
      c++;
    if (v[i] >= v[c])
      return;
    int t = v[i]; v[i] = v[c]; v[c] = t;
    i = c;
  }
}

void
sort_ints (int *v, size_t n)
{
  for (size_t i = n / 2; i-- > 0; )
    sift (v, i, n);
  for (size_t e = n; e-- > 1; ) {
    int t = v[0]; v[0] = v[e]; v[e] = t;
    sift (v, 0, e);
  }
}
