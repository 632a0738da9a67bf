/* C <-> Lua: Lua actors spawned from C (string and file), calls both ways,
 * Lua failures and crashes as seen from C, tr_host_dostring; and
 * tr_send_async from other threads. */
#include "helpers.h"

#ifndef TROUPE_SOURCE_DIR
#define TROUPE_SOURCE_DIR "."
#endif

static const char *doubler_code =
    "local troupe = require 'troupe'\n"
    "return {\n"
    "  init = function(self, c) self.c = c end,\n"
    "  double = function(self, x) return x * 2 end,\n"
    "  pair = function(self) return 'a', {k = 1} end,\n"
    "  via_c = function(self, n) return self.c:call('add', n) end,\n"
    "  via_c_fail = function(self)\n"
    "    local v, err = self.c:call('fail')\n"
    "    assert(v == nil)\n"
    "    return err\n"
    "  end,\n"
    "  nope = function(self) return troupe.fail({reason = 'lua says no', code = 3}) end,\n"
    "  crash = function(self) error('boom') end,\n"
    "  bad_reply = function(self) return function() end end,\n"
    "  tell_c = function(self, v) self.c:send('note', v) end,\n"
    "}\n";

static tr_addr spawn_doubler(tr_host *h, tr_addr c) {
  tr_buf b;
  tr_buf_init(&b);
  if (c) tr_pack_addr(&b, c);
  tr_addr a = TR_NOADDR;
  assert_int_equal(tr_spawn_lua_string(h, doubler_code, "=doubler", &b, NULL, &a), TR_OK);
  tr_buf_free(&b);
  assert_true(tr_alive(h, a));
  return a;
}

static void c_calls_lua(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr d = spawn_doubler(h, TR_NOADDR);
  reply_rec r = {0}, p = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "double", rec_reply, &r, "i", 21), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "pair", rec_reply, &p, NULL), 0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 42);
  assert_int_equal(p.status, TR_OK);
  assert_string_equal(p.text, "\"a\", {k = 1}");
  char name[64];
  tr_addr_format(h, d, name, sizeof name);
  assert_non_null(strstr(name, "Doubler"));
  tr_host_free(h);
}

static void lua_calls_c(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr c = spawn_counter(h, 10);
  tr_addr d = spawn_doubler(h, c);
  reply_rec r = {0}, f = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "via_c", rec_reply, &r, "i", 5), 0);
  /* the C actor's failure value reaches Lua as (nil, err) and comes back */
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "via_c_fail", rec_reply, &f, NULL), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, d, "tell_c", "s", "from lua"), 0);
  tr_host_run(h);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 15);
  assert_int_equal(f.status, TR_OK);
  assert_string_equal(f.reason, "nope");
  assert_int_equal(f.field, 7);
  assert_non_null(strstr(g_events, "note(\"from lua\")"));
  assert_true(g_sender == d);
  tr_host_free(h);
}

static void c_actor_calls_lua_actor(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr c = spawn_counter(h, 0);
  tr_addr d = spawn_doubler(h, c);
  reply_rec r = {0}, crash = {0};
  /* c.relay(d, "double", 8): a C actor calls the Lua actor */
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "relay", rec_reply, &r, "a s i", d, "double", 8), 0);
  tr_host_run(h);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 16);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "relay", rec_reply, &crash, "a s i", d, "crash", 0),
                   0);
  tr_host_run(h);
  assert_int_equal(crash.status, TR_FAILED);
  assert_string_equal(crash.s, "crashed");
  tr_host_free(h);
}

static void lua_failure_crash_and_errors(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr d = spawn_doubler(h, TR_NOADDR);
  reply_rec nope = {0}, noh = {0}, bad = {0}, crash = {0}, after = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "nope", rec_reply, &nope, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "missing", rec_reply, &noh, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "bad_reply", rec_reply, &bad, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "crash", rec_reply, &crash, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, d, "double", rec_reply, &after, "i", 1), 0);
  tr_host_run(h);
  assert_int_equal(nope.status, TR_FAILED);
  assert_string_equal(nope.reason, "lua says no");
  assert_int_equal(nope.field, 3);
  assert_int_equal(noh.status, TR_ENOHANDLER);
  assert_non_null(strstr(noh.s, "no handler 'missing'"));
  assert_int_equal(bad.status, TR_EBADVALUE);
  assert_int_equal(crash.status, TR_ECRASHED);
  assert_non_null(strstr(crash.s, "boom"));
  assert_non_null(strstr(crash.s1, "traceback"));
  assert_int_equal(after.status, TR_EDEAD); /* it crashed before this one */
  assert_false(tr_alive(h, d));
  assert_non_null(strstr(lc.buf, "crashed"));
  tr_host_free(h);
}

