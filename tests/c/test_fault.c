/* Fault tolerance from C: monitors, links, trap_exit, tr_shutdown, spawn
 * options (link, mem_limit, cpu_limit_ms), host options (slice_ms,
 * mem_limit), supervisors of C children, TR_EDEAD for a dying actor's pending
 * calls, and misuse of the API. */
#include "helpers.h"

/* ---- Watcher: records on_down / on_exit ------------------------------------------------ */
typedef struct {
  int n;
  int64_t ref;
  tr_addr who;
  char reason[64];
  char message[256];
} notice;

static notice g_down[32];
static int g_ndown;
static notice g_exit[32];
static int g_nexit;

static void record(notice *arr, int *n, const tr_msg *args, int base) {
  if (*n >= 32) return;
  notice *d = &arr[(*n)++];
  memset(d, 0, sizeof *d);
  const char *p;
  size_t len;
  if (base == 1) tr_msg_int(args, 0, &d->ref);
  tr_msg_addr(args, base, &d->who);
  if (tr_msg_str(args, base + 1, &p, &len) == 0)
    snprintf(d->reason, sizeof d->reason, "%.*s", (int)len, p);
  if (tr_msg_field_str(args, base + 2, "message", &p, &len) == 0)
    snprintf(d->message, sizeof d->message, "%.*s", (int)len, p);
}

static int w_on_down(tr_ctx *ctx, const tr_msg *args) {
  record(g_down, &g_ndown, args, 1);
  return 0;
}
static int w_on_exit(tr_ctx *ctx, const tr_msg *args) {
  record(g_exit, &g_nexit, args, 0);
  return 0;
}
static int w_ping(tr_ctx *ctx, const tr_msg *args) { return tr_pack_str(tr_ctx_reply(ctx), "pong"); }

/* callslow(to): calls to:nap(5000); the callback records its status */
static int g_slow_status = 1, g_slow_n;
static void slow_done(tr_host *h, int status, const tr_msg *m, void *ud) {
  g_slow_status = status;
  g_slow_n++;
  int *alive_marker = ud; /* points into the actor's state: must still be valid */
  if (alive_marker) (*alive_marker)++;
}
typedef struct {
  int marker;
} watcher_st;
static int w_callslow(tr_ctx *ctx, const tr_msg *args) {
  tr_addr to;
  if (tr_msg_addr(args, 0, &to)) return TR_EBADVALUE;
  watcher_st *st = tr_ctx_state(ctx);
  return tr_call_fmt(tr_ctx_host(ctx), tr_ctx_self(ctx), to, "nap", slow_done, &st->marker, "i",
                     5000);
}

static const tr_method watcher_methods[] = {{"on_down", w_on_down},   {"on_exit", w_on_exit},
                                            {"ping", w_ping},         {"callslow", w_callslow},
                                            {NULL, NULL}};
static const tr_behaviour watcher = {
    .name = "Watcher", .state_size = sizeof(watcher_st), .methods = watcher_methods};

/* No handlers for notices at all. */
static const tr_method quiet_methods[] = {{"ping", w_ping}, {NULL, NULL}};
static const tr_behaviour quiet = {.name = "Quiet", .methods = quiet_methods};

static const char *LUA_TARGET =
    "local troupe = require 'troupe'\n"
    "return {\n"
    "  ping = function() return 'pong' end,\n"
    "  boom = function() error('bang') end,\n"
    "  quit = function() troupe.stop() end,\n"
    "  nap = function(self, ms) troupe.sleep(ms); return 'rested' end,\n"
    "  spin = function() while true do end end,\n"
    "  sort_spin = function() table.sort({3, 2, 1}, function() while true do end end) end,\n"
    "  sort_spin_caught = function()\n"
    "    local ok, err = pcall(table.sort, {3, 2, 1}, function() while true do end end)\n"
    "    return tostring(ok) .. ' ' .. tostring(err)\n"
    "  end,\n"
    "  sum = function(self, n) local s = 0; for i = 1, n do s = (s + i * i) % 1000000007 end;"
    " return s end,\n"
    "  hog = function(self) local t = {}; for i = 1, 10000000 do t[i] = { i } end; return #t end,\n"
    "  slow_stop = function(self) self.slow = true end,\n"
    "  on_stopping = function(self) if self.slow then troupe.sleep(5000) end end,\n"
    "}\n";

