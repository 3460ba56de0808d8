/* future.c -- futures: a state, waiters told in order on completion, and
 * cancellation dispatched by kind (plain future, task, gather). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "al.h"

void al_future_init(al_future_t *f, al_loop_t *loop, int kind) {
  f->loop = loop;
  al_list_init(&f->waiters.head);
  f->cancel_msg = NULL;
  f->kind = (unsigned char)kind;
  f->state = AL_PENDING;
  f->flags = 0;
}

void al_waiter_init(al_waiter_t *w, al_waiter_cb cb) {
  w->link.next = w->link.prev = NULL;
  w->owner = NULL;
  w->cb = cb;
}

void al_wlist_init(al_wlist_t *l) { al_list_init(&l->head); }


void al_future_add_waiter(al_future_t *f, al_waiter_t *w) {
  al_wlist_append(&f->waiters, w);
}

void al_future_destroy(al_future_t *f) {
  al_waiter_t *w;
  while ((w = al_wlist_first(&f->waiters)) != NULL)
    al_waiter_remove(w);
  if (f->cancel_msg) {
    free(f->cancel_msg);
    f->cancel_msg = NULL;
  }
}

void al_future_finish(al_future_t *f, int state) {
  al_waiter_t *w;
  f->state = (unsigned char)state;
  /* A callback may link or unlink other waiters: always take the head. */
  while ((w = al_wlist_first(&f->waiters)) != NULL) {
    al_waiter_remove(w);
    w->cb(w, f);
  }
}

void al_future_set_msg(al_future_t *f, const char *msg) {
  char *copy = NULL;
  if (msg) {
    size_t n = strlen(msg) + 1;
    copy = malloc(n);
    if (!copy) {
      fputs("aloop: out of memory\n", stderr);
      abort();
    }
    memcpy(copy, msg, n);
  }
  free(f->cancel_msg);
  f->cancel_msg = copy;
}

static bool gather_cancel(al_gather_t *g, const char *msg) {
  bool any = false, before = g->cancel_requested;
  size_t i;
  /* Set first: a child may complete, and the gather with it, at once. */
  g->cancel_requested = true;
  for (i = 0; i < g->n; i++) {
    /* linked while the child is pending: its list is the child's */
    al_future_t *child = (al_future_t *)(void *)g->children[i].w.owner;
    if (child && al_future_cancel(child, msg))
      any = true;
  }
  if (!any)
    g->cancel_requested = before;
  return any;
}

bool al_future_cancel(al_future_t *f, const char *msg) {
  if (f->state != AL_PENDING)
    return false;
  switch (f->kind) {
  case AL_KIND_TASK:
    return al_task_cancel((al_task_t *)f, msg);
  case AL_KIND_GATHER:
    return gather_cancel((al_gather_t *)f, msg);
  default:
    /* A plain future keeps the message only if its owner frees it; the
     * cancelled task that passed it on keeps it too. */
    if (f->flags & AL_F_KEEP_MSG)
      al_future_set_msg(f, msg);
    al_future_finish(f, AL_CANCELLED);
    return true;
  }
}
