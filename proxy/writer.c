/* The writer threads: pulled data goes to the owner's end_pull (the
 * write into the shadow) off the engine thread, and the pulls come back
 * to it once written, their buffers to be recycled (engine-internal.h
 * says why).  With no writer thread the engine thread writes.
 */

#include <stdlib.h>

#include "engine-internal.h"

char *
buf_get (struct engine *e)
{
  if (e->buf_pool_len)
    return e->buf_pool[--e->buf_pool_len];
  return malloc (e->max_pull);
}

void
buf_put (struct engine *e, char *buf)
{
  if (e->buf_pool_len < e->params.inflight)
    e->buf_pool[e->buf_pool_len++] = buf;
  else
    free (buf);
}

/* Hand a pull's blocks to the owner: the data, or the error. */
void
write_pull (struct engine *e, struct op *op)
{
  e->ops.end_pull (e->ops.opaque, op->claims, op->nclaims,
                   op->error ? NULL : op->buf, op->error);
}

/* A pull is over, written or failed: it leaves the window. */
void
retire_pull (struct engine *e, struct op *op)
{
  e->pulls_inflight--;
  buf_put (e, op->buf);
  free (op);
}

static void *
writer_thread (void *arg)
{
  struct engine *e = arg;

  pthread_mutex_lock (&e->lock);
  for (;;) {
    struct op *op = e->to_write;
    if (op == NULL) {
      if (e->writers_stop)
        break;
      pthread_cond_wait (&e->write_cond, &e->lock);
      continue;
    }
    if ((e->to_write = op->next) == NULL)
      e->to_write_tail = &e->to_write;
    pthread_mutex_unlock (&e->lock);
    write_pull (e, op);
    pthread_mutex_lock (&e->lock);
    op->next = e->written;
    e->written = op;
    ev_async_send (e->loop, &e->wake);
  }
  pthread_mutex_unlock (&e->lock);
  return NULL;
}

/* Retire what the writers are done with.  Engine thread. */
void
collect_written (struct engine *e)
{
  struct op *op;

  pthread_mutex_lock (&e->lock);
  op = e->written;
  e->written = NULL;
  pthread_mutex_unlock (&e->lock);
  while (op) {
    struct op *next = op->next;
    retire_pull (e, op);
    op = next;
  }
}


/* Hand a pull with its data to the writers, in order. */
void
queue_write (struct engine *e, struct op *op)
{
  pthread_mutex_lock (&e->lock);
  op->next = NULL;
  *e->to_write_tail = op;
  e->to_write_tail = &op->next;
  pthread_cond_signal (&e->write_cond);
  pthread_mutex_unlock (&e->lock);
}

/* Engine thread, at its start: as many writers as can be started. */
void
writers_start (struct engine *e)
{
  while (e->nwriters < WRITERS &&
         pthread_create (&e->writers[e->nwriters], NULL, writer_thread, e) == 0)
    e->nwriters++;
  if (e->nwriters < WRITERS)
    say (e, false, "started %u of %u writer threads", e->nwriters, WRITERS);
}

/* Engine thread, stopping: the writers finish what they have (the
 * blocks become local) and end.
 */
void
writers_stop (struct engine *e)
{
  pthread_mutex_lock (&e->lock);
  e->writers_stop = true;
  pthread_cond_broadcast (&e->write_cond);
  pthread_mutex_unlock (&e->lock);
  for (unsigned i = 0; i < e->nwriters; i++)
    pthread_join (e->writers[i], NULL);
  e->nwriters = 0;
}
