/* Thread-safety regressions found by a ThreadSanitizer review of the
 * schedulers: each failed (a crash, refused sends, a hang, leaked fds) before
 * its fix. */
#include <stdatomic.h>

#include "helpers.h"

static tr_host *host2(void) { /* two schedulers */
  tr_host_options ho;
  tr_host_options_init(&ho);
  ho.schedulers = 2;
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, &ho), TR_OK);
  return h;
}

static tr_spawn_options on_second(void) { /* spawn options: scheduler 2 */
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = 2;
  return o;
}

/* ---- 1. tr_addr_format on an actor being made on another scheduler ---------------- */
static int noop(tr_ctx *c, const tr_msg *m) { return TR_OK; }
static const tr_method leaf_methods[] = {{"noop", noop}, {NULL, NULL}};
static const tr_behaviour leaf = {.name = "Leaf", .methods = leaf_methods};

static void format_while_spawning(void **state) {
  tr_host *h = host2();
  tr_addr anchor;
  assert_int_equal(tr_spawn(h, &leaf, NULL, NULL, &anchor), TR_OK); /* on scheduler 1 */
  long seen_reserved = 0, seen_made = 0, seen_other = 0;
  for (int i = 0; i < 300; i++) {
    tr_spawn_options o = on_second();
    char name[32];
    snprintf(name, sizeof name, "n%d", i);
    if (i % 2) { /* the owner links (an op back here) between publishing the actor and more */
      o.name = name;
      o.link = anchor;
    }
    tr_addr a;
    assert_int_equal(tr_spawn(h, &leaf, NULL, &o, &a), TR_OK);
    char buf[160];
    for (int k = 0; k < 300; k++) {
      tr_addr_format(h, a, buf, sizeof buf); /* NULL f->cb: SIGSEGV here */
      if (strstr(buf, "Leaf")) seen_made++;
      else seen_other++;
    }
    if (i % 100 == 99) tr_host_run(h);
  }
  (void)seen_reserved;
  (void)seen_other;
  assert_true(seen_made > 0); /* the made actors show their behaviour */
  tr_host_free(h);
}

/* ---- 2. tr_host_shutdown flips h->closing host-wide ----------------------------- */
static int slow_stopping(tr_ctx *c) {
  uv_sleep(2);
  return 0;
}
static const tr_behaviour slow = {.name = "Slow", .on_stopping = slow_stopping,
                                  .methods = leaf_methods};

static atomic_int g_stop_sender, g_sent, g_refused;
static tr_host *g_h;
static tr_addr g_target;

static void sender(void *arg) {
  while (!atomic_load(&g_stop_sender)) {
    int rc = tr_send_async(g_h, g_target, "noop", NULL);
    if (rc == TR_ESTOPPED) atomic_fetch_add(&g_refused, 1);
    else atomic_fetch_add(&g_sent, 1);
    uv_sleep(1);
  }
}

static void shutdown_is_not_closing(void **state) {
  g_h = host2();
  tr_spawn_options o = on_second();
  assert_int_equal(tr_spawn(g_h, &leaf, NULL, &o, &g_target), TR_OK);
  for (int i = 0; i < 100; i++) { /* ~200 ms of stop hooks on scheduler 1 */
    tr_addr a;
    assert_int_equal(tr_spawn(g_h, &slow, NULL, NULL, &a), TR_OK);
  }
  tr_host_run(g_h);
  uv_thread_t t;
  uv_thread_create(&t, sender, NULL);
  uv_sleep(20);
  tr_host_shutdown(g_h); /* the host is not closing: nobody should be refused */
  uv_sleep(20);
  atomic_store(&g_stop_sender, 1);
  uv_thread_join(&t);
  assert_true(atomic_load(&g_sent) > 0);
  int refused = atomic_load(&g_refused);
  tr_host_free(g_h);
  assert_int_equal(refused, 0);
}


/* ---- 3. tr_host_free while a handler on another scheduler runs away ------------- */
static void free_with_runaway(void **state) {
  tr_host *h = host2();
  tr_spawn_options o = on_second();
  tr_addr a;
  assert_int_equal(tr_spawn_lua_string(h,
                                       "return { spin = function() while true do end end }",
                                       "=runaway", NULL, &o, &a),
                   TR_OK);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "spin", NULL), TR_OK);
  uv_sleep(100); /* it spins on scheduler 2 (preempted every slice, never done) */
  uint64_t t0 = uv_hrtime();
  tr_host_free(h); /* the watchdog preempts it until scheduler 2's thread has left */
  assert_true(uv_hrtime() - t0 < 2000000000u);
}


/* ---- 4. troupe.exit() on scheduler 2: tr_host_free after tr_host_run ------------ */
#include <dirent.h>
static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  while (d && readdir(d)) n++;
  if (d) closedir(d);
  return n;
}

static void exit_from_other_scheduler(void **state) {
  int before = count_fds(), stale = 0;
  for (int i = 0; i < 40; i++) {
    tr_host *h = host2();
    tr_spawn_options o = on_second();
    tr_addr a, b;
    assert_int_equal(tr_spawn_lua_string(h, "local troupe = require \"troupe\" return { go = function() troupe.exit(3) end }",
                                         "=quitter", NULL, &o, &a), TR_OK);
    /* keep scheduler 1 busy in on_idle, so that it sees h->exiting there */
    assert_int_equal(tr_spawn_lua_string(h,
        "local troupe = require \"troupe\" return { spin = function(self) troupe.self():send('spin') end }",
        "=busy", NULL, NULL, &b), TR_OK);
    assert_int_equal(tr_send(h, TR_NOADDR, b, "spin", NULL), TR_OK);
    assert_int_equal(tr_send(h, TR_NOADDR, a, "go", NULL), TR_OK);
    assert_int_equal(tr_host_run(h), 3);
    tr_host_free(h);
  }
  int after = count_fds();
  (void)stale;
  assert_true(after - before < 10);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(format_while_spawning),
      cmocka_unit_test(shutdown_is_not_closing),
      cmocka_unit_test(free_with_runaway),
      cmocka_unit_test(exit_from_other_scheduler),
  };
  RUN_TESTS(tests, argc, argv);
}