static void reset(void) {
  reset_globals();
  memset(g_down, 0, sizeof g_down);
  memset(g_exit, 0, sizeof g_exit);
  g_ndown = g_nexit = 0;
  g_slow_status = 1;
  g_slow_n = 0;
}

static tr_addr spawn_lua(tr_host *h, const tr_spawn_options *o) {
  tr_addr a = TR_NOADDR;
  assert_int_equal(tr_spawn_lua_string(h, LUA_TARGET, "=target", NULL, o, &a), TR_OK);
  return a;
}

static tr_addr spawn_watcher(tr_host *h) {
  tr_addr a = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &watcher, NULL, NULL, &a), TR_OK);
  return a;
}

static int wait_downs(tr_host *h, int n) {
  uv_loop_t *loop = tr_host_loop(h);
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + 5000;
  while (g_ndown < n) {
    uv_run(loop, UV_RUN_NOWAIT);
    uv_update_time(loop);
    if (uv_now(loop) > end) break;
    uv_sleep(1);
  }
  return g_ndown >= n;
}

static int wait_dead(tr_host *h, tr_addr a) {
  uv_loop_t *loop = tr_host_loop(h);
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + 5000;
  while (tr_alive(h, a)) {
    uv_run(loop, UV_RUN_NOWAIT);
    uv_update_time(loop);
    if (uv_now(loop) > end) break;
    uv_sleep(1);
  }
  return !tr_alive(h, a);
}

/* a blocking call from outside the actors */
static void call_wait(tr_host *h, tr_addr to, const char *method, reply_rec *r, const char *fmt,
                      ...) {
  memset(r, 0, sizeof *r);
  tr_buf b;
  tr_buf_init(&b);
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    /* only single-int calls are needed here */
    tr_pack_int(&b, va_arg(ap, int));
    va_end(ap);
  }
  assert_int_equal(tr_call(h, TR_NOADDR, to, method, &b, 20000, rec_reply, r), TR_OK);
  tr_buf_free(&b);
  assert_true(run_until(h, &r->n, 20000));
}

/* ---- monitors ------------------------------------------------------------------------------ */
static void monitor_reasons(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr w = spawn_watcher(h);
  uint64_t refs[6];
  /* killed */
  tr_addr c = spawn_counter(h, 0);
  assert_int_equal(tr_monitor(h, w, c, &refs[0]), TR_OK);
  assert_int_equal(tr_kill(h, c), TR_OK);
  assert_true(wait_downs(h, 1));
  assert_int_equal(g_down[0].ref, (int64_t)refs[0]);
  assert_true(g_down[0].who == c);
  assert_string_equal(g_down[0].reason, "killed");
  /* stopped */
  c = spawn_counter(h, 0);
  assert_int_equal(tr_monitor(h, w, c, &refs[1]), TR_OK);
  assert_int_equal(tr_stop(h, c), TR_OK);
  assert_true(wait_downs(h, 2));
  assert_string_equal(g_down[1].reason, "stopped");
  /* normal: a C actor stopping itself */
  c = spawn_counter(h, 0);
  assert_int_equal(tr_monitor(h, w, c, &refs[2]), TR_OK);
  reply_rec r;
  call_wait(h, c, "stop_self", &r, NULL);
  assert_true(wait_downs(h, 3));
  assert_string_equal(g_down[2].reason, "normal");
  /* crashed, with the message */
  tr_addr l = spawn_lua(h, NULL);
  assert_int_equal(tr_monitor(h, w, l, &refs[3]), TR_OK);
  call_wait(h, l, "boom", &r, NULL);
  assert_int_equal(r.status, TR_ECRASHED);
  assert_true(wait_downs(h, 4));
  assert_string_equal(g_down[3].reason, "crashed");
  assert_non_null(strstr(g_down[3].message, "bang"));
  /* noproc */
  assert_int_equal(tr_monitor(h, w, l, &refs[4]), TR_OK);
  assert_true(wait_downs(h, 5));
  assert_string_equal(g_down[4].reason, "noproc");
  assert_int_equal(g_down[4].ref, (int64_t)refs[4]);
  /* distinct refs */
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++) assert_true(refs[i] != refs[j]);
  tr_host_free(h);
}

