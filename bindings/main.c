/* main.c -- the `aloop` command, in the manner of lua.c: run a script (or
 * -e code, or stdin) as the main task of aloop.run, with `arg` set as lua
 * sets it; report an uncaught error with the traceback of where it was
 * raised; exit 0, 1 on error, 130 after Ctrl-C, 143 after SIGTERM (which
 * cancels the main task as Ctrl-C does, so its cleanup runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "aloop.h"

static const char *progname = "aloop";

static void usage(FILE *to) {
  fprintf(to,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat' (the module is the global aloop)\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -v        show version information\n"
          "  -h        show this help\n"
          "  --        stop handling options\n"
          "  -         execute stdin and stop handling options\n"
          "The script runs as the main task: top-level code may await.\n",
          progname);
}

/* Message handler of the outermost call: prefer the traceback aloop kept
 * from inside the task where the error was raised. */
static int msghandler(lua_State *L) {
  if (lua_istable(L, 1)) { /* Ctrl-C leaves quietly, with status 130 */
    lua_getfield(L, 1, "kind");
    if (lua_isstring(L, -1) &&
        (strcmp(lua_tostring(L, -1), "KeyboardInterrupt") == 0 ||
         strcmp(lua_tostring(L, -1), "SystemExit") == 0)) {
      lua_pop(L, 1);
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "aloop");
  lua_getfield(L, -1, "_traceback");
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (lua_isstring(L, -1))
      return 1;
  }
  lua_settop(L, 1);
  {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
      if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        msg = lua_tostring(L, -1);
      else
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
  }
  return 1;
}

struct opts {
  int script;  /* index in argv of the script, or 0 */
  int has_e;
  int version;
  int help;
  int bad;
};

static struct opts collect(int argc, char **argv) {
  struct opts o = {0, 0, 0, 0, 0};
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      o.script = i;
      return o;
    }
    if (strcmp(a, "-") == 0) {
      o.script = i;
      return o;
    }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc)
        o.script = i + 1;
      return o;
    }
    if (strcmp(a, "-v") == 0) {
      o.version = 1;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      o.help = 1;
    } else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
      if (a[1] == 'e')
        o.has_e = 1;
      if (++i >= argc) {
        o.bad = i - 1;
        return o;
      }
    } else {
      o.bad = i;
      return o;
    }
  }
  return o;
}

static void create_arg_table(lua_State *L, int argc, char **argv, int script) {
  int i, base = script; /* no script: the program is arg[0], as in lua */
  lua_createtable(L, argc - base, base + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - base);
  }
  lua_setglobal(L, "arg");
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK && lua_istable(L, -1)) {
    lua_getfield(L, -1, "kind");
    if (lua_isstring(L, -1) &&
        strcmp(lua_tostring(L, -1), "KeyboardInterrupt") == 0) {
      lua_pop(L, 2);
      fprintf(stderr, "%s: interrupted\n", progname);
      return status;
    }
    if (lua_isstring(L, -1) &&
        strcmp(lua_tostring(L, -1), "SystemExit") == 0) {
      lua_pop(L, 2);
      fprintf(stderr, "%s: terminated\n", progname);
      return status;
    }
    lua_pop(L, 1);
  }
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* Run the function on top, with nargs arguments below... above it, as the
 * main task of aloop.run. */
static int run_main(lua_State *L, int nargs) {
  int status, fidx = lua_gettop(L) - nargs;
  lua_pushcfunction(L, msghandler);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "aloop");
  lua_getfield(L, -1, "_run_script");
  lua_replace(L, -4);
  lua_pop(L, 2); /* msgh, run */
  lua_rotate(L, fidx, 2);
  status = lua_pcall(L, nargs + 1, 0, fidx);
  lua_remove(L, fidx);
  return status;
}

/* The exit status for an error: 130 after Ctrl-C, 143 after SIGTERM. */
static int exit_code(lua_State *L, int status) {
  int code = 1;
  const char *kind;
  if (status == LUA_OK || !lua_istable(L, -1))
    return 1;
  lua_getfield(L, -1, "kind");
  kind = lua_tostring(L, -1);
  if (kind && strcmp(kind, "KeyboardInterrupt") == 0)
    code = 130;
  else if (kind && strcmp(kind, "SystemExit") == 0)
    code = 143;
  lua_pop(L, 1);
  return code;
}

/* The protected main: everything runs under one lua_pcall, as in lua.c. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  struct opts o = collect(argc, argv);
  int i, status;
  if (o.bad) {
    fprintf(stderr, "%s: unrecognized option or missing argument '%s'\n",
            progname, argv[o.bad]);
    usage(stderr);
    lua_pushinteger(L, 1);
    return 1;
  }
  if (o.help) {
    usage(stdout);
    lua_pushinteger(L, 0);
    return 1;
  }
  if (o.version) {
    printf("%s on %s\n", ALOOP_VERSION, LUA_RELEASE);
    if (!o.script && !o.has_e) {
      lua_pushinteger(L, 0);
      return 1;
    }
  }
  luaL_openlibs(L);
  luaL_requiref(L, "aloop", luaopen_aloop, 0);
  lua_getfield(L, -1, "_watch_sigterm"); /* SIGTERM stops the script too */
  lua_call(L, 0, 0);
  lua_pop(L, 1);
  create_arg_table(L, argc, argv, o.script);
  /* The collector in generational mode, as lua5.4 runs it: measured faster
   * for aloop's work (bench/README.md), and a script behaves alike under
   * both commands. */
  lua_gc(L, LUA_GCGEN, 0, 0);
  /* -e and -l, in order, before the script */
  for (i = 1; i < argc && (!o.script || i < o.script); i++) {
    if (strcmp(argv[i], "-e") == 0) {
      const char *code = argv[++i];
      lua_getglobal(L, "package");
      lua_getfield(L, -1, "loaded");
      lua_getfield(L, -1, "aloop");
      lua_setglobal(L, "aloop");
      lua_pop(L, 2);
      status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
      if (status == LUA_OK)
        status = run_main(L, 0);
      if (status != LUA_OK) {
        int code_ = exit_code(L, status);
        report(L, status);
        lua_pushinteger(L, code_);
        return 1;
      }
    } else if (strcmp(argv[i], "-l") == 0) {
      const char *mod = argv[++i];
      lua_getglobal(L, "require");
      lua_pushstring(L, mod);
      status = lua_pcall(L, 1, 1, 0);
      if (status != LUA_OK) {
        report(L, status);
        lua_pushinteger(L, 1);
        return 1;
      }
      lua_setglobal(L, mod);
    }
  }
  if (o.script || (!o.has_e && !o.version && !isatty(STDIN_FILENO))) {
    const char *fname = o.script ? argv[o.script] : "-";
    int nargs = 0;
    if (strcmp(fname, "-") == 0)
      fname = NULL; /* stdin */
    status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
      if (o.script)
        for (i = o.script + 1; i < argc; i++, nargs++)
          lua_pushstring(L, argv[i]);
      status = run_main(L, nargs);
    }
    if (status != LUA_OK) {
      int code_ = exit_code(L, status);
      report(L, status);
      lua_pushinteger(L, code_);
      return 1;
    }
  } else if (!o.has_e && !o.version) {
    usage(stdout);
  }
  lua_pushinteger(L, 0);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int status, code;
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  if (status != LUA_OK) {
    report(L, status);
    code = 1;
  } else {
    code = (int)lua_tointeger(L, -1);
  }
  fflush(stdout);
  lua_close(L);
  return code;
}