static void spawn_lua_file(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 50);
  tr_addr acct;
  assert_int_equal(
      tr_spawn_lua_file(h, TROUPE_SOURCE_DIR "/examples/account.lua", &b, NULL, &acct), 0);
  tr_buf_free(&b);
  reply_rec w = {0}, over = {0}, bal = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, acct, "withdraw", rec_reply, &w, "i", 20), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, acct, "withdraw", rec_reply, &over, "i", 100), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, acct, "balance", rec_reply, &bal, NULL), 0);
  tr_host_run(h);
  assert_int_equal(w.status, TR_OK);
  assert_int_equal(w.i, 30);
  assert_int_equal(over.status, TR_FAILED);
  assert_string_equal(over.reason, "insufficient funds");
  assert_int_equal(over.field, 30); /* available */
  assert_int_equal(bal.i, 30);
  char name[64];
  tr_addr_format(h, acct, name, sizeof name);
  assert_non_null(strstr(name, "Account"));
  tr_host_free(h);
}

static void spawn_lua_errors(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr a = TR_NOADDR;
  assert_int_equal(tr_spawn_lua_string(h, "return {", "=broken", NULL, NULL, &a), TR_ELOAD);
  assert_non_null(strstr(lc.buf, "broken:1:"));
  assert_int_equal(tr_spawn_lua_string(h, "return 42", "=notable", NULL, NULL, &a), TR_ELOAD);
  assert_non_null(strstr(lc.buf, "must return a table"));
  assert_int_equal(tr_spawn_lua_string(h, "error('at load')", "=raises", NULL, NULL, &a), TR_ELOAD);
  assert_non_null(strstr(lc.buf, "at load"));
  assert_int_equal(tr_spawn_lua_file(h, "/nonexistent/dir/x.lua", NULL, NULL, &a), TR_ENOTFOUND);
  assert_true(a == TR_NOADDR);
  tr_host_stats st;
  tr_host_stats_get(h, &st);
  assert_int_equal(st.actors, 0);
  /* a Lua init that raises: the actor crashes, queued calls hear it */
  assert_int_equal(tr_spawn_lua_string(h, "return { init = function() error('init boom') end,"
                                          " x = function() return 1 end }",
                                       "=badinit", NULL, NULL, &a),
                   0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "x", rec_reply, &r, NULL), 0);
  tr_host_run(h);
  assert_false(tr_alive(h, a));
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_EDEAD);
  assert_non_null(strstr(lc.buf, "init boom"));
  tr_host_free(h);
}

static void host_dostring_interop(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_spawn_options o = {0};
  o.name = "cnt";
  tr_addr c;
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &c), 0);
  /* main Lua code calls the C actor (blocking, outside the loop) */
  assert_int_equal(tr_host_dostring(h,
                                    "local troupe = require 'troupe'\n"
                                    "local c = troupe.whereis('cnt')\n"
                                    "result = c:call('add', 5) + c:call('add', 1)\n"
                                    "local ok, err = c:call('fail')\n"
                                    "assert(ok == nil and err.reason == 'nope')\n"
                                    "local ok2, e2 = pcall(c.call, c, 'missing')\n"
                                    "assert(not ok2 and troupe.errcode(e2) == 'no_handler')\n"
                                    "local a = troupe.spawn({ hi = function(self, n) return 'hi ' .. n end })\n"
                                    "troupe.register('luaside', a)\n",
                                    "=setup"),
                   0);
  assert_int_equal(tr_host_dostring(h, "assert(result == 11, tostring(result))", NULL), 0);
  tr_addr l;
  assert_int_equal(tr_whereis(h, "luaside", &l), 0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, l, "hi", rec_reply, &r, "s", "c"), 0);
  tr_host_run(h);
  assert_int_equal(r.status, TR_OK);
  assert_string_equal(r.s, "hi c");
  /* errors: a syntax error and a runtime error are TR_ELOAD, with a log line */
  lc.buf[0] = 0;
  assert_int_equal(tr_host_dostring(h, "x = = 1", "=syntax"), TR_ELOAD);
  assert_non_null(strstr(lc.buf, "syntax:1:"));
  assert_int_equal(tr_host_dostring(h, "error('runtime trouble')", "=rt"), TR_ELOAD);
  assert_non_null(strstr(lc.buf, "runtime trouble"));
  /* and the state is still usable */
  assert_int_equal(tr_host_dostring(h, "assert(result == 11)", NULL), 0);
  tr_host_free(h);
}

