/* tap.h -- the TAP output of the C tests: CHECK(cond, name) prints one
 * "ok N - name" or "not ok N - name (file:line)" line; main prints the plan
 * and exits non-zero when anything failed. */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>

static int failures, count;

#define CHECK(cond, name)                                                     \
  do {                                                                        \
    count++;                                                                  \
    if (cond) {                                                               \
      printf("ok %d - %s\n", count, name);                                    \
    } else {                                                                  \
      printf("not ok %d - %s (%s:%d)\n", count, name, __FILE__, __LINE__);    \
      failures++;                                                             \
    }                                                                         \
    fflush(stdout);                                                           \
  } while (0)

#endif
