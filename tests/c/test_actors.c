/* C actors: spawning, sends and calls between them, every kind of reply,
 * system errors, deferred replies, full mailboxes, stop/kill and stale
 * addresses. */
#include "helpers.h"

static void spawn_runs_init_with_args(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "I s", (int64_t)40, "extra"), 0);
  tr_addr a;
  assert_int_equal(tr_spawn(h, &counter, &b, NULL, &a), TR_OK);
  tr_buf_free(&b);
  assert_true(tr_alive(h, a));
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "add", rec_reply, &r, "i", 2), TR_OK);
  tr_host_run(h);
  assert_string_equal(g_events, "init(40, \"extra\");start;");
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 42);
  /* no args at all */
  g_events[0] = 0;
  tr_addr c;
  assert_int_equal(tr_spawn(h, &counter, NULL, NULL, &c), TR_OK);
  assert_true(c != a);
  tr_host_run(h);
  assert_string_equal(g_events, "init();start;");
  tr_host_free(h);
}

static void spawn_init_failure_crashes(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, "fail");
  tr_addr a;
  assert_int_equal(tr_spawn(h, &counter, &b, NULL, &a), TR_OK);
  tr_buf_free(&b);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &r, NULL), TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, a));
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_EDEAD);
  assert_non_null(strstr(lc.buf, "init failed: bad init"));
  assert_null(strstr(g_events, "start")); /* on_start does not run */
  assert_null(strstr(g_events, "stopped")); /* nor the stop hooks */
  tr_host_free(h);
}

static void send_between_c_actors(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "forward", "a i", b, 17), TR_OK);
  tr_host_run(h);
  assert_non_null(strstr(g_events, "note(17)"));
  assert_true(g_sender == a);
  assert_int_equal(g_is_call, 0);
  /* from outside any actor the sender is nobody */
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, b, "note", "s", "x"), TR_OK);
  tr_host_run(h);
  assert_true(g_sender == TR_NOADDR);
  tr_host_free(h);
}

static void call_between_c_actors(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 100);
  reply_rec r = {0}, f = {0}, w = {0};
  /* a.relay(b, "add", 5): a calls b as itself, answers with b's reply */
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "relay", rec_reply, &r, "a s i", b, "add", 5), 0);
  /* b's own error comes back as the failure text */
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "relay", rec_reply, &f, "a s i", b, "nosuch", 1),
                   0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 105);
  assert_int_equal(f.n, 1);
  assert_int_equal(f.status, TR_FAILED);
  assert_string_equal(f.s, "no_handler");
  /* the callee sees the calling actor as sender, and a call */
  assert_int_equal(tr_call_fmt(h, a, b, "who", rec_reply, &w, NULL), 0);
  tr_host_run(h);
  assert_int_equal(w.status, TR_OK);
  char want[64];
  snprintf(want, sizeof want, "<actor %llu>, true", (unsigned long long)TR_ADDR_SERIAL(a));
  assert_string_equal(w.text, want);
  tr_host_free(h);
}

static void reply_ok_values(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r = {0}, e = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "echo", rec_reply, &r, "i s [i i]", 1, "b", 2, 3),
                   0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "stop_self", rec_reply, &e, NULL), 0);
  tr_host_run(h);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.count, 2);
  assert_string_equal(r.s, "1, \"b\", {2, 3}");
  assert_string_equal(r.text, "\"1, \\\"b\\\", {2, 3}\", 3");
  /* a handler that packs nothing answers with no values */
  assert_int_equal(e.status, TR_OK);
  assert_int_equal(e.count, 0);
  tr_host_free(h);
}

static void reply_failed_value(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "fail", rec_reply, &r, NULL), 0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_FAILED);
  assert_int_equal(r.count, 1); /* only the failure value, not the 99 */
  assert_string_equal(r.reason, "nope");
  assert_int_equal(r.field, 7);
  assert_true(tr_alive(h, a)); /* its own error is not a crash */
  tr_host_free(h);
}

