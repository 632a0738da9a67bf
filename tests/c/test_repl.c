/* The REPL engine (repl.c) and the control socket (control.c) against a real
 * host: user Lua that raises where the engine reads Lua values from C, and
 * a control client that never reads its replies. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "repl.h"

static char g_out[1 << 16];

static void cap_out(void *ud, int kind, const char *text, size_t len) {
  (void)ud;
  const char *tag = kind == TR_REPL_OUT ? "OUT " : kind == TR_REPL_ERR ? "ERR " : kind == TR_REPL_PROMPT ? "PROMPT " : "BYE ";
  size_t n = strlen(g_out);
  if (n < sizeof g_out - 1)
    snprintf(g_out + n, sizeof g_out - n, "%s%.*s\n", tag, (int)len, text);
}

static void input(tr_repl *r, const char *line) { tr__repl_input(r, line, strlen(line)); }

/* A script with "strict" globals (a raising __index on _G): a name typed at
 * a command that is not a global must be reported, not abort the host. */
static void resolve_strict_globals(void **st) {
  (void)st;
  g_out[0] = 0;
  tr_host *h = new_host(NULL, 64, 5000);
  assert_int_equal(tr_host_dostring(h,
                       "app = setmetatable({}, {__index = function(_, k) error('no field ' .. k) end})\n"
                       "setmetatable(_G, {__index = function(_, k) error('undefined global ' .. k, 2) end})",
                       "=strict"),
                   0);
  tr_repl *r;
  assert_int_equal(tr__repl_new(h, cap_out, NULL, &r), 0);
  input(r, ":info nosuch");
  assert_non_null(strstr(g_out, "ERR no live actor 'nosuch'"));
  input(r, ":info app.bank");
  assert_non_null(strstr(g_out, "ERR no live actor 'app.bank'"));
  tr__repl_free(r);
  tr_host_free(h);
}

/* :reload with a behaviour file whose table raises on a missing key: the
 * error is shown and nothing changes. */
static void reload_raising_table(void **st) {
  (void)st;
  g_out[0] = 0;
  char dir[] = "/tmp/troupe-repl-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char f1[128], f2[128], code[512];
  snprintf(f1, sizeof f1, "%s/beh.lua", dir);
  snprintf(f2, sizeof f2, "%s/beh2.lua", dir);
  FILE *f = fopen(f1, "w");
  fputs("return { ping = function(self) return 'pong' end }\n", f);
  fclose(f);
  f = fopen(f2, "w");
  fputs("return setmetatable({ ping = function(self) return 'pong2' end },\n"
        "  {__index = function(_, k) error('no handler ' .. tostring(k)) end})\n", f);
  fclose(f);
  tr_host *h = new_host(NULL, 64, 5000);
  snprintf(code, sizeof code, "a = require('troupe').spawn(%s%s%s)", "'", f1, "'");
  assert_int_equal(tr_host_dostring(h, code, "=app"), 0);
  tr_repl *r;
  assert_int_equal(tr__repl_new(h, cap_out, NULL, &r), 0);
  char line[300];
  snprintf(line, sizeof line, ":reload a %s", f2);
  input(r, line);
  assert_non_null(strstr(g_out, "nothing changed"));
  tr__repl_free(r);
  tr_host_free(h);
  unlink(f1);
  unlink(f2);
  rmdir(dir);
}

/* ---- the control socket ---------------------------------------------------------------- */
static void max_queue(uv_handle_t *hd, void *arg) {
  size_t *m = arg;
  if (hd->type == UV_NAMED_PIPE && !uv_is_closing(hd)) {
    size_t q = ((uv_stream_t *)hd)->write_queue_size;
    if (q > *m) *m = q;
  }
}

static void spin(uv_loop_t *loop, int n) {
  for (int i = 0; i < n; i++) uv_run(loop, UV_RUN_NOWAIT);
}

/* A client that sends requests but never reads the replies: what the host
 * holds for it stays bounded (output beyond 8 MiB is dropped, docs/repl.md),
 * whatever the requests. */
static void ctl_client_never_reads(void **st) {
  (void)st;
  char dir[] = "/tmp/troupe-ctl-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[96];
  snprintf(path, sizeof path, "%s/s.sock", dir);
  tr_host *h = new_host(NULL, 64, 5000);
  assert_int_equal(tr_control_listen(h, path), 0);
  uv_loop_t *loop = tr_host_loop(h);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  spin(loop, 20);
  const char *mk = "LINE t = {} for i = 1, 500 do t[string.rep('k', 200) .. i] = true end\n";
  assert_int_equal(send(fd, mk, strlen(mk), MSG_NOSIGNAL), (ssize_t)strlen(mk));
  spin(loop, 20);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const char req[] = "COMPLETE t.\n"; /* ~100 KB of candidates each */
  size_t most = 0;
  for (int i = 0; i < 400; i++) {
    ssize_t w = send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
    (void)w;
    spin(loop, 2);
    uv_walk(loop, max_queue, &most);
  }
  assert_true(most <= (16u << 20) + (1u << 20));
  close(fd);
  spin(loop, 50);
  tr_host_free(h);
  unlink(path);
  rmdir(dir);
}