static void monitor_limits(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr w = spawn_watcher(h);
  uint64_t ref;
  reply_rec r;
  /* out_of_memory */
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.mem_limit = 2u << 20;
  tr_addr a = spawn_lua(h, &o);
  assert_int_equal(tr_monitor(h, w, a, &ref), TR_OK);
  call_wait(h, a, "hog", &r, NULL);
  assert_int_equal(r.status, TR_EDEAD);
  assert_true(wait_downs(h, 1));
  assert_string_equal(g_down[0].reason, "out_of_memory");
  assert_non_null(strstr(g_down[0].message, "memory limit"));
  /* timeout */
  memset(&o, 0, sizeof o);
  o.cpu_limit_ms = 50;
  a = spawn_lua(h, &o);
  assert_int_equal(tr_monitor(h, w, a, &ref), TR_OK);
  call_wait(h, a, "spin", &r, NULL);
  assert_int_equal(r.status, TR_EDEAD);
  assert_true(wait_downs(h, 2));
  assert_string_equal(g_down[1].reason, "timeout");
  assert_non_null(strstr(g_down[1].message, "CPU limit"));
  /* linked_exit */
  tr_addr x = spawn_counter(h, 0), y = spawn_counter(h, 0);
  assert_int_equal(tr_link(h, x, y), TR_OK);
  assert_int_equal(tr_monitor(h, w, x, &ref), TR_OK);
  tr_kill(h, y);
  assert_true(wait_downs(h, 3));
  assert_string_equal(g_down[2].reason, "linked_exit");
  assert_non_null(strstr(g_down[2].message, "exited (killed)"));
  tr_host_free(h);
}

static void demonitor_and_misuse(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr w = spawn_watcher(h), c = spawn_counter(h, 0);
  uint64_t r1, r2;
  assert_int_equal(tr_monitor(h, w, c, &r1), TR_OK);
  assert_int_equal(tr_monitor(h, w, c, &r2), TR_OK);
  assert_int_equal(tr_demonitor(h, r1), TR_OK);
  assert_int_equal(tr_demonitor(h, r1), TR_ENOTFOUND);
  assert_int_equal(tr_demonitor(h, 123456789), TR_ENOTFOUND);
  tr_kill(h, c);
  assert_true(wait_downs(h, 1));
  run_ready(h);
  assert_int_equal(g_ndown, 1);
  assert_int_equal(g_down[0].ref, (int64_t)r2);
  /* misuse */
  assert_int_equal(tr_monitor(NULL, w, c, &r1), TR_EINVAL);
  assert_int_equal(tr_demonitor(NULL, r2), TR_EINVAL);
  tr_addr dead = spawn_counter(h, 0);
  tr_kill(h, dead);
  assert_int_equal(tr_monitor(h, dead, w, &r1), TR_EDEAD); /* a dead watcher */
  assert_int_equal(tr_monitor(h, (tr_addr)0x123456, w, &r1), TR_EDEAD);
  assert_int_equal(tr_monitor(h, w, dead, NULL), TR_OK); /* NULL ref: fine */
  /* a C actor without on_down: dropped quietly */
  tr_addr q = TR_NOADDR;
  logcap lc;
  tr_host *h2 = new_host(&lc, 0, 0);
  assert_int_equal(tr_spawn(h2, &quiet, NULL, NULL, &q), TR_OK);
  tr_addr t = spawn_counter(h2, 0);
  assert_int_equal(tr_monitor(h2, q, t, &r1), TR_OK);
  tr_kill(h2, t);
  run_ready(h2);
  reply_rec r;
  call_wait(h2, q, "ping", &r, NULL);
  assert_string_equal(r.s, "pong");
  assert_null(strstr(lc.buf, "on_down"));
  /* a watcher dying first: its monitor goes with it */
  assert_int_equal(tr_monitor(h2, q, t, &r1), TR_OK);
  t = spawn_counter(h2, 0);
  assert_int_equal(tr_monitor(h2, q, t, &r1), TR_OK);
  tr_kill(h2, q);
  assert_int_equal(tr_demonitor(h2, r1), TR_ENOTFOUND);
  tr_kill(h2, t);
  run_ready(h2);
  tr_host_free(h2);
  tr_host_free(h);
}