static void reply_system_errors(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec custom = {0}, raw = {0}, noh = {0}, badarg = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "syserr", rec_reply, &custom, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "rawerr", rec_reply, &raw, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "missing", rec_reply, &noh, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "add", rec_reply, &badarg, "s", "x"), 0);
  tr_host_run(h);
  assert_int_equal(custom.status, TR_EBADVALUE);
  assert_string_equal(custom.s, "custom 42");
  assert_int_equal(raw.status, TR_ENOTFOUND);
  assert_string_equal(raw.s, tr_strerror(TR_ENOTFOUND));
  assert_int_equal(noh.status, TR_ENOHANDLER);
  assert_non_null(strstr(noh.s, "no handler 'missing'"));
  assert_non_null(strstr(noh.s, "Counter"));
  assert_int_equal(badarg.status, TR_EBADVALUE);
  assert_string_equal(badarg.s, "add needs an integer");
  assert_true(tr_alive(h, a));
  tr_host_free(h);
}

static void reply_corrupt_payload(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_buf b;
  tr_buf_init(&b);
  b.data[0] = (char)0xc1; /* not MessagePack */
  b.len = 1;
  reply_rec r = {0};
  assert_int_equal(tr_call(h, TR_NOADDR, a, "add", &b, TR_TIMEOUT_DEFAULT, rec_reply, &r), 0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_EBADVALUE);
  assert_non_null(strstr(r.s, "corrupt"));
  tr_buf_free(&b);
  tr_host_free(h);
}

/* A Lua actor refuses corrupt arguments the same way one message alone and
 * inside a batch (the runner): a call hears bad_value, a send is dropped
 * and logged, and the messages around it are handled. */
static const char *LUA_ADDER =
    "return { init = function(self) self.n = 0 end,"
    "  add = function(self, k) self.n = self.n + k end,"
    "  get = function(self) return self.n end }";

static void corrupt_buf(tr_buf *b) {
  tr_buf_init(b);
  b->data[0] = (char)0xc1; /* not MessagePack */
  b->len = 1;
}

static void lua_corrupt_payload_alone_and_in_a_batch(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr a;
  assert_int_equal(tr_spawn_lua_string(h, LUA_ADDER, "adder", NULL, NULL, &a), TR_OK);
  tr_host_run(h); /* init: alone, then nothing queued */
  tr_buf bad;
  corrupt_buf(&bad);
  /* alone */
  reply_rec r1 = {0};
  assert_int_equal(tr_call(h, TR_NOADDR, a, "add", &bad, TR_TIMEOUT_DEFAULT, rec_reply, &r1), 0);
  tr_host_run(h);
  assert_int_equal(r1.n, 1);
  assert_int_equal(r1.status, TR_EBADVALUE);
  assert_non_null(strstr(r1.s, "corrupt payload for 'add'"));
  /* in a batch: all queued before the loop runs */
  reply_rec r2 = {0}, sum = {0};
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "add", "i", 1), 0);
  assert_int_equal(tr_call(h, TR_NOADDR, a, "add", &bad, TR_TIMEOUT_DEFAULT, rec_reply, &r2), 0);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "add", &bad), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "add", "i", 2), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &sum, NULL), 0);
  tr_host_run(h);
  assert_int_equal(r2.n, 1);
  assert_int_equal(r2.status, TR_EBADVALUE);
  assert_non_null(strstr(r2.s, "corrupt payload for 'add'"));
  assert_int_equal(sum.status, TR_OK);
  assert_int_equal(sum.i, 3);
  assert_non_null(strstr(lc.buf, "corrupt payload for 'add' (message dropped)"));
  assert_true(tr_alive(h, a));
  tr_buf_free(&bad);
  tr_host_free(h);
}

static void call_dead_address(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  assert_int_equal(tr_kill(h, a), 0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &r, NULL), TR_EDEAD);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "get", NULL), TR_EDEAD);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, TR_NOADDR, "get", rec_reply, &r, NULL), TR_EDEAD);
  /* another node, another scheduler: nobody there */
  tr_addr far = ((tr_addr)1 << 56) | TR_ADDR_SERIAL(a);
  assert_int_equal(tr_send(h, TR_NOADDR, far, "get", NULL), TR_EDEAD);
  far = ((tr_addr)3 << 48) | TR_ADDR_SERIAL(a);
  assert_int_equal(tr_send(h, TR_NOADDR, far, "get", NULL), TR_EDEAD);
  tr_host_run(h);
  assert_int_equal(r.n, 0); /* a call that fails never calls back */
  tr_host_free(h);
}

