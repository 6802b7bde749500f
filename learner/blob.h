/* blob.h: little helpers to write and read the model file's payload.
 * Numbers are stored in the host's byte order (x86-64 and aarch64 are
 * both little-endian); the model header records it via a magic number.
 * A reader never reads past the end: a truncated payload sets ->bad. */
#ifndef NBDSHADOW_BLOB_H
#define NBDSHADOW_BLOB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct blob_writer {
  uint8_t *data;
  size_t len, cap;
  int oom;
};

struct blob_reader {
  const uint8_t *p;
  size_t left;
  int bad;
};

static inline void
blob_put (struct blob_writer *w, const void *src, size_t n)
{
  if (w->oom)
    return;
  if (w->len + n > w->cap) {
    size_t cap = (w->len + n) * 2;
    uint8_t *d = realloc (w->data, cap);
    if (!d) {
      w->oom = 1;
      return;
    }
    w->data = d;
    w->cap = cap;
  }
  memcpy (w->data + w->len, src, n);
  w->len += n;
}

static inline void
blob_get (struct blob_reader *r, void *dst, size_t n)
{
  if (r->bad || n > r->left) {
    r->bad = 1;
    memset (dst, 0, n);
    return;
  }
  memcpy (dst, r->p, n);
  r->p += n;
  r->left -= n;
}

/* A count of N items of SIZE bytes that must still fit in the payload:
 * refuses absurd counts before anything is allocated for them. */
static inline uint64_t
blob_get_count (struct blob_reader *r, size_t size)
{
  uint64_t n;
  blob_get (r, &n, sizeof n);
  if (size && n > r->left / size) {
    r->bad = 1;
    return 0;
  }
  return n;
}

#define BLOB_PUT(w, v) blob_put ((w), &(v), sizeof (v))
#define BLOB_GET(r, v) blob_get ((r), &(v), sizeof (v))

#endif
