/* The source's fingerprint: which bytes are sampled, and their digest.
 * See identity.h for why samples spread over the disk.
 */

#include <string.h>

#include <openssl/evp.h>

#include "identity.h"

#define ALIGN 4096

unsigned
identity_plan (uint64_t size, struct identity_sample *out)
{
  unsigned n = 0;
  uint64_t end = 0;             /* where the last sample ended */

  for (unsigned i = 0; i < IDENTITY_MAX_SAMPLES; i++) {
    uint64_t off;
    if (i + 1 < IDENTITY_MAX_SAMPLES)
      off = (size / (IDENTITY_MAX_SAMPLES - 1)) * i;
    else                        /* the disk's last bytes */
      off = size > IDENTITY_SAMPLE_BYTES ? size - IDENTITY_SAMPLE_BYTES : 0;
    off &= ~(uint64_t) (ALIGN - 1);
    if (off < end)              /* a small disk: samples would overlap */
      off = end;
    if (off >= size)
      continue;
    uint64_t len = size - off < IDENTITY_SAMPLE_BYTES ? size - off
                                                      : IDENTITY_SAMPLE_BYTES;
    out[n].offset = off;
    out[n].length = len;
    end = off + len;
    n++;
  }
  return n;
}

uint64_t
identity_bytes (const struct identity_sample *s, unsigned n)
{
  uint64_t total = 0;
  for (unsigned i = 0; i < n; i++)
    total += s[i].length;
  return total;
}

void
identity_digest (uint64_t size, const struct identity_sample *s, unsigned n,
                 const void *data, unsigned char out[32])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  const unsigned char *p = data;

  EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);
  EVP_DigestUpdate (ctx, &size, sizeof size);
  for (unsigned i = 0; i < n; i++) {
    EVP_DigestUpdate (ctx, &s[i].offset, sizeof s[i].offset);
    EVP_DigestUpdate (ctx, &s[i].length, sizeof s[i].length);
    EVP_DigestUpdate (ctx, p, s[i].length);
    p += s[i].length;
  }
  EVP_DigestFinal_ex (ctx, out, NULL);
  EVP_MD_CTX_free (ctx);
}
