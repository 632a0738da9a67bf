/* The host: lifetime on its own loop and on a program's loop, run/exit,
 * stats, logging, the error table, address formatting and misuse. */
#include "helpers.h"

static void host_new_free_own_loop(void **state) {
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, NULL), TR_OK);
  assert_non_null(h);
  assert_non_null(tr_host_loop(h));
  /* nothing to do: run returns at once with code 0 */
  assert_int_equal(tr_host_run(h), 0);
  tr_host_free(h);
  tr_host_free(NULL); /* accepted */
}

static void host_new_rejects_null_out(void **state) {
  assert_int_equal(tr_host_new(NULL, NULL), TR_EINVAL);
}

static void host_on_caller_loop_is_closable(void **state) {
  reset_globals();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  tr_host_options o;
  tr_host_options_init(&o);
  o.loop = &loop;
  tr_host *h;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  assert_ptr_equal(tr_host_loop(h), &loop);
  tr_addr a = spawn_counter(h, 5);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "add", rec_reply, &r, "i", 2), TR_OK);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns: the host leaves nothing behind */
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 7);
  tr_host_free(h);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_user_timer(uv_timer_t *t) { (*(int *)t->data)++; }

/* Freed with actors, timers, queued messages and a pending call still there,
 * without the loop ever running: the program's own handle is untouched and
 * the loop closes once the program closes its handle. */
static void host_on_caller_loop_freed_busy(void **state) {
  reset_globals();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  uv_timer_t mine;
  int fired = 0;
  uv_timer_init(&loop, &mine);
  mine.data = &fired;
  uv_timer_start(&mine, on_user_timer, 1, 0);
  tr_host_options o;
  tr_host_options_init(&o);
  o.loop = &loop;
  tr_host *h;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  assert_int_equal(tr_send_after(h, a, 10000, 0, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_send_after(h, b, 5, 5, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, b, "note", "s", "queued"), TR_OK);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "defer", rec_reply, &r, NULL), TR_OK);
  /* one turn so that the call is deferred (owed) */
  uv_run(&loop, UV_RUN_NOWAIT);
  tr_host_free(h);
  assert_true(uv_is_active((uv_handle_t *)&mine) || fired == 1);
  uv_run(&loop, UV_RUN_DEFAULT); /* only the program's timer is left */
  assert_int_equal(fired, 1);
  uv_close((uv_handle_t *)&mine, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* The contract says a reply callback is called exactly once: a call still
 * pending when the host is freed hears about it. */
static void host_free_answers_pending_calls(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec deferred = {0}, queued = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "defer", rec_reply, &deferred, NULL), TR_OK);
  uv_run(tr_host_loop(h), UV_RUN_NOWAIT); /* init + defer */
  assert_int_equal(g_ntok, 1);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &queued, NULL), TR_OK);
  tr_host_free(h);
  assert_int_equal(deferred.n, 1);
  assert_true(deferred.status < 0);
  assert_int_equal(queued.n, 1);
  assert_true(queued.status < 0);
}

static void host_run_returns_exit_code(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  /* a long timer would keep the loop going: exit must end it */
  assert_int_equal(tr_send_after(h, a, 60000, 0, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "exit", "i", 7), TR_OK);
  uint64_t t0 = tr_now_ms(h);
  assert_int_equal(tr_host_run(h), 7);
  assert_true(tr_now_ms(h) - t0 < 5000);
  assert_true(tr_alive(h, a));
  assert_null(strstr(g_events, "tick"));
  tr_host_free(h);
}

static void host_run_until_idle(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  for (int i = 0; i < 5; i++) assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "add", "i", i), 0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &r, NULL), TR_OK);
  assert_int_equal(tr_host_run(h), 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.i, 0 + 1 + 2 + 3 + 4);
  tr_host_free(h);
}

