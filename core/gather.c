/* gather.c -- one future over many children: it fails with the first child
 * that fails (unless errors are kept), else completes when all are done. */
#include "al.h"

static void child_done(al_waiter_t *w, al_future_t *child) {
  al_gather_t *g = ((struct al_gather_child *)(void *)w)->g;
  if (g->fut.state != AL_PENDING) {
    /* It already failed; the others kept running, and their errors count
     * as retrieved, as in asyncio. */
    child->flags |= AL_F_RETRIEVED;
    return;
  }
  g->pending--;
  if (child->state == AL_FAILED || child->state == AL_CANCELLED) {
    child->flags |= AL_F_RETRIEVED; /* the gather reports or keeps it */
    if (!g->return_exceptions) {
      g->failed = child;
      al_future_finish(&g->fut, AL_FAILED);
      return;
    }
  }
  if (g->pending > 0)
    return;
  /* Cancelled through the gather while every child ignored it: the gather
   * itself raises the cancellation, as asyncio's does. */
  al_future_finish(&g->fut, g->cancel_requested ? AL_CANCELLED : AL_DONE);
}

size_t al_gather_size(size_t n) {
  return sizeof(al_gather_t) + n * sizeof(struct al_gather_child);
}

void al_gather_init(al_gather_t *g, al_loop_t *loop, size_t n,
                    bool return_exceptions) {
  size_t i;
  al_future_init(&g->fut, loop, AL_KIND_GATHER);
  g->n = n;
  g->pending = n;
  g->failed = NULL;
  g->return_exceptions = return_exceptions;
  g->cancel_requested = false;
  for (i = 0; i < n; i++) {
    al_waiter_init(&g->children[i].w, child_done);
    g->children[i].g = g;
  }
  if (n == 0)
    al_future_finish(&g->fut, AL_DONE);
}

void al_gather_add(al_gather_t *g, size_t i, al_future_t *child) {
  if (child->state == AL_PENDING)
    al_future_add_waiter(child, &g->children[i].w);
  else
    child_done(&g->children[i].w, child);
}

void al_gather_destroy(al_gather_t *g) {
  size_t i;
  for (i = 0; i < g->n; i++)
    al_waiter_remove(&g->children[i].w);
  al_future_destroy(&g->fut);
}
