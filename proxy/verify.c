/* Re-identifying the source on every connection.
 *
 * The engine reconnects by itself when the source drops.  What answers
 * at the same address afterwards may be another disk (of the same size:
 * a different size is refused by handle_check); pulling from it would
 * finish the copy with half of one disk and half of the other.  So once
 * the owner has told the engine the source's fingerprint
 * (engine_set_identity), a connection that comes up reads the samples of
 * identity.h before it carries anything, and goes into use only if they
 * hash to the same fingerprint.  Otherwise it is closed and retried with
 * the usual backoff: the right disk may come back.  A sample the source
 * fails to read is asked again a few times on the same connection (a
 * flaky source would hardly ever answer 17 reads in a row).  Engine
 * thread only.
 */

#define VERIFY_TRIES 8

#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"

static void
send_sample (struct conn *c, uint64_t offset, uint32_t count, char *buf,
             unsigned tries)
{
  struct op *op = op_new (c->e, OP_VERIFY, 0);
  if (op == NULL) {
    c->verify_failed = true;
    return;
  }
  op->offset = offset;
  op->count = count;
  op->buf = buf;
  op->seq = c->attempt;
  op->tries = tries;
  c->verify_pending++;
  pacer_charge (&c->e->pacer, count);
  op_send (c, op);              /* may close c: the op still comes back */
}

/* Read the samples on c; it stays out of use until they are in. */
void
verify_start (struct conn *c)
{
  struct engine *e = c->e;
  uint64_t off = 0;

  c->state = CONN_VERIFYING;
  c->attempt++;
  c->verify_failed = false;
  c->verify_pending = 0;
  update_connected (e);
  free (c->verify_buf);
  c->verify_buf = malloc (identity_bytes (e->samples, e->nsamples) + 1);
  if (c->verify_buf == NULL) {
    conn_down (c, "out of memory for its fingerprint");
    return;
  }
  for (unsigned i = 0; i < e->nsamples && c->nbd; i++) {
    send_sample (c, e->samples[i].offset, e->samples[i].length,
                 c->verify_buf + off, 1);
    off += e->samples[i].length;
  }
  if (c->verify_pending == 0 && c->state == CONN_VERIFYING)
    conn_down (c, "cannot read its fingerprint");
}

/* A sample read came back (op is freed by the caller). */
void
verify_done (struct engine *e, struct op *op)
{
  struct conn *c = op->conn;
  unsigned char digest[32];

  if (op->seq != c->attempt || c->state != CONN_VERIFYING)
    return;                     /* a connection that is gone already */
  c->verify_pending--;
  if (op->error && !lost_connection (op) && op->tries < VERIFY_TRIES)
    send_sample (c, op->offset, op->count, op->buf, op->tries + 1);
  else if (op->error)
    c->verify_failed = true;
  if (c->verify_pending > 0 || c->state != CONN_VERIFYING)
    return;
  if (c->verify_failed) {
    conn_down (c, "cannot read its fingerprint");
    return;
  }
  identity_digest (e->size, e->samples, e->nsamples, c->verify_buf, digest);
  free (c->verify_buf);
  c->verify_buf = NULL;
  if (memcmp (digest, e->identity, sizeof digest) != 0) {
    if (!c->refused_other)
      say (e, true, "the source on connection %u is another disk now (its "
           "sampled blocks differ from the shadow's source): refusing it, "
           "retrying until the right disk is back", c->index);
    c->refused_other = true;
    conn_down (c, "another disk");
    return;
  }
  if (c->refused_other)
    say (e, true, "the source on connection %u is the right disk again",
         c->index);
  c->refused_other = false;
  conn_ready (c);
}

/* The fingerprint is known now: connections already up show it too. */
void
verify_all (struct engine *e)
{
  for (unsigned i = 0; i < e->nconns; i++)
    if (e->conns[i].state == CONN_READY)
      verify_start (&e->conns[i]);
}
