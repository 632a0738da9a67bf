/* Timers (messages to self) and the name registry. */
#include "helpers.h"

static tr_timer_id after(tr_host *h, tr_addr a, int64_t delay, int64_t interval, const char *label) {
  tr_buf b;
  tr_buf_init(&b);
  if (label) tr_pack_str(&b, label);
  tr_timer_id id = 0;
  assert_int_equal(tr_send_after(h, a, delay, interval, "tick", &b, &id), 0);
  assert_true(id != 0);
  tr_buf_free(&b);
  return id;
}

static void timers_fire_in_order(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_host_run(h);
  g_events[0] = 0;
  uv_update_time(tr_host_loop(h));
  uint64_t t0 = tr_now_ms(h);
  tr_timer_id i1 = after(h, a, 60, 0, "c");
  tr_timer_id i2 = after(h, a, 20, 0, "a");
  tr_timer_id i3 = after(h, a, 40, 0, "b");
  tr_timer_id i4 = after(h, a, 40, 0, "b2"); /* same due time: in creation order */
  assert_true(i1 != i2 && i2 != i3 && i3 != i4);
  tr_host_run(h);
  assert_string_equal(g_events, "tick(\"a\");tick(\"b\");tick(\"b2\");tick(\"c\");");
  assert_true(tr_now_ms(h) - t0 >= 59);
  /* fired one-shot timers are gone */
  assert_int_equal(tr_cancel_timer(h, i1), TR_ENOTFOUND);
  tr_host_free(h);
}

static void timer_zero_delay(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  after(h, a, 0, 0, "now");
  tr_host_run(h);
  assert_string_equal(g_events, "init(0);start;tick(\"now\");");
  tr_host_free(h);
}

static void noop(uv_timer_t *t) { (void)t; }

static void interval_repeats_until_cancelled(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_host_run(h);
  g_events[0] = 0;
  uv_update_time(tr_host_loop(h));
  uint64_t t0 = tr_now_ms(h);
  g_tick_limit = 4;
  g_timer = after(h, a, 5, 5, NULL);
  tr_timer_id id = g_timer;
  tr_host_run(h); /* returns once the handler cancels the timer */
  /* the first four ticks, then the cancel; a loop running late may have
   * queued a few more firings before the cancel, but none come after */
  assert_memory_equal(g_events, "tick();tick();tick();tick();cancel=0;", 37);
  assert_true(tr_now_ms(h) - t0 >= 19);
  assert_int_equal(tr_cancel_timer(h, id), TR_ENOTFOUND);
  size_t n = strlen(g_events);
  uv_timer_t guard; /* 50 ms more: no tick */
  uv_timer_init(tr_host_loop(h), &guard);
  uv_timer_start(&guard, noop, 50, 0);
  tr_host_run(h);
  uv_close((uv_handle_t *)&guard, NULL);
  assert_int_equal(strlen(g_events), n);
  tr_host_free(h);
}

static void cancel_before_firing(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_timer_id x = after(h, a, 20, 0, "x");
  tr_timer_id y = after(h, a, 30, 0, "y");
  tr_timer_id z = after(h, a, 10, 10, "z");
  assert_int_equal(tr_cancel_timer(h, x), 0);
  assert_int_equal(tr_cancel_timer(h, x), TR_ENOTFOUND);
  assert_int_equal(tr_cancel_timer(h, z), 0);
  assert_int_equal(tr_cancel_timer(h, 987654), TR_ENOTFOUND);
  tr_host_run(h);
  assert_string_equal(g_events, "init(0);start;tick(\"y\");");
  assert_int_equal(tr_cancel_timer(h, y), TR_ENOTFOUND);
  tr_host_free(h);
}

/* tr_send_at: a past time fires at once; a time beyond any int64 delay is
 * accepted as "never" (not refused, not wrapped into the past), and cancels. */
static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

static void send_at_past_and_far_future(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_host_run(h);
  g_events[0] = 0;
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, "past");
  tr_timer_id past = 0, never = 0;
  assert_int_equal(tr_send_at(h, a, 0, "tick", &b, &past), 0);
  tr_buf_reset(&b);
  tr_pack_str(&b, "never");
  assert_int_equal(tr_send_at(h, a, UINT64_MAX, "tick", &b, &never), 0);
  tr_buf_free(&b);
  assert_true(past != 0 && never != 0);
  uv_timer_t guard; /* run the loop 30 ms (the pending "never" keeps it alive) */
  uv_timer_init(tr_host_loop(h), &guard);
  uv_timer_start(&guard, stop_loop, 30, 0);
  tr_host_run(h);
  uv_close((uv_handle_t *)&guard, NULL);
  assert_string_equal(g_events, "tick(\"past\");");
  assert_int_equal(tr_cancel_timer(h, never), 0);
  assert_int_equal(tr_send_at(NULL, a, 0, "tick", NULL, NULL), TR_EINVAL);
  tr_host_free(h);
}

