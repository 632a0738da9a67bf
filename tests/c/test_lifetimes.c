/* Lifetimes under re-entrant C callbacks: an actor killed by a room callback
 * during its own turn, a caller killed while its answer waits in the
 * completion queue, a shutdown whose timeout kill answers a Lua caller;
 * the references envelopes hold for owned addresses in their payload. */
#include "helpers.h"

#include "internal.h"

/* ---- a room callback kills the actor whose turn made the room ---------------------------- */
static tr_addr g_victim;
static int g_room_n, g_room_status = 1;
static void room_kills(tr_host *h, tr_addr to, int status, void *ud) {
  (void)ud;
  g_room_n++;
  g_room_status = status;
  if (status == 0) tr_kill(h, g_victim);
}

static void room_callback_kills_target(void **state) {
  reset_globals();
  g_room_n = 0;
  g_room_status = 1;
  tr_host *h = new_host(NULL, 0, 0);
  tr_spawn_options o = {0};
  o.mailbox_capacity = 1;
  o.link = TR_NOADDR;
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 0);
  assert_int_equal(tr_spawn(h, &counter, &b, &o, &g_victim), TR_OK);
  tr_buf_free(&b);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, g_victim, "note", "i", 1), TR_OK);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, g_victim, "note", "i", 2), TR_EFULL);
  assert_int_equal(tr_notify_room(h, g_victim, room_kills, NULL), TR_OK);
  assert_int_equal(g_room_n, 0);
  run_ready(h);
  assert_int_equal(g_room_n, 1);
  assert_int_equal(g_room_status, 0);
  assert_false(tr_alive(h, g_victim));
  tr_host_free(h);
}

/* ---- a caller dies while the reply to its C callback is queued --------------------------- */
typedef struct {
  int magic;
  int answers;
} caller_st;
static int g_cb_n, g_cb_status = 1, g_cb_magic;
static void caller_done(tr_host *h, int status, const tr_msg *m, void *ud) {
  caller_st *st = ud; /* points into the caller's state: it must still exist */
  g_cb_n++;
  g_cb_status = status;
  g_cb_magic = st->magic;
  st->answers++;
}
static int cl_init(tr_ctx *ctx, const tr_msg *args) {
  caller_st *st = tr_ctx_state(ctx);
  st->magic = 0x5eed;
  return 0;
}
/* go(target, killer): calls target:get() and asks killer to kill us */
static int cl_go(tr_ctx *ctx, const tr_msg *args) {
  tr_addr target, killer;
  if (tr_msg_addr(args, 0, &target) || tr_msg_addr(args, 1, &killer)) return TR_EBADVALUE;
  tr_host *h = tr_ctx_host(ctx);
  int rc = tr_call_fmt(h, tr_ctx_self(ctx), target, "get", caller_done, tr_ctx_state(ctx), NULL);
  if (rc) return rc;
  return tr_send_fmt(h, tr_ctx_self(ctx), killer, "kill", "a", tr_ctx_self(ctx));
}
static const tr_method caller_methods[] = {{"go", cl_go}, {NULL, NULL}};
static const tr_behaviour caller_beh = {
    .name = "Caller", .state_size = sizeof(caller_st), .init = cl_init, .methods = caller_methods};

static int kl_kill(tr_ctx *ctx, const tr_msg *args) {
  tr_addr who;
  if (tr_msg_addr(args, 0, &who)) return TR_EBADVALUE;
  int rc = tr_kill(tr_ctx_host(ctx), who);
  ev("kill=%d cb=%d", rc, g_cb_n); /* a callback of the dead caller runs now or never */
  return 0;
}
static const tr_method killer_methods[] = {{"kill", kl_kill}, {NULL, NULL}};
static const tr_behaviour killer_beh = {.name = "Killer", .methods = killer_methods};

