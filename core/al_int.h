/* al_int.h -- what the core's files share and nobody else may use: the
 * libev callback behind the timer heap and the scheduler's tuning. */
#ifndef AL_INT_H
#define AL_INT_H

#include "al.h"

/* A busy loop polls libev without blocking at most this often (seconds),
 * reading the clock only every AL_CHECK_EVERY handles. */
#define AL_POLL_INTERVAL 1e-4
#define AL_CHECK_EVERY 32

/* libev callback of loop->heap_timer: post the handles of due timers. */
void al__timers_due(struct ev_loop *ev, ev_timer *w, int revents);

#endif