static void host_stats_count(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_host_stats st0;
  tr_host_stats_get(h, &st0);
  assert_int_equal(st0.actors, 0);
  assert_int_equal(st0.spawned, 0);
  tr_addr a = spawn_counter(h, 0);
  spawn_counter(h, 0);
  tr_addr c = spawn_counter(h, 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "add", "i", 1), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "add", "i", 1), 0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &r, NULL), 0);
  assert_int_equal(tr_kill(h, c), 0);
  tr_host_run(h);
  tr_host_stats st;
  tr_host_stats_get(h, &st);
  assert_int_equal(st.actors, 2);
  assert_int_equal(st.spawned, 3);
  assert_int_equal(st.calls, 1);
  assert_true(st.messages >= 3);
  tr_host_stats_get(h, NULL);   /* ignored */
  tr_host_stats_get(NULL, &st); /* ignored */
  tr_host_free(h);
}

static void host_log_option_gets_lines(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  /* a one-way message nobody handles is logged, not answered */
  assert_int_equal(tr_send(h, TR_NOADDR, a, "nosuch", NULL), TR_OK);
  tr_host_run(h);
  assert_true(lc.lines >= 1);
  assert_non_null(strstr(lc.buf, "no handler 'nosuch'"));
  tr_host_free(h);
}

static void host_shutdown_runs_hooks(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  tr_host_run(h);
  g_events[0] = 0;
  g_veto = 5; /* ignored by shutdown */
  tr_host_shutdown(h);
  assert_false(tr_alive(h, a));
  assert_false(tr_alive(h, b));
  /* on_stopped runs for each; on_stopping may be skipped (its veto would
   * be ignored anyway), so only count the stopped hooks */
  const char *p = g_events;
  int stopped = 0;
  while ((p = strstr(p, "stopped;"))) stopped++, p++;
  assert_int_equal(stopped, 2);
  tr_host_free(h);
}

/* ---- errors --------------------------------------------------------------------- */
static void errors_roundtrip_every_code(void **state) {
  int seen = 0;
  for (int code = -1; code > TR__ERRMIN; code--) {
    const char *name = tr_errname(code);
    const char *msg = tr_strerror(code);
    assert_non_null(name);
    assert_non_null(msg);
    assert_string_not_equal(name, "unknown");
    assert_string_not_equal(msg, "unknown error");
    assert_true(strlen(msg) > 3);
    assert_int_equal(tr_errcode(name), code);
    for (int other = -1; other > code; other--)
      assert_string_not_equal(tr_errname(other), name);
    seen++;
  }
  /* every code of the X-macro list, and nothing in between */
#define COUNT(name, val, str, msg) +1
  assert_int_equal(seen, 0 TR_ERRNO_MAP(COUNT));
#undef COUNT
  assert_int_equal(seen, 19);
  assert_string_equal(tr_errname(TR_OK), "ok");
  assert_string_equal(tr_errname(TR_FAILED), "failed");
  assert_int_equal(tr_errcode("failed"), TR_FAILED);
  assert_string_equal(tr_errname(TR_EDEAD), "dead");
  assert_string_equal(tr_errname(TR_ENOHANDLER), "no_handler");
  assert_string_equal(tr_errname(TR_EALREADY), "already_replied");
  assert_int_equal(tr_errcode("timeout"), TR_ETIMEOUT);
  assert_int_equal(tr_errcode("killed"), TR_EKILLED);
  assert_string_not_equal(tr_strerror(TR_OK), tr_strerror(TR_EDEAD));
}

static void errors_unknown(void **state) {
  assert_string_equal(tr_errname(TR__ERRMIN), "unknown");
  assert_string_equal(tr_errname(12345), "unknown");
  assert_string_equal(tr_strerror(-999), "unknown error");
  assert_int_equal(tr_errcode("no such code"), 0);
  assert_int_equal(tr_errcode(""), 0);
  assert_int_equal(tr_errcode(NULL), 0);
}