/* ---- links ------------------------------------------------------------------------------------- */
static void links_and_trap_exit(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  assert_int_equal(tr_link(h, a, a), TR_EINVAL);
  assert_int_equal(tr_link(NULL, a, b), TR_EINVAL);
  assert_int_equal(tr_link(h, a, b), TR_OK);
  assert_int_equal(tr_link(h, b, a), TR_OK); /* twice: one link */
  tr_kill(h, b);
  assert_true(wait_dead(h, a));
  /* normal exits do not propagate */
  a = spawn_counter(h, 0);
  b = spawn_counter(h, 0);
  assert_int_equal(tr_link(h, a, b), TR_OK);
  tr_stop(h, b);
  assert_true(wait_dead(h, b));
  run_ready(h);
  assert_true(tr_alive(h, a));
  /* unlink */
  b = spawn_counter(h, 0);
  assert_int_equal(tr_link(h, a, b), TR_OK);
  assert_int_equal(tr_unlink(h, a, b), TR_OK);
  tr_kill(h, b);
  run_ready(h);
  assert_true(tr_alive(h, a));
  assert_int_equal(tr_unlink(h, b, a), TR_EDEAD);
  assert_int_equal(tr_unlink(NULL, a, b), TR_EINVAL);
  assert_int_equal(tr_link(h, a, b), TR_EDEAD);
  /* trap_exit: a C watcher gets on_exit */
  tr_addr w = spawn_watcher(h);
  assert_int_equal(tr_trap_exit(h, w, 1), TR_OK);
  tr_addr l = spawn_lua(h, NULL);
  assert_int_equal(tr_link(h, w, l), TR_OK);
  reply_rec r;
  call_wait(h, l, "boom", &r, NULL);
  uv_loop_t *loop = tr_host_loop(h);
  for (int i = 0; i < 2000 && g_nexit < 1; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    uv_sleep(1);
  }
  assert_int_equal(g_nexit, 1);
  assert_true(g_exit[0].who == l);
  assert_string_equal(g_exit[0].reason, "crashed");
  assert_non_null(strstr(g_exit[0].message, "bang"));
  assert_true(tr_alive(h, w));
  assert_int_equal(tr_trap_exit(h, l, 1), TR_EDEAD);
  assert_int_equal(tr_trap_exit(NULL, w, 1), TR_EINVAL);
  /* a chain of 1000 C actors */
  tr_addr chain[1000];
  chain[0] = spawn_counter(h, 0);
  for (int i = 1; i < 1000; i++) {
    chain[i] = spawn_counter(h, 0);
    assert_int_equal(tr_link(h, chain[i - 1], chain[i]), TR_OK);
  }
  tr_kill(h, chain[0]);
  assert_true(wait_dead(h, chain[999]));
  for (int i = 0; i < 1000; i++) assert_false(tr_alive(h, chain[i]));
  tr_host_free(h);
}

static void spawn_link_option(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr parent = spawn_counter(h, 0);
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.link = parent;
  tr_addr child = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &child), TR_OK);
  tr_kill(h, child);
  assert_true(wait_dead(h, parent));
  /* linking to a dead actor at spawn fails and spawns nothing */
  tr_host_stats st0, st1;
  tr_host_stats_get(h, &st0);
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &child), TR_EDEAD);
  tr_host_stats_get(h, &st1);
  assert_int_equal(st0.actors, st1.actors);
  tr_host_free(h);
}

/* ---- shutdown -------------------------------------------------------------------------------- */
static void shutdown_outcomes(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  reply_rec r;
  memset(&r, 0, sizeof r);
  tr_addr c = spawn_counter(h, 0);
  run_ready(h);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, c, 1000, rec_reply, &r), TR_OK);
  assert_true(run_until(h, &r.n, 5000));
  assert_int_equal(r.status, TR_OK);
  assert_string_equal(r.s, "stopped");
  assert_false(tr_alive(h, c));
  /* vetoed */
  c = spawn_counter(h, 0);
  run_ready(h);
  g_veto = 1;
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, c, 1000, rec_reply, &r), TR_OK);
  assert_true(run_until(h, &r.n, 5000));
  assert_int_equal(r.status, TR_FAILED);
  assert_string_equal(r.s, "vetoed");
  assert_true(tr_alive(h, c));
  /* a Lua actor whose on_stopping takes too long is killed */
  tr_addr l = spawn_lua(h, NULL);
  call_wait(h, l, "slow_stop", &r, NULL);
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, l, 50, rec_reply, &r), TR_OK);
  assert_true(run_until(h, &r.n, 5000));
  assert_int_equal(r.status, TR_OK);
  assert_string_equal(r.s, "killed");
  assert_false(tr_alive(h, l));
  /* misuse */
  assert_int_equal(tr_shutdown(NULL, TR_NOADDR, c, 100, rec_reply, &r), TR_EINVAL);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, c, 100, NULL, &r), TR_EINVAL);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, c, 0, rec_reply, &r), TR_EINVAL);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, c, -7, rec_reply, &r), TR_EINVAL);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, l, 100, rec_reply, &r), TR_EDEAD);
  tr_host_free(h);
}