static void lua_spawns_registered_c_behaviour(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  assert_int_equal(tr_register_behaviour(h, &counter), 0);
  assert_int_equal(tr_register_behaviour(h, &counter), TR_EEXISTS);
  assert_int_equal(tr_host_dostring(h,
                                    "local troupe = require 'troupe'\n"
                                    "local C = troupe.behaviour('Counter')\n"
                                    "local c = troupe.spawn_with({name = 'fromlua'}, C, 7)\n"
                                    "assert(c:call('add', 1) == 8)\n",
                                    "=spawnc"),
                   0);
  tr_addr c;
  assert_int_equal(tr_whereis(h, "fromlua", &c), 0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "get", rec_reply, &r, NULL), 0);
  tr_host_run(h);
  assert_int_equal(r.i, 8);
  assert_non_null(strstr(g_events, "init(7)"));
  tr_host_free(h);
}

/* ---- tr_send_async ---------------------------------------------------------------- */
typedef struct {
  tr_host *h;
  tr_addr to;
  int n;
  int first;
  int failures;
} sender_arg;

static void sender_thread(void *p) {
  sender_arg *s = p;
  tr_buf b;
  tr_buf_init(&b);
  for (int i = 0; i < s->n; i++) {
    tr_buf_reset(&b);
    tr_pack_int(&b, s->first + i);
    if (tr_send_async(s->h, s->to, "note", &b) != 0) s->failures++;
  }
  tr_buf_free(&b);
}

/* counts "note" messages; ends the loop when all came */
typedef struct {
  int64_t seen;
  int64_t last[2];
  int out_of_order;
  int64_t want;
} sink_st;
static int64_t g_sink_total;

static int sink_note(tr_ctx *ctx, const tr_msg *args) {
  sink_st *st = tr_ctx_state(ctx);
  int64_t v;
  if (tr_msg_int(args, 0, &v)) return TR_EBADVALUE;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &g_loop_thread)) g_wrong_thread = 1;
  int lane = v >= 100000; /* each thread's messages arrive in its order */
  if (v <= st->last[lane]) st->out_of_order++;
  st->last[lane] = v;
  st->seen++;
  g_sink_total = st->seen;
  if (st->seen == 2000) {
    ev("sink ooo=%d", st->out_of_order);
    tr_host_exit(tr_ctx_host(ctx), 0);
  }
  return 0;
}
static int sink_init(tr_ctx *ctx, const tr_msg *args) {
  sink_st *st = tr_ctx_state(ctx);
  st->last[0] = -1;
  st->last[1] = 99999;
  return 0;
}
static const tr_method sink_methods[] = {{"note", sink_note}, {NULL, NULL}};
static const tr_behaviour sink = {.name = "Sink",
                                  .state_size = sizeof(sink_st),
                                  .init = sink_init,
                                  .methods = sink_methods};

static void noop_timer(uv_timer_t *t) { (void)t; }

static void guard_fired(uv_timer_t *t) {
  ev("guard");
  tr_host_exit(t->data, 99);
}

static void send_async_from_threads(void **state) {
  reset_globals();
  g_sink_total = 0;
  tr_host *h = new_host(NULL, 0, 0); /* mailbox 1024: the threads outpace it */
  tr_addr s;
  tr_spawn_options o = {0};
  o.mailbox_capacity = 4096;
  assert_int_equal(tr_spawn(h, &sink, NULL, &o, &s), 0);
  /* the async handle does not keep the loop alive: a guard timer does */
  uv_timer_t guard;
  uv_timer_init(tr_host_loop(h), &guard);
  guard.data = h;
  uv_timer_start(&guard, guard_fired, 10000, 0);
  sender_arg a1 = {h, s, 1000, 0, 0}, a2 = {h, s, 1000, 100000, 0};
  uv_thread_t t1, t2;
  assert_int_equal(uv_thread_create(&t1, sender_thread, &a1), 0);
  assert_int_equal(uv_thread_create(&t2, sender_thread, &a2), 0);
  int code = tr_host_run(h);
  uv_thread_join(&t1);
  uv_thread_join(&t2);
  uv_timer_stop(&guard);
  uv_close((uv_handle_t *)&guard, NULL);
  assert_int_equal(a1.failures + a2.failures, 0);
  assert_int_equal(code, 0);
  assert_int_equal(g_sink_total, 2000);
  assert_int_equal(g_wrong_thread, 0);
  assert_string_equal(g_events, "sink ooo=0;");
  tr_host_free(h);
}

