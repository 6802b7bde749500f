/* The e2e guest's build workload: a table-driven CRC-32. */
#include "demo.h"

uint32_t
crc32_buf (const unsigned char *p, size_t n)
{
  static uint32_t table[256];
  uint32_t c = 0xffffffff;

  if (table[1] == 0)
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t t = i;
      for (int k = 0; k < 8; k++)
        t = t & 1 ? 0xedb88320 ^ (t >> 1) : t >> 1;
      table[i] = t;
    }
  while (n--)
    c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffff;
}
