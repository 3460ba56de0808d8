/* error.c -- names and messages of the core's error codes (AL_ERRNO_MAP in
 * al.h): negated errno values, as libuv's, plus AL_EOF; and the end of the
 * process when memory runs out (al__xrealloc). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "al_int.h"

void *al__xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("aloop: out of memory\n", stderr);
    abort();
  }
  return p;
}

const char *al_err_name(int err) {
  switch (err) {
#define AL__ERRNO_NAME(name, msg)                                             \
  case AL_##name:                                                             \
    return #name;
    AL_ERRNO_MAP(AL__ERRNO_NAME)
#undef AL__ERRNO_NAME
  case AL_EOF:
    return "EOF";
  default:
    return "EUNKNOWN";
  }
}

const char *al_strerror(int err) {
  switch (err) {
#define AL__ERRNO_MSG(name, msg)                                              \
  case AL_##name:                                                             \
    return msg;
    AL_ERRNO_MAP(AL__ERRNO_MSG)
#undef AL__ERRNO_MSG
  case AL_EOF:
    return "end of file";
  default:
    return "unknown error";
  }
}