static void send_async_to_dead(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  assert_int_equal(tr_kill(h, a), 0);
  /* an actor already gone is refused at once */
  assert_int_equal(tr_send_async(h, a, "note", NULL), TR_EDEAD);
  assert_null(strstr(lc.buf, "dropped"));
  /* one that dies while the message is on its way: logged on delivery */
  assert_int_equal(tr_send_async(h, b, "note", NULL), 0);
  assert_int_equal(tr_kill(h, b), 0);
  uv_timer_t guard; /* gives the loop one turn to take the inbox */
  uv_timer_init(tr_host_loop(h), &guard);
  uv_timer_start(&guard, noop_timer, 20, 0);
  tr_host_run(h);
  uv_close((uv_handle_t *)&guard, NULL);
  assert_non_null(strstr(lc.buf, "dropped"));
  assert_non_null(strstr(lc.buf, "'note'"));
  /* an address of another node is refused at once */
  assert_int_equal(tr_send_async(h, ((tr_addr)2 << 56) | 1, "note", NULL), TR_EDEAD);
  tr_host_free(h);
}

/* A full mailbox (what it holds plus what is on its way) refuses the send
 * with TR_EFULL; every message accepted is delivered, none dropped. */
static void send_async_full_is_refused(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 3, 0); /* mailboxes of 3 */
  tr_addr a = spawn_counter(h, 0);
  tr_buf b;
  tr_buf_init(&b);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 3; i++) { /* the loop is not running: all on their way */
      tr_buf_reset(&b);
      tr_pack_int(&b, round * 10 + i);
      assert_int_equal(tr_send_async(h, a, "note", &b), 0);
    }
    assert_int_equal(tr_send_async(h, a, "note", &b), TR_EFULL);
    assert_int_equal(tr_send_async(h, a, "note", NULL), TR_EFULL);
    uv_timer_t guard; /* the loop takes the inbox and runs the actor */
    uv_timer_init(tr_host_loop(h), &guard);
    uv_timer_start(&guard, noop_timer, 20, 0);
    tr_host_run(h);
    uv_close((uv_handle_t *)&guard, NULL);
    tr_host_run(h);
  }
  tr_buf_free(&b);
  assert_string_equal(g_events, "init(0);start;note(0);note(1);note(2);note(10);note(11);note(12);");
  assert_null(strstr(lc.buf, "dropped"));
  tr_host_free(h);
}

/* Messages on their way from another thread count toward the bound for a
 * sender on the actor's own scheduler too. */
static void local_send_counts_async_in_flight(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 3, 0);
  tr_spawn_options o = {0};
  o.scheduler = 1; /* this thread's: tr_send below is a local send */
  tr_addr a;
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &a), TR_OK);
  assert_int_equal(tr_send_async(h, a, "note", NULL), 0);
  assert_int_equal(tr_send_async(h, a, "note", NULL), 0);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "note", NULL), 0);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "note", NULL), TR_EFULL); /* 1 + 2 on their way */
  assert_int_equal(tr_send_async(h, a, "note", NULL), TR_EFULL);
  uv_timer_t guard;
  uv_timer_init(tr_host_loop(h), &guard);
  uv_timer_start(&guard, noop_timer, 20, 0);
  tr_host_run(h);
  uv_close((uv_handle_t *)&guard, NULL);
  tr_host_run(h);
  assert_string_equal(g_events, "init();start;note();note();note();");
  tr_host_free(h);
}

static void send_async_alive_delivers(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, "async");
  assert_int_equal(tr_send_async(h, a, "note", &b), 0);
  tr_buf_free(&b); /* the host copied the bytes */
  uv_timer_t guard;
  uv_timer_init(tr_host_loop(h), &guard);
  uv_timer_start(&guard, noop_timer, 20, 0);
  tr_host_run(h);
  uv_close((uv_handle_t *)&guard, NULL);
  assert_non_null(strstr(g_events, "note(\"async\")"));
  assert_true(g_sender == TR_NOADDR);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(c_calls_lua),
      cmocka_unit_test(lua_calls_c),
      cmocka_unit_test(c_actor_calls_lua_actor),
      cmocka_unit_test(lua_failure_crash_and_errors),
      cmocka_unit_test(spawn_lua_file),
      cmocka_unit_test(spawn_lua_errors),
      cmocka_unit_test(host_dostring_interop),
      cmocka_unit_test(lua_spawns_registered_c_behaviour),
      cmocka_unit_test(send_async_from_threads),
      cmocka_unit_test(send_async_to_dead),
      cmocka_unit_test(send_async_full_is_refused),
      cmocka_unit_test(local_send_counts_async_in_flight),
      cmocka_unit_test(send_async_alive_delivers),
  };
  RUN_TESTS(tests, argc, argv);
}