/* ---- pending calls of a dying C actor ------------------------------------------------------------ */
static void dying_caller_gets_edead(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr w = spawn_watcher(h), l = spawn_lua(h, NULL);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, w, "callslow", "a", l), TR_OK);
  run_ready(h);
  assert_int_equal(g_slow_n, 0);
  assert_int_equal(tr_kill(h, w), TR_OK);
  assert_int_equal(g_slow_n, 1); /* at once, while the state was still there */
  assert_int_equal(g_slow_status, TR_EDEAD);
  run_ready(h);
  assert_int_equal(g_slow_n, 1); /* exactly once */
  tr_host_free(h);
}

/* ---- preemption ----------------------------------------------------------------------------- */
static void preemption_keeps_others_served(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr spinner = spawn_lua(h, NULL), c = spawn_counter(h, 7), l = spawn_lua(h, NULL);
  assert_int_equal(tr_send(h, TR_NOADDR, spinner, "spin", NULL), TR_OK);
  run_ready(h);
  reply_rec r;
  for (int i = 0; i < 10; i++) {
    call_wait(h, c, "get", &r, NULL);
    assert_int_equal(r.status, TR_OK);
    assert_int_equal(r.i, 7);
    call_wait(h, l, "ping", &r, NULL);
    assert_string_equal(r.s, "pong");
  }
  /* a long computation finishes with the right result */
  call_wait(h, l, "sum", &r, "i", 3000000);
  assert_int_equal(r.status, TR_OK);
  int64_t s = 0;
  for (int64_t i = 1; i <= 3000000; i++) s = (s + i * i) % 1000000007;
  assert_int_equal(r.i, s);
  assert_true(tr_alive(h, spinner));
  assert_int_equal(tr_kill(h, spinner), TR_OK);
  assert_false(tr_alive(h, spinner));
  tr_host_free(h);
}

/* Lua code that loops inside a C function (a sort comparator) cannot be
 * preempted: after TR_UNYIELDING_SLICES slices it gets an error, which
 * unwinds it out of there; the scheduler serves the others again. */
static void unyielding_code_is_stopped(void **state) {
  reset();
  tr_host_options o;
  tr_host_options_init(&o);
  o.slice_ms = 2; /* the limit: 2 ms * TR_UNYIELDING_SLICES = 1 s of CPU time */
  o.schedulers = 1;
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  tr_addr spinner = spawn_lua(h, NULL), l = spawn_lua(h, NULL);
  reply_rec r;
  uint64_t t0 = uv_hrtime();
  call_wait(h, spinner, "sort_spin", &r, NULL);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(r.status, TR_ECRASHED);
  assert_non_null(strstr(r.s, "inside a C function"));
  assert_non_null(strstr(r.s, "where it cannot be preempted"));
  assert_non_null(strstr(r.s, "target:")); /* the position of the loop */
  assert_true(ms >= 950); /* not before the limit (2 ms * 500 slices) */
  assert_false(tr_alive(h, spinner));
  call_wait(h, l, "ping", &r, NULL);
  assert_string_equal(r.s, "pong");
  /* a handler that catches it goes on */
  call_wait(h, l, "sort_spin_caught", &r, NULL);
  assert_int_equal(r.status, TR_OK);
  assert_non_null(strstr(r.s, "false "));
  assert_non_null(strstr(r.s, "where it cannot be preempted"));
  assert_true(tr_alive(h, l));
  call_wait(h, l, "ping", &r, NULL);
  assert_string_equal(r.s, "pong");
  tr_host_free(h);
}

static void slice_disabled(void **state) {
  reset();
  tr_host_options o;
  tr_host_options_init(&o);
  o.slice_ms = -1;
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  tr_addr l = spawn_lua(h, NULL);
  reply_rec r;
  call_wait(h, l, "sum", &r, "i", 200000);
  assert_int_equal(r.status, TR_OK);
  int64_t s = 0;
  for (int64_t i = 1; i <= 200000; i++) s = (s + i * i) % 1000000007;
  assert_int_equal(r.i, s);
  call_wait(h, l, "nap", &r, "i", 5);
  assert_string_equal(r.s, "rested");
  tr_host_free(h);
}

