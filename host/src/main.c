/* The troupe command line: troupe run SCRIPT [ARGS...], troupe repl,
 * troupe attach. */
#include "troupe.h"
#include "term.h"

#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

lua_State *tr__host_lua(tr_host *h);
int tr__attach_main(const char *path, int raw);

static void usage(FILE *f) {
  fprintf(f,
          "usage: troupe run SCRIPT [ARGS...]   run a Lua script on a new host\n"
          "       troupe SCRIPT [ARGS...]       the same\n"
          "       troupe repl [SCRIPT [ARGS...]] an interactive prompt on a new host\n"
          "                                     (after running SCRIPT, its actors live)\n"
          "       troupe attach PATH            the same prompt against a running host\n"
          "                                     (--raw: speak the control protocol)\n"
          "       troupe --version              print the version\n"
          "       troupe --help                 this text\n"
          "\n"
          "run and repl take --control PATH (or the TROUPE_CONTROL environment\n"
          "variable): a control socket at PATH for troupe attach; and\n"
          "--schedulers N (or TROUPE_SCHEDULERS; default: the number of cores):\n"
          "how many schedulers (threads, each with its own loop and Lua state).\n"
          "\n"
          "The script's actors run until nothing is left to do (no runnable actor,\n"
          "no timer, no pending call) or the script calls troupe.exit(code).\n");
}

static void set_args(tr_host *h, const char *path, int argc, char **argv) {
  lua_State *L = tr__host_lua(h);
  /* arg table, as lua5.4 makes it */
  lua_createtable(L, argc, 1);
  lua_pushstring(L, path ? path : "troupe");
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
}

/* Takes "OPT VALUE" out of argv (anywhere); the last one wins. */
static const char *take_opt(int *argc, char **argv, const char *opt, const char *what, int *bad) {
  const char *val = NULL;
  for (int i = 0; i < *argc; i++) {
    if (strcmp(argv[i], opt) != 0) continue;
    if (i + 1 >= *argc) {
      fprintf(stderr, "troupe: %s needs %s\n", opt, what);
      *bad = 1;
      return NULL;
    }
    val = argv[i + 1];
    memmove(argv + i, argv + i + 2, (size_t)(*argc - i - 2) * sizeof *argv);
    *argc -= 2;
    i--;
  }
  return val;
}

/* "--control PATH"; falls back to TROUPE_CONTROL. */
static const char *take_control(int *argc, char **argv, int *bad) {
  const char *path = take_opt(argc, argv, "--control", "a path", bad);
  if (!path && !*bad) {
    const char *env = getenv("TROUPE_CONTROL");
    if (env && *env) path = env;
  }
  return path;
}

/* "--schedulers N" into o (0 when absent: TROUPE_SCHEDULERS or the cores). */
static void take_schedulers(int *argc, char **argv, tr_host_options *o, int *bad) {
  tr_host_options_init(o);
  const char *v = take_opt(argc, argv, "--schedulers", "a number", bad);
  if (!v) return;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < 1 || n > TR_MAX_SCHEDULERS) {
    fprintf(stderr, "troupe: --schedulers needs a number from 1 to %d, not '%s'\n",
            TR_MAX_SCHEDULERS, v);
    *bad = 1;
    return;
  }
  o->schedulers = (unsigned)n;
}

static int open_control(tr_host *h, const char *path) {
  if (!path) return 0;
  int rc = tr_control_listen(h, path);
  if (rc) fprintf(stderr, "troupe: cannot open the control socket %s: %s\n", path, tr_strerror(rc));
  return rc;
}

static void on_term_signal(uv_signal_t *sg, int sig) {
  tr_host_exit(sg->data, 128 + sig);
}