static void caller_killed_with_answer_queued(void **state) {
  reset_globals();
  g_cb_n = 0;
  g_cb_status = 1;
  g_cb_magic = 0;
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr c = TR_NOADDR, k = TR_NOADDR, t = spawn_counter(h, 5);
  assert_int_equal(tr_spawn(h, &caller_beh, NULL, NULL, &c), TR_OK);
  assert_int_equal(tr_spawn(h, &killer_beh, NULL, NULL, &k), TR_OK);
  run_ready(h);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, c, "go", "aa", t, k), TR_OK);
  run_ready(h);
  assert_false(tr_alive(h, c));
  /* the target answered before the caller died: the callback ran exactly
   * once, during the death, while the caller's state still existed */
  assert_string_equal(g_events, "init(5);start;kill=0 cb=1;");
  assert_int_equal(g_cb_n, 1);
  assert_int_equal(g_cb_status, TR_OK);
  assert_int_equal(g_cb_magic, 0x5eed);
  tr_host_free(h);
  assert_int_equal(g_cb_n, 1);
}

/* ---- a shutdown times out and kills: its Lua caller's pending call goes back to a full pool */
static const char *LUA_SLOW =
    "local troupe = require 'troupe'\n"
    "return {\n"
    "  slow_stop = function(self) self.slow = true end,\n"
    "  on_stopping = function(self) if self.slow then troupe.sleep(5000) end end,\n"
    "  go = function(self, t) return t:shutdown(200) end,\n"
    "}\n";

static int g_batch_n;
static void batch_done(tr_host *h, int status, const tr_msg *m, void *ud) {
  (void)h, (void)status, (void)m, (void)ud;
  g_batch_n++;
}

/* Many calls answered at once: their pending records fill the pool. */
static void fill_pending_pool(tr_host *h, tr_addr counter_addr) {
  enum { N = 4200 };
  g_batch_n = 0;
  for (int i = 0; i < N; i++)
    assert_int_equal(tr_call(h, TR_NOADDR, counter_addr, "get", NULL, 20000, batch_done, NULL),
                     TR_OK);
  int all = 0;
  while (!all) {
    uv_run(tr_host_loop(h), UV_RUN_NOWAIT);
    all = g_batch_n == N;
  }
}

static void shutdown_timeout_kill_lua_caller(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 10000, 0);
  tr_addr c = spawn_counter(h, 0), target = TR_NOADDR, shutter = TR_NOADDR;
  assert_int_equal(tr_spawn_lua_string(h, LUA_SLOW, "=slow", NULL, NULL, &target), TR_OK);
  assert_int_equal(tr_spawn_lua_string(h, LUA_SLOW, "=shutter", NULL, NULL, &shutter), TR_OK);
  reply_rec r0, r;
  memset(&r0, 0, sizeof r0);
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_call(h, TR_NOADDR, target, "slow_stop", NULL, 20000, rec_reply, &r0), TR_OK);
  assert_true(run_until(h, &r0.n, 5000));
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_addr(&b, target);
  assert_int_equal(tr_call(h, TR_NOADDR, shutter, "go", &b, 20000, rec_reply, &r), TR_OK);
  tr_buf_free(&b);
  run_ready(h); /* the shutter waits; the target sleeps in on_stopping */
  assert_int_equal(r.n, 0);
  fill_pending_pool(h, c);
  assert_int_equal(r.n, 0);
  assert_true(run_until(h, &r.n, 5000)); /* the timeout kills the target */
  assert_int_equal(r.status, TR_OK);
  assert_string_equal(r.s, "killed");
  assert_false(tr_alive(h, target));
  tr_host_free(h);
}

/* ---- tr_host_shutdown runs Lua stop hooks from C: an __index that raises -------------- */
static const char *LUA_BAD_INDEX =
    "return setmetatable({ ping = function() return 'pong' end }, {\n"
    "  __index = function(t, k) if k == 'on_stopping' then error('index exploded') end end })\n";