/* ---- addresses ---------------------------------------------------------------- */
static void addr_format_forms(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  char buf[128], want[128];
  size_t n = tr_addr_format(h, a, buf, sizeof buf);
  snprintf(want, sizeof want, "<actor %llu Counter>", (unsigned long long)TR_ADDR_SERIAL(a));
  assert_string_equal(buf, want);
  assert_int_equal(n, strlen(want));
  assert_int_equal(tr_register(h, "ctr", a), 0);
  tr_addr_format(h, a, buf, sizeof buf);
  snprintf(want, sizeof want, "<actor %llu Counter \"ctr\">",
           (unsigned long long)TR_ADDR_SERIAL(a));
  assert_string_equal(buf, want);
  /* truncated, but the wanted length is returned */
  char small[8];
  n = tr_addr_format(h, a, small, sizeof small);
  assert_int_equal(n, strlen(want));
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_int_equal(tr_kill(h, a), 0);
  tr_addr_format(h, a, buf, sizeof buf);
  snprintf(want, sizeof want, "<actor %llu dead>", (unsigned long long)TR_ADDR_SERIAL(a));
  assert_string_equal(buf, want);
  assert_int_equal(TR_ADDR_NODE(a), 0);
  assert_int_equal(TR_ADDR_SCHED(a), 0);
  tr_host_free(h);
}

/* ---- misuse ---------------------------------------------------------------------- */
static void noop_reply(tr_host *h, int status, const tr_msg *m, void *ud) { (*(int *)ud)++; }
static void noop_room(tr_host *h, tr_addr to, int status, void *ud) { (*(int *)ud)++; }

