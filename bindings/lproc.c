/* lproc.c -- the C side of subprocesses and standard input, for
 * aloop/process.lua: _proc.spawn (pipes become Streams over read/write),
 * the process handle (poll, wait parked on the pidfd, signal) and
 * _proc.stdin, a read-only Stream on a duplicate of descriptor 0 that is
 * read only when poll says it is ready, so O_NONBLOCK is never set on a
 * terminal or pipe other processes share. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/al_proc.h"
#include "lstream.h"

#define LALOOP_PROC_MT "aloop.ProcessHandle"

typedef struct lproc {
  al_proc_t *p; /* malloc'd: may outlive the handle as an orphan */
  lstate *S;
} lproc;

static lproc *check_proc(lua_State *L) {
  lproc *h = luaL_checkudata(L, 1, LALOOP_PROC_MT);
  if (!h->p)
    luaL_error(L, "process handle is released");
  return h;
}

/* A descriptor at 3 or above (close-on-exec), so that the child's dup2 to
 * 0, 1 or 2 never meets the same number; the old one is closed. */
static int above_stdio(int fd) {
  int nfd;
  if (fd >= 3)
    return fd;
  nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return nfd;
}

/* One stdio slot of spawn: mode at idx. Sets *child (the descriptor the
 * child gets, or AL_SPAWN_*) and *mine (our end of a pipe, or -1). */
static int slot(lua_State *L, int idx, int i, int *child, int *mine) {
  const char *m = lua_tostring(L, idx);
  int fds[2];
  *child = AL_SPAWN_INHERIT;
  *mine = -1;
  if (m == NULL) { /* a Lua file */
    luaL_Stream *f = luaL_checkudata(L, idx, LUA_FILEHANDLE);
    int fd;
    if (f->closef == NULL || f->f == NULL)
      return AL_EBADF;
    fflush(f->f);
    fd = fcntl(fileno(f->f), F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
      return -errno;
    *child = fd;
  } else if (strcmp(m, "pipe") == 0) {
    if (pipe2(fds, O_CLOEXEC) != 0)
      return -errno;
    *mine = i == 0 ? fds[1] : fds[0];
    *child = above_stdio(i == 0 ? fds[0] : fds[1]);
    if (*child < 0 || fcntl(*mine, F_SETFL, O_NONBLOCK) != 0) {
      int err = -errno;
      close(*mine);
      *mine = -1;
      return err;
    }
  } else if (strcmp(m, "null") == 0) {
    int fd = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
    if (fd < 0 || (fd = above_stdio(fd)) < 0)
      return -errno;
    *child = fd;
  } else if (strcmp(m, "stdout") == 0) {
    *child = AL_SPAWN_STDOUT;
  }
  return 0;
}

/* A NULL-terminated array of the strings of table idx (1..n, or "k=v" for
 * the pairs of an env table), in a userdata left on the stack. The strings
 * are kept alive in a table under it. */
static char **str_array(lua_State *L, int idx, int env) {
  int n = 0, i = 0;
  char **a;
  lua_newtable(L); /* the strings, kept */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (env)
      lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    else
      lua_pushvalue(L, -1);
    lua_rawseti(L, -4, ++n);
    lua_pop(L, 1);
  }
  a = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 1);
  lua_rotate(L, -2, 1);
  lua_setiuservalue(L, -2, 1);
  if (env) {
    for (i = 0; i < n; i++) {
      lua_getiuservalue(L, -1, 1);
      lua_rawgeti(L, -1, i + 1);
      a[i] = (char *)lua_tostring(L, -1);
      lua_pop(L, 2);
    }
  } else {
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, idx, i + 1);
      a[i] = (char *)lua_tostring(L, -1); /* anchored by the argv table */
      lua_pop(L, 1);
    }
  }
  a[n] = NULL;
  return a;
}

/* _proc.spawn(file, argv, env|nil, cwd|nil, m0, m1, m2, search, limit)
 *   -> handle, pid, stdin stream|nil, stdout stream|nil, stderr stream|nil
 * The arguments were checked by process.lua. */
static int p_spawn(lua_State *L) {
  lstate *S = laloop_state(L);
  al_spawn_t o;
  int mine[3] = {-1, -1, -1}, child[3] = {-1, -1, -1}, i, r = 0;
  lua_Integer limit = luaL_checkinteger(L, 9);
  lproc *h;
  memset(&o, 0, sizeof o);
  lua_settop(L, 9);
  o.file = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  o.argv = str_array(L, 2, 0); /* 10 */
  o.envp = lua_istable(L, 3) ? str_array(L, 3, 1) : NULL;
  o.cwd = lua_tostring(L, 4);
  o.search = lua_toboolean(L, 8);
  for (i = 0; i < 3 && r == 0; i++)
    r = slot(L, 5 + i, i, &child[i], &mine[i]);
  h = lua_newuserdatauv(L, sizeof *h, 0);
  h->S = S;
  h->p = NULL;
  luaL_setmetatable(L, LALOOP_PROC_MT);
  if (r == 0) {
    h->p = malloc(sizeof *h->p);
    if (!h->p)
      r = AL_ENOMEM;
  }
  for (i = 0; i < 3; i++)
    o.fds[i] = child[i];
  if (r == 0)
    r = al_proc_spawn(h->p, &S->loop, &o);
  for (i = 0; i < 3; i++)
    if (child[i] >= 0)
      close(child[i]);
  if (r != 0) {
    free(h->p);
    h->p = NULL;
    for (i = 0; i < 3; i++)
      if (mine[i] >= 0)
        close(mine[i]);
    return laloop_oserror(L, r, NULL);
  }
  lua_pushinteger(L, h->p->pid);
  for (i = 0; i < 3; i++) {
    if (mine[i] >= 0) {
      lstream *s = laloop_stream_new(L, S, mine[i], (size_t)limit);
      s->st.flags |= AL_S_PIPE;
    } else {
      lua_pushnil(L);
    }
  }
  return 5;
}

