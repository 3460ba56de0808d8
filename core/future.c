/* future.c -- futures: a state, waiters told in order on completion, and
 * cancellation dispatched by kind (plain future, task, gather). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "al_int.h"

void al_future_init(al_future_t *f, al_loop_t *loop, int kind) {
  f->loop = loop;
  al_list_init(&f->waiters.head);
  f->cancel = NULL;
  f->kind = (unsigned char)kind;
  f->state = AL_PENDING;
  f->flags = 0;
  f->cancel_walk = 0;
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
  free(f->cancel);
  f->cancel = NULL;
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

void al_future_set_msg(al_future_t *f, const char *msg, size_t len) {
  al_msg_t *copy = NULL;
  if (msg && f->cancel && msg == f->cancel->bytes)
    return; /* its own message, passed back to it */
  if (msg) {
    copy = al__xmalloc(sizeof *copy + len + 1);
    copy->len = len;
    memcpy(copy->bytes, msg, len);
    copy->bytes[len] = '\0';
  }
  free(f->cancel);
  f->cancel = copy;
}

/* The cancel walk: a stack of futures still to visit, on the C stack while
 * it is small. */
typedef struct walk {
  al_future_t **items, *local[32];
  size_t n, cap;
} walk;

static void walk_push(walk *w, al_future_t *f) {
  if (w->n == w->cap) {
    size_t cap = 2 * w->cap;
    al_future_t **items = al__xrealloc(w->items == w->local ? NULL : w->items,
                                       cap * sizeof *items);
    if (w->items == w->local)
      memcpy(items, w->local, w->n * sizeof *items);
    w->items = items;
    w->cap = cap;
  }
  w->items[w->n++] = f;
}

static void gather_cancel(walk *w, al_gather_t *g) {
  size_t i = g->n;
  g->cancel_requested = true; /* first: a child may complete it at once */
  while (i-- > 0) { /* pushed last to first: visited in order */
    /* linked while the child is pending: its list is the child's */
    al_future_t *child = (al_future_t *)(void *)g->children[i].w.owner;
    if (child)
      walk_push(w, child);
  }
}

bool al_future_cancel(al_future_t *f, const char *msg) {
  return al_future_cancel_n(f, msg, msg ? strlen(msg) : 0);
}

bool al_future_cancel_n(al_future_t *f, const char *msg, size_t len) {
  walk w;
  unsigned mark;
  if (f->state != AL_PENDING)
    return false;
  mark = ++f->loop->cancel_walks;
  if (mark == 0) /* 0 is "never seen" */
    mark = ++f->loop->cancel_walks;
  w.items = w.local;
  w.n = 0;
  w.cap = sizeof w.local / sizeof w.local[0];
  walk_push(&w, f);
  while (w.n > 0) {
    f = w.items[--w.n];
    if (f->state != AL_PENDING)
      continue; /* done meanwhile: nothing to cancel */
    if (f->cancel_walk == mark) {
      if (f->kind == AL_KIND_TASK)
        al__task_cancel_cycle((al_task_t *)f);
      continue;
    }
    f->cancel_walk = mark;
    switch (f->kind) {
    case AL_KIND_TASK: {
      al_future_t *next = al__task_cancel_one((al_task_t *)f, msg, len);
      if (next)
        walk_push(&w, next);
      break;
    }
    case AL_KIND_GATHER:
      gather_cancel(&w, (al_gather_t *)f);
      break;
    default:
      /* A plain future keeps the message only if its owner frees it; the
       * cancelled task that passed it on keeps it too. */
      if (f->flags & AL_F_KEEP_MSG)
        al_future_set_msg(f, msg, len);
      al_future_finish(f, AL_CANCELLED);
      break;
    }
  }
  if (w.items != w.local)
    free(w.items);
  return true;
}