static int run_script(const char *path, int argc, char **argv) {
  int bad = 0;
  tr_host_options o;
  const char *control = take_control(&argc, argv, &bad);
  if (!bad) take_schedulers(&argc, argv, &o, &bad);
  if (bad) return 2;
  tr_host *h;
  int rc = tr_host_new(&h, &o);
  if (rc) {
    fprintf(stderr, "troupe: cannot start a host: %s\n", tr_strerror(rc));
    return 1;
  }
  set_args(h, path, argc, argv);
  if (open_control(h, control)) {
    tr_host_free(h);
    return 1;
  }
  /* with a control socket the host runs until troupe.exit(), SIGINT or SIGTERM */
  uv_signal_t sigs[2];
  if (control) {
    int nums[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
      uv_signal_init(tr_host_loop(h), &sigs[i]);
      sigs[i].data = h;
      uv_signal_start(&sigs[i], on_term_signal, nums[i]);
      uv_unref((uv_handle_t *)&sigs[i]);
    }
  }
  int code = 0;
  if (tr_host_dofile(h, path) != 0) code = 1;
  else code = tr_host_run(h);
  if (control)
    for (int i = 0; i < 2; i++) uv_close((uv_handle_t *)&sigs[i], NULL);
  tr_host_free(h);
  return code;
}

/* ---- troupe repl ------------------------------------------------------------------------- */
static tr_host *g_host;
static tr_repl *g_repl;

static void local_out(void *ud, int kind, const char *text, size_t len) {
  (void)ud;
  if (kind == TR_REPL_BYE) {
    tr__term_output(kind, text, len);
    return;
  }
  tr__term_output(kind, text, len);
}

static void l_line(void *ud, const char *line, size_t len) { tr__repl_input(ud, line, len); }
static void l_eof(void *ud) {
  (void)ud;
  tr_host_exit(g_host, 0);
}
static void l_interrupt(void *ud) { tr__repl_interrupt(ud); }
static int l_busy(void *ud) { return tr__repl_busy(ud); }
static void l_complete(void *ud, const char *text, size_t len, tr_repl_cand_fn add, void *cud) {
  tr__repl_complete(ud, text, len, add, cud);
}
static void l_signal(void *ud) { tr__repl_signal(ud); }

static const tr_term_backend local_backend = {l_line, l_eof, l_interrupt, l_busy, l_complete,
                                              l_signal};

static int repl_main(int argc, char **argv) {
  int bad = 0;
  tr_host_options o;
  const char *control = take_control(&argc, argv, &bad);
  if (!bad) take_schedulers(&argc, argv, &o, &bad);
  if (bad) return 2;
  const char *script = argc > 0 ? argv[0] : NULL;
  tr_host *h;
  int rc = tr_host_new(&h, &o);
  if (rc) {
    fprintf(stderr, "troupe: cannot start a host: %s\n", tr_strerror(rc));
    return 1;
  }
  g_host = h;
  set_args(h, script, argc > 0 ? argc - 1 : 0, argv + 1);
  if (open_control(h, control)) {
    tr_host_free(h);
    return 1;
  }
  if (script) tr_host_dofile(h, script); /* an error is printed; the prompt still comes */
  rc = tr__repl_new(h, local_out, NULL, &g_repl);
  if (rc) {
    fprintf(stderr, "troupe: cannot start the REPL: %s\n", tr_strerror(rc));
    tr_host_free(h);
    return 1;
  }
  tr__repl_set_signal_session(g_repl);
  if (tr__term_open(tr_host_loop(h), &local_backend, g_repl)) {
    fprintf(stderr, "troupe: cannot read the terminal\n");
    tr_host_free(h);
    return 1;
  }
  if (tr__term_is_tty()) {
    printf("troupe %s (%s); :help for commands, Ctrl-D to leave\n", TROUPE_VERSION_STRING,
           LUA_RELEASE);
    fflush(stdout);
  }
  tr__repl_start(g_repl);
  int code = tr_host_run(h);
  tr__term_close();
  tr__repl_free(g_repl);
  g_repl = NULL;
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
  if (strcmp(cmd, "repl") == 0) return repl_main(argc - 2, argv + 2);
  if (strcmp(cmd, "attach") == 0) {
    int raw = argc > 2 && strcmp(argv[2], "--raw") == 0;
    if (argc != 3 + raw) {
      fprintf(stderr, "troupe: attach needs the control socket's path\n");
      usage(stderr);
      return 2;
    }
    return tr__attach_main(argv[2 + raw], raw);
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
