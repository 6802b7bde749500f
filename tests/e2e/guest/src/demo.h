/* The e2e guest's build workload: shared declarations. */
#include <stddef.h>
#include <stdint.h>

uint32_t crc32_buf (const unsigned char *p, size_t n);
void sort_ints (int *v, size_t n);
size_t count_words (const char *s);