/* poll() -> returncode | nil: reaps the child if it has exited. */
static int p_poll(lua_State *L) {
  lproc *h = check_proc(L);
  int r = al_proc_poll(h->p);
  if (r < 0)
    return laloop_oserror(L, r, "wait");
  if (r == 0)
    return 0;
  lua_pushinteger(L, h->p->status);
  return 1;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  lproc *h = lua_touserdata(L, 1);
  ltask *lt;
  int r;
  laloop_woken(L, status, ctx, wait_k, NULL, NULL); /* a cancel: untouched */
  r = al_proc_poll(h->p);
  if (r < 0)
    return laloop_oserror(L, r, "wait");
  if (r > 0) {
    lua_pushinteger(L, h->p->status);
    return 1;
  }
  lt = laloop_current(L, "Process:wait");
  al_proc_wait(h->p, &lt->t);
  return laloop_park(L, 0, wait_k);
}

/* wait() -> returncode, once the child has exited. */
static int p_wait(lua_State *L) {
  check_proc(L);
  lua_settop(L, 1);
  return wait_k(L, LUA_OK, 0);
}

/* signal(signo) */
static int p_signal(lua_State *L) {
  lproc *h = check_proc(L);
  int r = al_proc_signal(h->p, (int)luaL_checkinteger(L, 2));
  if (r < 0)
    return laloop_oserror(L, r, "send_signal");
  return 0;
}

/* A handle collected while its child runs leaves the child to an orphan
 * watcher that reaps it when it exits. */
static int p_gc(lua_State *L) {
  lproc *h = lua_touserdata(L, 1);
  if (h->p) {
    al_proc_release(h->p, !h->S->closed);
    h->p = NULL;
  }
  return 0;
}

/* _proc.stdin(limit) -> a read-only Stream on descriptor 0. */
static int p_stdin(lua_State *L) {
  lstate *S = laloop_state(L);
  lua_Integer limit = luaL_checkinteger(L, 1);
  int fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
  lstream *s;
  if (fd < 0)
    return laloop_oserror(L, -errno, "stdin");
  s = laloop_stream_new(L, S, fd, (size_t)limit);
  s->st.flags |= AL_S_PIPE | AL_S_POLL | AL_S_SHUT_DONE;
  return 1;
}

/* _proc.fflush(): C's stdout, before a prompt is awaited. */
static int p_fflush(lua_State *L) {
  (void)L;
  fflush(stdout);
  return 0;
}

void laloop_close_procs(lstate *S) { al_proc_close_loop(&S->loop); }

void laloop_open_procs(lua_State *L, int mod, int up) {
  static const luaL_Reg methods[] = {
      {"poll", p_poll}, {"wait", p_wait}, {"signal", p_signal}, {NULL, NULL}};
  static const luaL_Reg metas[] = {{"__gc", p_gc}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"spawn", p_spawn},
                                 {"stdin", p_stdin},
                                 {"fflush", p_fflush},
                                 {NULL, NULL}};
  laloop_new_class(L, up, LALOOP_PROC_MT, methods, metas);
  static const struct {
    const char *name;
    int signo;
  } sigs[] = {{"SIGHUP", SIGHUP},     {"SIGINT", SIGINT},
              {"SIGQUIT", SIGQUIT},   {"SIGKILL", SIGKILL},
              {"SIGUSR1", SIGUSR1},   {"SIGUSR2", SIGUSR2},
              {"SIGPIPE", SIGPIPE},   {"SIGALRM", SIGALRM},
              {"SIGTERM", SIGTERM},   {"SIGCONT", SIGCONT},
              {"SIGSTOP", SIGSTOP},   {"SIGTSTP", SIGTSTP},
              {"SIGWINCH", SIGWINCH}, {NULL, 0}};
  int i;
  lua_newtable(L); /* aloop._proc: the private side, for aloop/process.lua */
  lua_pushvalue(L, up);
  luaL_setfuncs(L, fns, 1);
  lua_newtable(L);
  for (i = 0; sigs[i].name; i++) {
    lua_pushinteger(L, sigs[i].signo);
    lua_setfield(L, -2, sigs[i].name);
  }
  lua_setfield(L, -2, "signals");
  lua_setfield(L, mod, "_proc");
}