static void shutdown_hook_lookup_raises(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr a = TR_NOADDR;
  assert_int_equal(tr_spawn_lua_string(h, LUA_BAD_INDEX, "=bad", NULL, NULL, &a), TR_OK);
  reply_rec r;
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_call(h, TR_NOADDR, a, "ping", NULL, 5000, rec_reply, &r), TR_OK);
  assert_true(run_until(h, &r.n, 5000));
  assert_string_equal(r.s, "pong");
  tr_host_shutdown(h); /* the lookup of on_stopping raises: logged, not a panic */
  assert_false(tr_alive(h, a));
  assert_non_null(strstr(lc.buf, "index exploded"));
  tr_host_free(h);
}

/* ---- envelopes hold references for the owned addresses in their payload ----------------- */
static int32_t refs_of(tr_host *h, tr_addr a) {
  tr_actor *act = tr__lookup(&h->sched[0], a);
  return act ? act->cold->refs : -1;
}
static void owned_payload(tr_buf *b, tr_addr a) {
  char raw[10];
  raw[0] = (char)0xd7;
  raw[1] = (char)TR_EXT_OWNED;
  tr__addr_be(a, raw + 2);
  tr_buf_init(b);
  tr_pack_array(b, 2);
  tr__buf_write(b, raw, sizeof raw);
  tr__buf_write(b, raw, sizeof raw);
}

static void envelope_owned_references(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_sched *s = &h->sched[0];
  tr_spawn_options o = {0};
  o.owned = 1;
  o.link = TR_NOADDR;
  o.scheduler = 1;
  tr_addr a, sink;
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &a), TR_OK);
  o.owned = 0;
  assert_int_equal(tr_spawn(h, &counter, NULL, &o, &sink), TR_OK);
  assert_int_equal(tr_retain(h, a), TR_OK); /* this test's own reference */
  run_ready(h);
  assert_int_equal(refs_of(h, a), 1);
  tr_buf b;
  owned_payload(&b, a);
  /* bytes from anywhere but the encoder's hint: no reference taken */
  tr_env *e = tr__env_new(s, "x", 1, b.data, b.len);
  assert_int_equal(e->own, 0);
  /* the envelope takes one per owned value, once */
  tr__env_own(s, e);
  tr__env_own(s, e);
  assert_int_equal(e->own, 1);
  assert_int_equal(refs_of(h, a), 3);
  /* bytes the encoder handed over: env_new takes them */
  s->own_hint = b.data;
  tr_env *e2 = tr__env_new(s, "x", 1, b.data, b.len);
  s->own_hint = TR_NO_HINT;
  assert_int_equal(e2->own, 1);
  assert_int_equal(refs_of(h, a), 5);
  /* a message to a missing handler is dropped: its references go */
  e2->to = sink;
  assert_int_equal(tr__deliver(s, e2, 0, NULL), 0);
  run_ready(h);
  assert_int_equal(refs_of(h, a), 3);
  /* a call turned into its reply gives the arguments' references back */
  tr_pending *p = tr__pending_new(s, TR_P_BLOCK, TR_NOADDR, sink, TR_TIMEOUT_INFINITE);
  assert_non_null(p);
  e->kind = TR_K_CALL;
  e->to = sink;
  e->req = p->req;
  tr__reply_in(s, e, sink, TR_OK, NULL, 0);
  assert_int_equal(refs_of(h, a), 1);
  assert_true(p->done);
  tr__pending_free(s, p);
  /* the last reference goes: the owned actor stops */
  assert_int_equal(tr_release(h, a), TR_OK);
  run_ready(h);
  assert_false(tr_alive(h, a));
  tr_buf_free(&b);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(room_callback_kills_target),
      cmocka_unit_test(caller_killed_with_answer_queued),
      cmocka_unit_test(shutdown_timeout_kill_lua_caller),
      cmocka_unit_test(shutdown_hook_lookup_raises),
      cmocka_unit_test(envelope_owned_references),
  };
  RUN_TESTS(tests, argc, argv);
}