static void timers_die_with_their_actor(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  tr_timer_id long_one = after(h, a, 30000, 0, "never");
  after(h, b, 50, 0, "stopped before");
  after(h, a, 5, 5, "every");
  assert_int_equal(tr_kill(h, a), 0);
  assert_int_equal(tr_stop(h, b), 0);
  uv_update_time(tr_host_loop(h));
  uint64_t t0 = tr_now_ms(h);
  tr_host_run(h); /* nothing left: returns without waiting 30 s */
  assert_true(tr_now_ms(h) - t0 < 1000);
  assert_null(strstr(g_events, "tick"));
  assert_int_equal(tr_cancel_timer(h, long_one), TR_ENOTFOUND);
  assert_int_equal(tr_send_after(h, a, 1, 0, "tick", NULL, NULL), TR_EDEAD);
  tr_host_free(h);
}

/* ---- names ---------------------------------------------------------------------- */
static void names_register_whereis_unregister(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  tr_addr out = 0;
  assert_int_equal(tr_whereis(h, "bank", &out), TR_ENOTFOUND);
  assert_int_equal(tr_register(h, "bank", a), 0);
  assert_int_equal(tr_register(h, "bank", a), 0); /* again, same actor: fine */
  assert_int_equal(tr_register(h, "bank", b), TR_EEXISTS);
  assert_int_equal(tr_register(h, "vault", a), 0); /* several names per actor */
  assert_int_equal(tr_whereis(h, "bank", &out), 0);
  assert_true(out == a);
  assert_int_equal(tr_whereis(h, "vault", &out), 0);
  assert_true(out == a);
  assert_int_equal(tr_whereis(h, "bank", NULL), 0);
  assert_int_equal(tr_unregister(h, "bank"), 0);
  assert_int_equal(tr_unregister(h, "bank"), TR_ENOTFOUND);
  assert_int_equal(tr_whereis(h, "bank", &out), TR_ENOTFOUND);
  assert_int_equal(tr_register(h, "bank", b), 0); /* free again */
  assert_int_equal(tr_whereis(h, "bank", &out), 0);
  assert_true(out == b);
  /* a name is a way to reach the actor */
  reply_rec r = {0};
  assert_int_equal(tr_whereis(h, "vault", &out), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, out, "add", rec_reply, &r, "i", 4), 0);
  tr_host_run(h);
  assert_int_equal(r.i, 4);
  tr_host_free(h);
}

static void names_vanish_on_death(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0), c = spawn_counter(h, 0);
  assert_int_equal(tr_register(h, "killed", a), 0);
  assert_int_equal(tr_register(h, "stopped", b), 0);
  assert_int_equal(tr_register(h, "also", b), 0);
  assert_int_equal(tr_kill(h, a), 0);
  assert_int_equal(tr_stop(h, b), 0);
  tr_host_run(h);
  tr_addr out;
  assert_int_equal(tr_whereis(h, "killed", &out), TR_ENOTFOUND);
  assert_int_equal(tr_whereis(h, "stopped", &out), TR_ENOTFOUND);
  assert_int_equal(tr_whereis(h, "also", &out), TR_ENOTFOUND);
  assert_int_equal(tr_unregister(h, "killed"), TR_ENOTFOUND);
  /* the names can be taken again */
  assert_int_equal(tr_register(h, "killed", c), 0);
  assert_int_equal(tr_register(h, "stopped", c), 0);
  assert_int_equal(tr_whereis(h, "stopped", &out), 0);
  assert_true(out == c);
  tr_host_free(h);
}

static void spawn_with_name_option(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_spawn_options o = {0};
  o.name = "svc";
  tr_addr a, b = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &a), 0);
  tr_addr out;
  assert_int_equal(tr_whereis(h, "svc", &out), 0);
  assert_true(out == a);
  tr_host_stats st0, st1;
  tr_host_stats_get(h, &st0);
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &b), TR_EEXISTS);
  assert_true(b == TR_NOADDR);
  tr_host_stats_get(h, &st1);
  assert_int_equal(st1.actors, st0.actors); /* no half-made actor */
  tr_host_run(h);
  assert_string_equal(g_events, "init();start;"); /* only the first ran */
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(timers_fire_in_order),
      cmocka_unit_test(timer_zero_delay),
      cmocka_unit_test(interval_repeats_until_cancelled),
      cmocka_unit_test(cancel_before_firing),
      cmocka_unit_test(send_at_past_and_far_future),
      cmocka_unit_test(timers_die_with_their_actor),
      cmocka_unit_test(names_register_whereis_unregister),
      cmocka_unit_test(names_vanish_on_death),
      cmocka_unit_test(spawn_with_name_option),
  };
  RUN_TESTS(tests, argc, argv);
}