/* Calls queued behind a killed or stopped actor fail at once, not at their timeout. */
static void queued_calls_fail_when_killed(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r[3] = {{0}};
  for (int i = 0; i < 3; i++)
    assert_int_equal(tr_call(h, TR_NOADDR, a, "get", NULL, 10000, rec_reply, &r[i]), 0);
  assert_int_equal(tr_kill(h, a), 0);
  assert_false(tr_alive(h, a));
  uint64_t t0 = tr_now_ms(h);
  tr_host_run(h);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].n, 1);
    assert_int_equal(r[i].status, TR_EDEAD);
    assert_non_null(strstr(r[i].s, "killed"));
  }
  assert_true(tr_now_ms(h) - t0 < 2000);
  tr_host_free(h);
}

static void queued_calls_fail_when_stopped(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec owed = {0}, r[3] = {{0}};
  assert_int_equal(tr_call(h, TR_NOADDR, a, "defer", NULL, 10000, rec_reply, &owed), 0);
  run_ready(h); /* the call stays owed: tr_host_run would wait for its timeout */
  assert_int_equal(g_ntok, 1);
  assert_int_equal(owed.n, 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(tr_call(h, TR_NOADDR, a, "get", NULL, 10000, rec_reply, &r[i]), 0);
  assert_int_equal(tr_stop(h, a), 0);
  uint64_t t0 = tr_now_ms(h);
  tr_host_run(h);
  assert_false(tr_alive(h, a));
  assert_int_equal(owed.n, 1);
  assert_int_equal(owed.status, TR_EDEAD);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].n, 1);
    assert_int_equal(r[i].status, TR_EDEAD);
  }
  assert_true(tr_now_ms(h) - t0 < 2000);
  tr_host_free(h);
}

static void call_times_out(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r = {0};
  uv_update_time(tr_host_loop(h));
  uint64_t t0 = tr_now_ms(h);
  assert_int_equal(tr_call(h, TR_NOADDR, a, "defer", NULL, 30, rec_reply, &r), 0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_ETIMEOUT);
  assert_non_null(strstr(r.s, "timed out"));
  assert_true(r.at - t0 >= 29);
  assert_true(r.at - t0 < 3000);
  /* answering after the caller gave up does not call back again */
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 1);
  int rc = tr_token_reply(h, &g_tok[0], &b);
  assert_true(rc == TR_OK || rc == TR_EALREADY);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  tr_buf_free(&b);
  tr_host_free(h);
}

static void call_default_timeout_from_options(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 40);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r = {0}, inf = {0};
  uv_update_time(tr_host_loop(h));
  uint64_t t0 = tr_now_ms(h);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "defer", rec_reply, &r, NULL), 0);
  /* an infinite call is still pending when the other has timed out */
  assert_int_equal(tr_call(h, TR_NOADDR, a, "defer", NULL, TR_TIMEOUT_INFINITE, rec_reply, &inf), 0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_ETIMEOUT);
  assert_true(r.at - t0 >= 39);
  assert_int_equal(inf.n, 0);
  assert_int_equal(g_ntok, 2);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, "late");
  assert_int_equal(tr_token_reply(h, &g_tok[1], &b), 0);
  tr_host_run(h);
  assert_int_equal(inf.n, 1);
  assert_int_equal(inf.status, TR_OK);
  assert_string_equal(inf.s, "late");
  tr_buf_free(&b);
  tr_host_free(h);
}

/* ---- deferred replies ------------------------------------------------------------ */
static void deferred_reply_later(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r = {0}, f = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "defer", rec_reply, &r, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "defer", rec_reply, &f, NULL), 0);
  run_ready(h);
  assert_int_equal(g_ntok, 2);
  assert_int_equal(r.n, 0); /* nobody answered yet */
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_fmt(&b, "i s", 5, "five");
  assert_int_equal(tr_token_reply(h, &g_tok[0], &b), TR_OK);
  assert_int_equal(tr_token_reply(h, &g_tok[0], &b), TR_EALREADY);
  assert_int_equal(tr_token_fail(h, &g_tok[0], &b), TR_EALREADY);
  tr_buf_reset(&b);
  tr_pack_str(&b, "no luck");
  assert_int_equal(tr_token_fail(h, &g_tok[1], &b), TR_OK);
  assert_int_equal(tr_token_reply(h, &g_tok[1], NULL), TR_EALREADY);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  assert_string_equal(r.text, "5, \"five\"");
  assert_int_equal(f.n, 1);
  assert_int_equal(f.status, TR_FAILED);
  assert_string_equal(f.s, "no luck");
  tr_buf_free(&b);
  tr_host_free(h);
}

