/* The state file's on-disk format, shared by statefile.c (header,
 * bitmap, journal, checkpoints) and session.c (session records).  See
 * statefile.c for the layout and why it is crash-safe.
 */

#ifndef NBDSHADOW_STATEFILE_H
#define NBDSHADOW_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

/* Every format has this magic; the version says which format it is. */
#define STATE_MAGIC "NBDSHST1"
#define STATE_VERSION 2
#define JOURNAL_MAGIC "NBDSHJ02"
#define SESSION_MAGIC "NBDSHSE2"
#define STATE_PAGE 4096
#define STATE_SESSION_PAGE 1    /* and the next one: two slots */
#define STATE_BITMAP_PAGE 3

struct state_header {
  char magic[8];
  uint32_t version;
  uint32_t block_size;
  uint64_t disk_size;
  uint64_t nblocks;
  uint64_t bitmap_offset;
  uint64_t bitmap_bytes;
  uint64_t journal_offset;
  uint32_t journal_slot_bytes;
  uint32_t max_partial;
  uint32_t page_words;
  uint32_t reserved;
  unsigned char state_id[16];   /* random: ties pages and records to this file */
  unsigned char fingerprint[32];  /* the source's (identity.h) */
  char source_id[SHADOW_SOURCE_ID_MAX + 1];  /* shadow-source-id or "" */
  unsigned char checksum[32];   /* SHA-256 of everything above */
};

struct bitmap_page {
  uint64_t bits[SHADOW_PAGE_WORDS];
  uint64_t index;               /* which page this is */
  uint64_t reserved;
  unsigned char state_id[16];
  unsigned char checksum[32];   /* SHA-256 of everything above */
};
_Static_assert (sizeof (struct bitmap_page) == STATE_PAGE,
                "a bitmap page is one page");

extern struct state_header state_header;

extern void state_sha256 (const void *data, size_t len, unsigned char out[32]);
extern int state_pread (int fd, void *buf, size_t len, uint64_t off);
extern int state_pwrite (int fd, const void *buf, size_t len, uint64_t off);

/* session.c */
extern int session_write_new (void);
extern int session_load (void);

#endif /* NBDSHADOW_STATEFILE_H */