static void misuse_null_host(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  tr_addr out = 0;
  tr_token tok = {0};
  int calls = 0;
  tr_addr some = 1;
  assert_int_equal(tr_host_run(NULL), TR_EINVAL);
  tr_host_exit(NULL, 1);
  tr_host_shutdown(NULL);
  assert_null(tr_host_loop(NULL));
  assert_int_equal(tr_spawn(NULL, &counter, NULL, NULL, &out), TR_EINVAL);
  assert_int_equal(tr_spawn_lua_string(NULL, "return {}", NULL, NULL, NULL, &out), TR_EINVAL);
  assert_int_equal(tr_spawn_lua_file(NULL, "x.lua", NULL, NULL, &out), TR_EINVAL);
  assert_int_equal(tr_send(NULL, TR_NOADDR, some, "m", &b), TR_EINVAL);
  assert_int_equal(tr_send_fmt(NULL, TR_NOADDR, some, "m", "i", 1), TR_EINVAL);
  assert_int_equal(tr_send_async(NULL, some, "m", &b), TR_EINVAL);
  assert_int_equal(tr_call(NULL, TR_NOADDR, some, "m", &b, TR_TIMEOUT_DEFAULT, noop_reply, &calls),
                   TR_EINVAL);
  assert_int_equal(tr_call_fmt(NULL, TR_NOADDR, some, "m", noop_reply, &calls, NULL), TR_EINVAL);
  assert_int_equal(tr_notify_room(NULL, some, noop_room, &calls), TR_EINVAL);
  assert_int_equal(tr_send_after(NULL, some, 1, 0, "m", NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_cancel_timer(NULL, 1), TR_EINVAL);
  assert_int_equal(tr_register(NULL, "n", some), TR_EINVAL);
  assert_int_equal(tr_unregister(NULL, "n"), TR_EINVAL);
  assert_int_equal(tr_whereis(NULL, "n", &out), TR_EINVAL);
  assert_int_equal(tr_stop(NULL, some), TR_EINVAL);
  assert_int_equal(tr_kill(NULL, some), TR_EINVAL);
  assert_int_equal(tr_retain(NULL, some), TR_EINVAL);
  assert_int_equal(tr_release(NULL, some), TR_EINVAL);
  assert_int_equal(tr_alive(NULL, some), 0);
  assert_int_equal(tr_token_reply(NULL, &tok, &b), TR_EINVAL);
  assert_int_equal(tr_token_fail(NULL, &tok, &b), TR_EINVAL);
  assert_int_equal(tr_register_behaviour(NULL, &counter), TR_EINVAL);
  assert_int_equal(tr_load_behaviours(NULL, "x.so"), TR_EINVAL);
  assert_int_equal(tr_host_dostring(NULL, "x = 1", NULL), TR_EINVAL);
  assert_int_equal(tr_host_dofile(NULL, "x.lua"), TR_EINVAL);
  assert_int_equal(tr_now_ms(NULL), 0);
  char buf[64];
  assert_true(tr_addr_format(NULL, some, buf, sizeof buf) > 0);
  assert_string_equal(buf, "<actor 1>");
  assert_int_equal(calls, 0);
  tr_buf_free(&b);
}

static void misuse_bad_arguments(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  int calls = 0;
  tr_addr out;
  tr_token tok = {0};
  assert_int_equal(tr_spawn(h, NULL, NULL, NULL, &out), TR_EINVAL);
  assert_int_equal(tr_send(h, TR_NOADDR, a, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "", NULL), TR_EINVAL);
  assert_int_equal(tr_send_async(h, a, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_send_async(h, a, "", NULL), TR_EINVAL);
  assert_int_equal(tr_call(h, TR_NOADDR, a, NULL, NULL, TR_TIMEOUT_DEFAULT, noop_reply, &calls),
                   TR_EINVAL);
  assert_int_equal(tr_call(h, TR_NOADDR, a, "", NULL, TR_TIMEOUT_DEFAULT, noop_reply, &calls),
                   TR_EINVAL);
  assert_int_equal(tr_call(h, TR_NOADDR, a, "get", NULL, TR_TIMEOUT_DEFAULT, NULL, NULL),
                   TR_EINVAL);
  /* a timeout is a positive number of ms or one of the two specials */
  assert_int_equal(tr_call(h, TR_NOADDR, a, "get", NULL, -5, noop_reply, &calls), TR_EINVAL);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", NULL, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "add", noop_reply, &calls, "q", 1), TR_EINVAL);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "add", "[i", 1), TR_EINVAL);
  assert_int_equal(tr_notify_room(h, a, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_send_after(h, a, 1, 0, NULL, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_send_after(h, a, 1, 0, "", NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_send_after(h, a, -1, 0, "tick", NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_send_after(h, a, 1, -1, "tick", NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_register(h, NULL, a), TR_EINVAL);
  assert_int_equal(tr_register(h, "", a), TR_EINVAL);
  assert_int_equal(tr_unregister(h, NULL), TR_EINVAL);
  assert_int_equal(tr_whereis(h, NULL, &out), TR_EINVAL);
  assert_int_equal(tr_token_reply(h, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_token_reply(h, &tok, NULL), TR_EALREADY); /* never owed */
  assert_int_equal(tr_register_behaviour(h, NULL), TR_EINVAL);
  assert_int_equal(tr_spawn_lua_string(h, NULL, NULL, NULL, NULL, &out), TR_EINVAL);
  assert_int_equal(tr_host_dostring(h, NULL, NULL), TR_EINVAL);
  assert_int_equal(tr_load_behaviours(h, NULL), TR_EINVAL);
  /* the host still works and no callback ran */
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &r, NULL), TR_OK);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(calls, 0);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(host_new_free_own_loop),
      cmocka_unit_test(host_new_rejects_null_out),
      cmocka_unit_test(host_on_caller_loop_is_closable),
      cmocka_unit_test(host_on_caller_loop_freed_busy),
      cmocka_unit_test(host_free_answers_pending_calls),
      cmocka_unit_test(host_run_returns_exit_code),
      cmocka_unit_test(host_run_until_idle),
      cmocka_unit_test(host_stats_count),
      cmocka_unit_test(host_log_option_gets_lines),
      cmocka_unit_test(host_shutdown_runs_hooks),
      cmocka_unit_test(errors_roundtrip_every_code),
      cmocka_unit_test(errors_unknown),
      cmocka_unit_test(addr_format_forms),
      cmocka_unit_test(misuse_null_host),
      cmocka_unit_test(misuse_bad_arguments),
  };
  RUN_TESTS(tests, argc, argv);
}