static void deferred_owner_stops(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0), k = spawn_counter(h, 0);
  reply_rec r = {0}, rk = {0};
  assert_int_equal(tr_call(h, TR_NOADDR, a, "defer", NULL, 10000, rec_reply, &r), 0);
  assert_int_equal(tr_call(h, TR_NOADDR, k, "defer", NULL, 10000, rec_reply, &rk), 0);
  run_ready(h);
  assert_int_equal(g_ntok, 2);
  assert_int_equal(tr_stop(h, a), 0);
  assert_int_equal(tr_kill(h, k), 0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_EDEAD);
  assert_int_equal(rk.n, 1);
  assert_int_equal(rk.status, TR_EDEAD);
  /* the tokens are spent */
  assert_int_equal(tr_token_reply(h, &g_tok[0], NULL), TR_EALREADY);
  assert_int_equal(tr_token_reply(h, &g_tok[1], NULL), TR_EALREADY);
  tr_host_free(h);
}

static void defer_needs_a_call(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "defer_send", NULL), 0);
  tr_host_run(h);
  assert_int_equal(g_defer_rc, TR_EINVAL);
  tr_host_free(h);
}

/* ---- full mailboxes --------------------------------------------------------------- */
typedef struct {
  tr_addr to;
  int n, status, send_rc;
} room_rec;

static void on_room(tr_host *h, tr_addr to, int status, void *ud) {
  room_rec *r = ud;
  r->n++;
  r->status = status;
  r->to = to;
  if (status == 0) r->send_rc = tr_send_fmt(h, TR_NOADDR, to, "note", "i", 99);
}

static void mailbox_full_then_room(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_spawn_options o = {0};
  o.mailbox_capacity = 2;
  tr_addr a;
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &a), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 1), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 2), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 3), TR_EFULL);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &r, NULL), TR_EFULL);
  room_rec room = {0, 0, 1, 1};
  room.send_rc = 1;
  assert_int_equal(tr_notify_room(h, a, on_room, &room), 0);
  assert_int_equal(room.n, 0); /* no room yet */
  tr_host_run(h);
  assert_int_equal(room.n, 1);
  assert_int_equal(room.status, 0);
  assert_true(room.to == a);
  assert_int_equal(room.send_rc, 0);
  assert_string_equal(g_events, "init();start;note(1);note(2);note(99);");
  assert_int_equal(r.n, 0);
  tr_host_free(h);
}

static void mailbox_capacity_from_host_options(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 1, 0);
  tr_addr a = spawn_counter(h, 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 1), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 2), TR_EFULL);
  /* timers and stop use the private lane: not blocked by a full mailbox */
  assert_int_equal(tr_send_after(h, a, 0, 0, "tick", NULL, NULL), 0);
  tr_host_run(h);
  assert_non_null(strstr(g_events, "note(1);"));
  assert_non_null(strstr(g_events, "tick();"));
  assert_null(strstr(g_events, "note(2)"));
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 3), 0);
  tr_host_free(h);
}

/* A C actor that asks for room in a full mailbox, then dies before there is
 * room: its callback hears TR_EDEAD while it dies (its state, which the
 * callback's ud points into, still exists), and never again after. */
typedef struct {
  tr_addr self, target;
  int64_t rounds; /* times its callback refills the mailbox and asks again */
} asker_st;

static void asker_room(tr_host *h, tr_addr to, int status, void *ud) {
  asker_st *st = ud; /* its state: only valid while the actor exists */
  ev("room(%s)", tr_errname(status));
  if (status == 0 && st->rounds-- > 0) {
    while (tr_send_fmt(h, TR_NOADDR, to, "note", "i", 7) == 0) {
    }
    int rc = tr_notify_room(h, to, asker_room, st); /* asked as this actor again */
    ev("asked(%s)", tr_errname(rc));
    tr_kill(h, st->self); /* not running: it dies here, inside its callback */
  }
}