static int ctl_connect(tr_host *h, char *dir, char *path, size_t cap) {
  assert_non_null(mkdtemp(dir));
  snprintf(path, cap, "%s/s.sock", dir);
  assert_int_equal(tr_control_listen(h, path), 0);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  spin(tr_host_loop(h), 20);
  return fd;
}

/* Runs the loop until the host closes the connection (1) or `ms` pass (0);
 * what came is appended to got. */
static int until_eof(tr_host *h, int fd, char *got, size_t cap, int ms) {
  for (int i = 0; i < ms; i++) {
    spin(tr_host_loop(h), 1);
    size_t n = strlen(got);
    ssize_t r = recv(fd, got + n, cap - n - 1, MSG_DONTWAIT);
    if (r == 0) return 1;
    if (r > 0) got[n + (size_t)r] = 0;
    usleep(1000);
  }
  return 0;
}

/* :quit typed behind a running line: the host says BYE and closes the
 * connection (as for QUIT), and what was typed after :quit does not run. */
static void ctl_quit_line_behind_a_line(void **st) {
  (void)st;
  tr_host *h = new_host(NULL, 64, 5000);
  char dir[] = "/tmp/troupe-ctl-XXXXXX", path[96], got[8192] = "";
  int fd = ctl_connect(h, dir, path, sizeof path);
  const char *req = "LINE troupe.sleep(50)\nLINE :quit\nLINE rawset(_G, \"after\", 1)\n";
  assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
  int eof = until_eof(h, fd, got, sizeof got, 2000);
  assert_non_null(strstr(got, "BYE\n"));
  assert_true(eof);
  assert_int_equal(tr_host_dostring(h, "assert(after == nil)", "=check"), 0);
  close(fd);
  spin(tr_host_loop(h), 20);
  tr_host_free(h);
  unlink(path);
  rmdir(dir);
}

/* ---- actors of another scheduler ------------------------------------------------------- */
/* A host with two schedulers whatever TROUPE_SCHEDULERS says. */
static tr_host *new_host2(void) {
  tr_host_options o;
  tr_host_options_init(&o);
  o.call_timeout_ms = 5000;
  o.schedulers = 2;
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  assert_int_equal(tr_host_schedulers(h), 2);
  return h;
}

static int m_dump(tr_ctx *ctx, const tr_msg *args) {
  (void)args;
  return tr_pack_fmt(tr_ctx_reply(ctx), "s", "dumped by __state");
}
static const tr_method dumpy_methods[] = {{"__state", m_dump}, {NULL, NULL}};
static const tr_behaviour dumpy = {.name = "Dumpy", .state_size = 8, .methods = dumpy_methods};

/* Runs the loop until g_out shows `text` (at most ~5 s). */
static int until_out(tr_host *h, const char *text) {
  for (int i = 0; i < 5000 && !strstr(g_out, text); i++) {
    uv_run(tr_host_loop(h), UV_RUN_NOWAIT);
    usleep(1000);
  }
  return strstr(g_out, text) != NULL;
}

/* :state of actors of the second scheduler: a Lua actor's state is rendered
 * there, a C actor's __state handler answers; a dead one is said to be. */
static void state_other_scheduler(void **st) {
  (void)st;
  g_out[0] = 0;
  tr_host *h = new_host2();
  assert_int_equal(tr_host_dostring(h,
                       "local troupe = require 'troupe'\n"
                       "a = troupe.spawn_with({scheduler = 2}, [[return {\n"
                       "  init = function(s) s.x = 42 s.list = {1, 2, 'three'} end,\n"
                       "  get = function(s) return s.x end }]])\n"
                       "assert(a:call('get') == 42)",
                       "=app"),
                   0);
  tr_spawn_options so = {.scheduler = 2};
  tr_addr c;
  assert_int_equal(tr_spawn(h, &dumpy, NULL, &so, &c), 0);
  assert_int_equal(TR_ADDR_SCHED(c), 1);
  tr_repl *r;
  assert_int_equal(tr__repl_new(h, cap_out, NULL, &r), 0);
  input(r, ":state a");
  assert_non_null(strstr(g_out, "OUT {list = {1, 2, \"three\"}, x = 42}"));
  char line[64];
  snprintf(line, sizeof line, ":state 1.%llu", (unsigned long long)TR_ADDR_SERIAL(c));
  input(r, line);
  assert_true(until_out(h, "OUT \"dumped by __state\""));
  assert_null(strstr(g_out, "runs on scheduler"));
  assert_int_equal(tr_host_dostring(h, "a:kill() require('troupe').sleep(20)", "=kill"), 0);
  input(r, ":state a");
  assert_non_null(strstr(g_out, "ERR no live actor 'a'"));
  tr__repl_free(r);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(resolve_strict_globals),
      cmocka_unit_test(reload_raising_table),
      cmocka_unit_test(ctl_client_never_reads),
      cmocka_unit_test(ctl_quit_line_behind_a_line),
      cmocka_unit_test(state_other_scheduler),
  };
  RUN_TESTS(tests, argc, argv);
}