/* ---- host memory cap ---------------------------------------------------------------------------- */
static void host_mem_limit(void **state) {
  reset();
  tr_host_options o;
  tr_host_options_init(&o);
  o.mem_limit = 8u << 20;
  logcap lc;
  memset(&lc, 0, sizeof lc);
  o.log = cap_log;
  o.log_ud = &lc;
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  tr_addr w = spawn_watcher(h), hog = spawn_lua(h, NULL), other = spawn_lua(h, NULL);
  uint64_t ref;
  assert_int_equal(tr_monitor(h, w, hog, &ref), TR_OK);
  reply_rec r;
  call_wait(h, hog, "hog", &r, NULL);
  assert_int_equal(r.status, TR_EDEAD);
  assert_true(wait_downs(h, 1));
  assert_string_equal(g_down[0].reason, "out_of_memory");
  /* the host and the others keep going */
  call_wait(h, other, "ping", &r, NULL);
  assert_int_equal(r.status, TR_OK);
  assert_string_equal(r.s, "pong");
  tr_addr fresh = spawn_lua(h, NULL);
  call_wait(h, fresh, "sum", &r, "i", 1000);
  assert_int_equal(r.status, TR_OK);
  tr_host_free(h);
}

/* ---- supervisors from C ------------------------------------------------------------------------- */
static void supervisor_of_c_children(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  assert_int_equal(tr_register_behaviour(h, &counter), TR_OK);
  tr_buf spec;
  tr_buf_init(&spec);
  assert_int_equal(
      tr_pack_fmt(&spec, "{s s s i s [{s s s s s [i] s s} {s s s s s [i]}]}", "strategy",
                  "one_for_one", "intensity", 5, "children", "id", "c1", "behaviour", "Counter",
                  "args", 5, "name", "cw", "id", "c2", "behaviour", "Counter", "args", 9),
      TR_OK);
  tr_addr sup = TR_NOADDR;
  assert_int_equal(tr_spawn_named(h, "Supervisor", &spec, NULL, &sup), TR_OK);
  tr_buf_free(&spec);
  reply_rec r;
  call_wait(h, sup, "count_children", &r, NULL);
  assert_int_equal(r.status, TR_OK);
  assert_non_null(strstr(r.text, "active = 2"));
  tr_addr c1 = TR_NOADDR;
  assert_int_equal(tr_whereis(h, "cw", &c1), TR_OK);
  call_wait(h, c1, "add", &r, "i", 10);
  assert_int_equal(r.i, 15);
  /* killed: restarted fresh, under the same name */
  tr_kill(h, c1);
  tr_addr c1b = TR_NOADDR;
  uv_loop_t *loop = tr_host_loop(h);
  for (int i = 0; i < 5000; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (tr_whereis(h, "cw", &c1b) == TR_OK && c1b != c1) break;
    uv_sleep(1);
  }
  assert_true(c1b != c1 && c1b != TR_NOADDR);
  call_wait(h, c1b, "get", &r, NULL);
  assert_int_equal(r.i, 5);
  /* shutdown stops the children */
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, sup, 2000, rec_reply, &r), TR_OK);
  assert_true(run_until(h, &r.n, 5000));
  assert_string_equal(r.s, "stopped");
  assert_false(tr_alive(h, c1b));
  assert_int_equal(tr_whereis(h, "cw", &c1b), TR_ENOTFOUND);
  /* a bad spec: the supervisor crashes in init, with the reason */
  tr_addr w = spawn_watcher(h);
  tr_buf_init(&spec);
  tr_pack_fmt(&spec, "{s s}", "strategy", "sideways");
  assert_int_equal(tr_spawn_named(h, "Supervisor", &spec, NULL, &sup), TR_OK);
  tr_buf_free(&spec);
  uint64_t ref;
  assert_int_equal(tr_monitor(h, w, sup, &ref), TR_OK);
  assert_true(wait_downs(h, 1));
  assert_string_equal(g_down[0].reason, "crashed");
  assert_non_null(strstr(g_down[0].message, "unknown strategy 'sideways'"));
  /* unknown names and misuse */
  assert_int_equal(tr_spawn_named(h, "NoSuchBehaviour", NULL, NULL, &sup), TR_ENOTFOUND);
  assert_int_equal(tr_spawn_named(NULL, "Supervisor", NULL, NULL, &sup), TR_EINVAL);
  assert_int_equal(tr_spawn_named(h, NULL, NULL, NULL, &sup), TR_EINVAL);
  tr_host_free(h);
}