/* ask(target, rounds): fill target's mailbox, ask for room; with no rounds
 * left, stop at the end of this turn */
static int asker_ask(tr_ctx *ctx, const tr_msg *args) {
  asker_st *st = tr_ctx_state(ctx);
  tr_host *h = tr_ctx_host(ctx);
  if (tr_msg_addr(args, 0, &st->target) || tr_msg_int(args, 1, &st->rounds)) return TR_EBADVALUE;
  st->self = tr_ctx_self(ctx);
  while (tr_send_fmt(h, st->self, st->target, "note", "i", 5) == 0) {
  }
  int rc = tr_notify_room(h, st->target, asker_room, st);
  ev("asked(%s)", tr_errname(rc));
  if (st->rounds == 0) tr_kill(h, st->self);
  return 0;
}
static const tr_method asker_methods[] = {{"ask", asker_ask}, {NULL, NULL}};
static const tr_behaviour asker = {
    .name = "Asker", .state_size = sizeof(asker_st), .methods = asker_methods};

static void notify_room_asker_dies_first(void **state) {
  for (int rounds = 0; rounds < 2; rounds++) {
    reset_globals();
    tr_host *h = new_host(NULL, 2, 0);
    tr_spawn_options o = {0};
    o.scheduler = 1; /* both on one scheduler */
    tr_addr t, x;
    assert_int_equal(tr_spawn(h, &counter, NULL, &o, &t), TR_OK);
    assert_int_equal(tr_spawn(h, &asker, NULL, &o, &x), TR_OK);
    assert_int_equal(tr_send_fmt(h, TR_NOADDR, x, "ask", "ai", t, (int64_t)rounds), TR_OK);
    tr_host_run(h);
    assert_int_equal(tr_send_fmt(h, TR_NOADDR, x, "ask", "ai", t, (int64_t)0), TR_EDEAD);
    if (rounds == 0) /* dead at the end of its turn, the target drained after */
      assert_string_equal(g_events, "init();start;asked(ok);room(dead);note(5);note(5);");
    else /* room once (as the first note leaves the mailbox); refilled and
          * asked again from the callback; then died there */
      assert_string_equal(g_events, "init();start;asked(ok);room(ok);asked(ok);room(dead);"
                                    "note(5);note(5);note(7);");
    tr_host_free(h);
  }
}

static void notify_room_dead_or_free(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 1, 0);
  tr_addr a = spawn_counter(h, 0), b = spawn_counter(h, 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 1), 0);
  room_rec ra = {0}, rb = {0};
  assert_int_equal(tr_notify_room(h, a, on_room, &ra), 0);
  assert_int_equal(tr_kill(h, a), 0); /* dies before there is room */
  assert_int_equal(ra.n, 1);
  assert_int_equal(ra.status, TR_EDEAD);
  assert_int_equal(tr_notify_room(h, a, on_room, &ra), TR_EDEAD);
  /* room already: one callback, with status 0 */
  assert_int_equal(tr_notify_room(h, b, on_room, &rb), 0);
  tr_host_run(h);
  assert_int_equal(rb.n, 1);
  assert_int_equal(rb.status, 0);
  assert_int_equal(ra.n, 1);
  tr_host_free(h);
}

/* ---- lifetime ------------------------------------------------------------------ */
static void stop_hooks_in_order(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 1), 0);
  tr_host_run(h);
  assert_int_equal(tr_stop(h, a), 0);
  assert_int_equal(tr_stop(h, a), 0); /* a second request is harmless */
  assert_true(tr_alive(h, a));        /* graceful: after the current message */
  tr_host_run(h);
  assert_false(tr_alive(h, a));
  assert_string_equal(g_events, "init(0);start;note(1);stopping;stopped;");
  assert_int_equal(tr_stop(h, a), TR_EDEAD);
  tr_host_free(h);
}

static void stop_veto(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_host_run(h);
  g_veto = 1;
  assert_int_equal(tr_stop(h, a), 0);
  tr_host_run(h);
  assert_true(tr_alive(h, a));
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "add", rec_reply, &r, "i", 3), 0);
  tr_host_run(h);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 3);
  assert_int_equal(tr_stop(h, a), 0);
  tr_host_run(h);
  assert_false(tr_alive(h, a));
  assert_string_equal(g_events, "init(0);start;stopping;stopping;stopped;");
  tr_host_free(h);
}

