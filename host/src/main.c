/* The troupe command line: troupe run SCRIPT [ARGS...]. */
#include "troupe.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

lua_State *tr__host_lua(tr_host *h);

static void usage(FILE *f) {
  fprintf(f,
          "usage: troupe run SCRIPT [ARGS...]   run a Lua script on a new host\n"
          "       troupe SCRIPT [ARGS...]       the same\n"
          "       troupe --version              print the version\n"
          "       troupe --help                 this text\n"
          "\n"
          "The script's actors run until nothing is left to do (no runnable actor,\n"
          "no timer, no pending call) or the script calls troupe.exit(code).\n");
}

static int run_script(const char *path, int argc, char **argv) {
  tr_host *h;
  int rc = tr_host_new(&h, NULL);
  if (rc) {
    fprintf(stderr, "troupe: cannot start a host: %s\n", tr_strerror(rc));
    return 1;
  }
  lua_State *L = tr__host_lua(h);
  /* arg table, as lua5.4 makes it */
  lua_createtable(L, argc, 1);
  lua_pushstring(L, path);
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
  int code = 0;
  if (tr_host_dofile(h, path) != 0) code = 1;
  else code = tr_host_run(h);
  tr_host_free(h);
  return code;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-v") == 0) {
    printf("troupe %s (%s, libuv %s)\n", TROUPE_VERSION_STRING, LUA_RELEASE, uv_version_string());
    return 0;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "run") == 0) {
    if (argc < 3) {
      fprintf(stderr, "troupe: run needs a script\n");
      usage(stderr);
      return 2;
    }
    return run_script(argv[2], argc - 3, argv + 3);
  }
  if (cmd[0] == '-') {
    fprintf(stderr, "troupe: unknown option '%s'\n", cmd);
    usage(stderr);
    return 2;
  }
  return run_script(cmd, argc - 2, argv + 2);
}