/* ---- misuse --------------------------------------------------------------------------------------- */
static void api_misuse(void **state) {
  reset();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr c = spawn_counter(h, 0);
  reply_rec r;
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_spawn(NULL, &counter, NULL, NULL, &c), TR_EINVAL);
  assert_int_equal(tr_spawn(h, NULL, NULL, NULL, &c), TR_EINVAL);
  assert_int_equal(tr_send(NULL, TR_NOADDR, c, "get", NULL), TR_EINVAL);
  assert_int_equal(tr_send(h, TR_NOADDR, c, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_send(h, TR_NOADDR, (tr_addr)0xdeadbeef, "get", NULL), TR_EDEAD);
  assert_int_equal(tr_call(h, TR_NOADDR, (tr_addr)0xdeadbeef, "get", NULL, 100, rec_reply, &r),
                   TR_EDEAD);
  assert_int_equal(r.n, 0); /* a failing call never calls back */
  assert_int_equal(tr_stop(h, TR_NOADDR), TR_EDEAD);
  assert_int_equal(tr_kill(NULL, c), TR_EINVAL);
  assert_int_equal(tr_alive(h, TR_NOADDR), 0);
  /* tokens: a second answer, an answer after the owner stopped */
  g_ntok = 0;
  assert_int_equal(tr_call(h, TR_NOADDR, c, "defer", NULL, 5000, rec_reply, &r), TR_OK);
  run_ready(h);
  assert_int_equal(g_ntok, 1);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 1);
  assert_int_equal(tr_token_reply(h, &g_tok[0], &b), TR_OK);
  assert_int_equal(tr_token_reply(h, &g_tok[0], &b), TR_EALREADY);
  assert_int_equal(tr_token_fail(h, &g_tok[0], &b), TR_EALREADY);
  assert_true(run_until(h, &r.n, 2000));
  assert_int_equal(r.status, TR_OK);
  reply_rec r2;
  memset(&r2, 0, sizeof r2);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "defer", NULL, 5000, rec_reply, &r2), TR_OK);
  run_ready(h);
  assert_int_equal(g_ntok, 2);
  tr_kill(h, c);
  assert_true(run_until(h, &r2.n, 2000));
  assert_int_equal(r2.status, TR_EDEAD);
  assert_int_equal(tr_token_reply(h, &g_tok[1], &b), TR_EALREADY);
  assert_int_equal(tr_token_reply(NULL, &g_tok[1], &b), TR_EINVAL);
  assert_int_equal(tr_token_reply(h, NULL, &b), TR_EINVAL);
  tr_buf_free(&b);
  /* oversized payloads are refused, not truncated */
  tr_addr d = spawn_counter(h, 0);
  tr_buf big;
  tr_buf_init(&big);
  char *chunk = calloc(1, 1 << 20);
  assert_non_null(chunk);
  int rc = 0;
  for (int i = 0; i < 70 && rc == 0; i++) rc = tr_pack_lstr(&big, chunk, 1 << 20);
  free(chunk);
  assert_true(rc != 0);
  assert_true(big.len <= (64u << 20));
  tr_buf_free(&big);
  (void)d;
  tr_host_free(h);
  tr_host_free(NULL);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(monitor_reasons),
      cmocka_unit_test(monitor_limits),
      cmocka_unit_test(demonitor_and_misuse),
      cmocka_unit_test(links_and_trap_exit),
      cmocka_unit_test(spawn_link_option),
      cmocka_unit_test(shutdown_outcomes),
      cmocka_unit_test(dying_caller_gets_edead),
      cmocka_unit_test(preemption_keeps_others_served),
      cmocka_unit_test(unyielding_code_is_stopped),
      cmocka_unit_test(slice_disabled),
      cmocka_unit_test(host_mem_limit),
      cmocka_unit_test(supervisor_of_c_children),
      cmocka_unit_test(api_misuse),
  };
  RUN_TESTS(tests, argc, argv);
}