static void stop_self_from_handler(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r = {0};
  assert_int_equal(tr_send(h, TR_NOADDR, a, "stop_self", NULL), 0);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "note", "i", 1), 0);
  tr_host_run(h);
  assert_false(tr_alive(h, a));
  /* the stop request jumps the public queue */
  assert_string_equal(g_events, "init(0);start;stopping;stopped;");
  assert_int_equal(r.n, 0);
  tr_host_free(h);
}

static void kill_skips_hooks(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_host_run(h);
  assert_int_equal(tr_kill(h, a), 0);
  assert_false(tr_alive(h, a));
  assert_int_equal(tr_kill(h, a), TR_EDEAD);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "note", NULL), TR_EDEAD);
  tr_host_run(h);
  assert_string_equal(g_events, "init(0);start;");
  tr_host_free(h);
}

static void kill_self_in_handler(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  reply_rec r = {0}, after = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "kill_self", rec_reply, &r, NULL), 0);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "get", rec_reply, &after, NULL), 0);
  tr_host_run(h);
  assert_false(tr_alive(h, a));
  /* the current message finishes and is answered, then the actor dies */
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(r.i, 0);
  assert_int_equal(after.n, 1);
  assert_int_equal(after.status, TR_EDEAD);
  assert_null(strstr(g_events, "stopped"));
  tr_host_free(h);
}

static void stale_address_after_many_spawns(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr old = spawn_counter(h, 0);
  tr_host_run(h);
  assert_int_equal(tr_kill(h, old), 0);
  tr_addr last = old;
  for (int i = 0; i < 500; i++) {
    tr_addr a;
    assert_int_equal(tr_spawn(h, &counter, NULL, NULL, &a), 0);
    assert_true(TR_ADDR_SERIAL(a) > TR_ADDR_SERIAL(last)); /* never reused */
    last = a;
    if (i % 2 == 0) assert_int_equal(tr_kill(h, a), 0);
  }
  tr_host_run(h);
  assert_false(tr_alive(h, old));
  assert_int_equal(tr_send(h, TR_NOADDR, old, "note", NULL), TR_EDEAD);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, old, "get", rec_reply, &r, NULL), TR_EDEAD);
  assert_int_equal(tr_stop(h, old), TR_EDEAD);
  assert_int_equal(tr_register(h, "old", old), TR_EDEAD);
  /* an address that was never handed out */
  assert_int_equal(tr_send(h, TR_NOADDR, last + 1000, "note", NULL), TR_EDEAD);
  assert_true(tr_alive(h, last));
  tr_host_stats st;
  tr_host_stats_get(h, &st);
  assert_int_equal(st.actors, 250);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spawn_runs_init_with_args),
      cmocka_unit_test(spawn_init_failure_crashes),
      cmocka_unit_test(send_between_c_actors),
      cmocka_unit_test(call_between_c_actors),
      cmocka_unit_test(reply_ok_values),
      cmocka_unit_test(reply_failed_value),
      cmocka_unit_test(reply_system_errors),
      cmocka_unit_test(reply_corrupt_payload),
      cmocka_unit_test(lua_corrupt_payload_alone_and_in_a_batch),
      cmocka_unit_test(call_dead_address),
      cmocka_unit_test(queued_calls_fail_when_killed),
      cmocka_unit_test(queued_calls_fail_when_stopped),
      cmocka_unit_test(call_times_out),
      cmocka_unit_test(call_default_timeout_from_options),
      cmocka_unit_test(deferred_reply_later),
      cmocka_unit_test(deferred_owner_stops),
      cmocka_unit_test(defer_needs_a_call),
      cmocka_unit_test(mailbox_full_then_room),
      cmocka_unit_test(mailbox_capacity_from_host_options),
      cmocka_unit_test(notify_room_dead_or_free),
      cmocka_unit_test(notify_room_asker_dies_first),
      cmocka_unit_test(stop_hooks_in_order),
      cmocka_unit_test(stop_veto),
      cmocka_unit_test(stop_self_from_handler),
      cmocka_unit_test(kill_skips_hooks),
      cmocka_unit_test(kill_self_in_handler),
      cmocka_unit_test(stale_address_after_many_spawns),
  };
  RUN_TESTS(tests, argc, argv);
}
