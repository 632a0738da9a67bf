/* The C call path's fast paths and their edges: request ids made from a
 * reused slot (index | generation), a late reply for a recycled slot, the
 * call envelope turned into the reply (in place, or a new envelope when the
 * reply does not fit; on one scheduler and across two), the timer that must
 * not keep the loop alive once no deadline is left, and the method cache of
 * a C behaviour (unknown methods, behaviours sharing method names). */
#include <inttypes.h>

#include "helpers.h"

#include "internal.h"

/* ---- a pingpong pair: a client actor calling "add" on a Counter n times ---------- */
typedef struct {
  tr_host *h;
  tr_addr self, server;
  int64_t n, i, want; /* calls to make; the call in flight; its expected answer */
  int done, bad, replies;
  int status;
  uint64_t first_req, last_req; /* ids of the first and last pending call */
} pp_state;

static void pp_next(pp_state *st);

static void pp_reply(tr_host *h, int status, const tr_msg *m, void *ud) {
  pp_state *st = ud;
  int64_t v = -1;
  st->replies++;
  if (status != TR_OK || tr_msg_int(m, 0, &v) || v != st->want) {
    st->bad++;
    st->status = status;
    __atomic_store_n(&st->done, 1, __ATOMIC_SEQ_CST);
    return;
  }
  if (st->i == st->n) {
    __atomic_store_n(&st->done, 1, __ATOMIC_SEQ_CST);
    return;
  }
  pp_next(st);
}

static uint64_t pending_req_of(tr_host *h, tr_addr caller) {
  tr_sched *s = &h->sched[TR_ADDR_SCHED(caller)];
  for (uint32_t k = 0; k < s->pslots_n; k++)
    if (s->pslots[k].p && s->pslots[k].p->caller == caller) return s->pslots[k].p->req;
  return 0;
}

static void pp_next(pp_state *st) {
  st->i++;
  st->want += st->i;
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, st->i);
  int rc = tr_call(st->h, st->self, st->server, "add", &b, TR_TIMEOUT_DEFAULT, pp_reply, st);
  tr_buf_free(&b);
  if (rc) {
    st->bad++;
    __atomic_store_n(&st->done, 1, __ATOMIC_SEQ_CST);
    return;
  }
  uint64_t req = TR_ADDR_SCHED(st->server) == TR_ADDR_SCHED(st->self)
                     ? pending_req_of(st->h, st->self)
                     : 0;
  if (st->i == 1) st->first_req = req;
  st->last_req = req;
}

static int pp_start(tr_ctx *ctx, const tr_msg *args) {
  pp_state *st = *(pp_state **)tr_ctx_state(ctx);
  st->self = tr_ctx_self(ctx);
  pp_next(st);
  return 0;
}
static int pp_init(tr_ctx *ctx, const tr_msg *args) {
  int64_t p;
  if (tr_msg_int(args, 0, &p)) return TR_EBADVALUE;
  *(pp_state **)tr_ctx_state(ctx) = (pp_state *)(uintptr_t)p;
  return 0;
}
static const tr_method pp_methods[] = {{"start", pp_start}, {NULL, NULL}};
static const tr_behaviour pp_client = {
    .name = "PingClient", .state_size = sizeof(pp_state *), .init = pp_init,
    .methods = pp_methods};

static tr_addr spawn_client(tr_host *h, pp_state *st, unsigned sched) {
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, (int64_t)(uintptr_t)st);
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = sched;
  tr_addr a;
  assert_int_equal(tr_spawn(h, &pp_client, &b, &o, &a), TR_OK);
  tr_buf_free(&b);
  return a;
}

static tr_addr spawn_counter_on(tr_host *h, unsigned sched) {
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 0);
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = sched;
  tr_addr a;
  assert_int_equal(tr_spawn(h, &counter, &b, &o, &a), TR_OK);
  tr_buf_free(&b);
  return a;
}

/* Many calls one after the other: every answer is right and comes once, and
 * they all use the same slot, each with a new generation. */
static void ids_reuse_one_slot(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  pp_state st = {.h = h, .n = 20000};
  st.server = spawn_counter(h, 0);
  tr_addr client = spawn_client(h, &st, 0);
  assert_int_equal(tr_send(h, TR_NOADDR, client, "start", NULL), TR_OK);
  tr_host_run(h);
  assert_int_equal(st.done, 1);
  assert_int_equal(st.bad, 0);
  assert_int_equal(st.replies, 20000);
  assert_true(st.first_req != 0 && st.last_req != 0);
  assert_true((st.first_req & TR_REQ_IDX_MASK) == (st.last_req & TR_REQ_IDX_MASK));
  assert_true(st.last_req - st.first_req == (uint64_t)19999 << TR_REQ_IDX_BITS);
  assert_true(h->sched[0].pslots_n <= 2); /* the slot table did not grow */
  tr_host_free(h);
}

/* A slot whose generation wraps still never makes the id 0 and keeps working. */
static void ids_generation_wraps(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr c = spawn_counter(h, 0);
  reply_rec r = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "add", rec_reply, &r, "i", 1), TR_OK);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  tr_sched *s = &h->sched[0];
  assert_true(s->pslots_n >= 1);
  for (uint32_t k = 0; k < s->pslots_n; k++) s->pslots[k].gen = UINT32_MAX - 1;
  for (int k = 0; k < 4; k++) {
    reply_rec rk = {0};
    assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "add", rec_reply, &rk, "i", 1), TR_OK);
    uint64_t req = pending_req_of(h, TR_NOADDR);
    assert_true(req != 0);
    tr_host_run(h);
    assert_int_equal(rk.n, 1);
    assert_int_equal(rk.status, TR_OK);
    assert_int_equal(rk.i, 2 + k);
  }
  tr_host_free(h);
}

/* A call times out while its callee holds it (deferred); the next call gets
 * the same slot; the first call's late answer must not reach the second. */
static void late_reply_for_recycled_slot(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr c = spawn_counter(h, 0);
  reply_rec r1 = {0}, r2 = {0};
  tr_buf none;
  tr_buf_init(&none);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "defer", &none, 20, rec_reply, &r1), TR_OK);
  tr_host_run(h); /* deferred, then the timeout */
  assert_int_equal(r1.n, 1);
  assert_int_equal(r1.status, TR_ETIMEOUT);
  assert_int_equal(g_ntok, 1);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "defer", &none, TR_TIMEOUT_INFINITE, rec_reply, &r2),
                   TR_OK);
  run_ready(h);
  assert_int_equal(g_ntok, 2);
  /* the same slot, another generation */
  assert_true((g_tok[0].req & TR_REQ_IDX_MASK) == (g_tok[1].req & TR_REQ_IDX_MASK));
  assert_true(g_tok[0].req != g_tok[1].req);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 111);
  assert_int_equal(tr_token_reply(h, &g_tok[0], &b), TR_OK); /* late: dropped */
  run_ready(h);
  assert_int_equal(r1.n, 1);
  assert_int_equal(r2.n, 0);
  tr_buf_reset(&b);
  tr_pack_int(&b, 222);
  assert_int_equal(tr_token_reply(h, &g_tok[1], &b), TR_OK);
  run_ready(h);
  assert_int_equal(r1.n, 1);
  assert_int_equal(r2.n, 1);
  assert_int_equal(r2.status, TR_OK);
  assert_int_equal(r2.i, 222);
  tr_buf_free(&b);
  tr_buf_free(&none);
  tr_host_free(h);
}

/* The same after the calling actor died (its C callback heard "dead"): its
 * slot goes to the next call, and the old answer is dropped. */
static void late_reply_after_caller_died(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr c = spawn_counter(h, 0);
  tr_addr caller = spawn_counter(h, 0);
  reply_rec r1 = {0}, r2 = {0};
  tr_buf none;
  tr_buf_init(&none);
  assert_int_equal(tr_call(h, caller, c, "defer", &none, TR_TIMEOUT_INFINITE, rec_reply, &r1),
                   TR_OK);
  run_ready(h);
  assert_int_equal(g_ntok, 1);
  assert_int_equal(tr_kill(h, caller), TR_OK);
  assert_int_equal(r1.n, 1);
  assert_int_equal(r1.status, TR_EDEAD);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "defer", &none, TR_TIMEOUT_INFINITE, rec_reply, &r2),
                   TR_OK);
  run_ready(h);
  assert_int_equal(g_ntok, 2);
  assert_true((g_tok[0].req & TR_REQ_IDX_MASK) == (g_tok[1].req & TR_REQ_IDX_MASK));
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 1);
  assert_int_equal(tr_token_reply(h, &g_tok[0], &b), TR_OK);
  run_ready(h);
  assert_int_equal(r1.n, 1);
  assert_int_equal(r2.n, 0);
  tr_buf_reset(&b);
  tr_pack_int(&b, 2);
  assert_int_equal(tr_token_reply(h, &g_tok[1], &b), TR_OK);
  run_ready(h);
  assert_int_equal(r2.n, 1);
  assert_int_equal(r2.i, 2);
  tr_buf_free(&b);
  tr_buf_free(&none);
  tr_host_free(h);
}

/* Many calls in flight at once: the slot table grows and every id finds its
 * own call; then the slots are reused. */
static void many_calls_in_flight(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 100000, 0);
  tr_addr c = spawn_counter(h, 0);
  enum { N = 3000 };
  static reply_rec r[N];
  memset(r, 0, sizeof r);
  for (int round = 0; round < 2; round++) {
    for (int k = 0; k < N; k++) {
      r[k].n = 0;
      assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "echo", rec_reply, &r[k], "i", k), TR_OK);
    }
    assert_true(h->sched[0].pslots_n >= N);
    tr_host_run(h);
    for (int k = 0; k < N; k++) {
      char want[32];
      snprintf(want, sizeof want, "%d", k);
      assert_int_equal(r[k].n, 1);
      assert_int_equal(r[k].status, TR_OK);
      assert_string_equal(r[k].s, want);
    }
  }
  assert_true(h->sched[0].pslots_n <= N + 1); /* the second round reused them */
  tr_host_free(h);
}

/* The call envelope becomes the reply: a reply too big for it gets a new
 * envelope (all the bytes arrive), a failure value and a system error too. */
static int m_big(tr_ctx *ctx, const tr_msg *args) {
  int64_t n;
  if (tr_msg_int(args, 0, &n)) return TR_EBADVALUE;
  char s[5000];
  memset(s, 'z', sizeof s);
  return tr_pack_lstr(tr_ctx_reply(ctx), s, (size_t)n);
}
static int m_nope(tr_ctx *ctx, const tr_msg *args) {
  tr_pack_str(tr_ctx_fail(ctx), "nope");
  return TR_FAILED;
}
static int m_err(tr_ctx *ctx, const tr_msg *args) {
  return tr_ctx_error(ctx, TR_EBADVALUE, "custom");
}
static const tr_method sizer_methods[] = {
    {"big", m_big}, {"nope", m_nope}, {"err", m_err}, {NULL, NULL}};
static const tr_behaviour sizer = {.name = "Sizer", .methods = sizer_methods};

typedef struct {
  int n, status;
  int64_t len; /* the string's length, -1 if not all 'z' */
} len_rec;

static void len_reply(tr_host *h, int status, const tr_msg *m, void *ud) {
  len_rec *r = ud;
  const char *p;
  size_t len;
  r->status = status;
  r->len = -2;
  if (tr_msg_count(m) == 1 && tr_msg_str(m, 0, &p, &len) == 0) {
    r->len = (int64_t)len;
    for (size_t k = 0; k < len; k++)
      if (p[k] != 'z') r->len = -1;
  }
  __atomic_store_n(&r->n, r->n + 1, __ATOMIC_SEQ_CST);
}

static void reply_sizes(tr_host *h, tr_addr a) {
  /* around what fits in the call envelope (TR_ENV_INLINE with "big" and the
   * argument in it) and far past it */
  static const int64_t sizes[] = {0, 1, 60, 74, 75, 76, 77, 78, 79, 80, 200, 4999};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    len_rec r = {0};
    assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "big", len_reply, &r, "I", sizes[k]), TR_OK);
    assert_true(run_until(h, &r.n, 5000));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.status, TR_OK);
    assert_int_equal(r.len, sizes[k]);
  }
  reply_rec f = {0}, e = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "nope", rec_reply, &f, NULL), TR_OK);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a, "err", rec_reply, &e, NULL), TR_OK);
  assert_true(run_until(h, &e.n, 5000));
  assert_true(run_until(h, &f.n, 5000));
  assert_int_equal(f.status, TR_FAILED);
  assert_string_equal(f.s, "nope");
  assert_int_equal(e.status, TR_EBADVALUE);
  assert_string_equal(e.s, "custom");
}

static void reply_in_place_and_not(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a;
  assert_int_equal(tr_spawn(h, &sizer, NULL, NULL, &a), TR_OK);
  reply_sizes(h, a);
  tr_host_free(h);
}

/* The same with the callee on another scheduler: the reply envelope crosses
 * to the caller's scheduler (routed by the id's top byte). */
static void reply_across_schedulers(void **state) {
  reset_globals();
  tr_host_options o;
  tr_host_options_init(&o);
  o.schedulers = 2;
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  tr_spawn_options so;
  memset(&so, 0, sizeof so);
  so.scheduler = 2;
  tr_addr a;
  assert_int_equal(tr_spawn(h, &sizer, NULL, &so, &a), TR_OK);
  assert_int_equal(TR_ADDR_SCHED(a), 1);
  reply_sizes(h, a);
  /* a C client on scheduler 1 calling a Counter on scheduler 2, and one on
   * scheduler 2 calling a Counter on scheduler 1 */
  pp_state s1 = {.h = h, .n = 3000}, s2 = {.h = h, .n = 3000};
  s1.server = spawn_counter_on(h, 2);
  s2.server = spawn_counter_on(h, 1);
  tr_addr c1 = spawn_client(h, &s1, 1), c2 = spawn_client(h, &s2, 2);
  assert_int_equal(tr_send(h, TR_NOADDR, c1, "start", NULL), TR_OK);
  assert_int_equal(tr_send(h, TR_NOADDR, c2, "start", NULL), TR_OK);
  int both = 0;
  for (int k = 0; k < 20000 && !both; k++) {
    uv_run(tr_host_loop(h), UV_RUN_NOWAIT);
    both = __atomic_load_n(&s1.done, __ATOMIC_SEQ_CST) && __atomic_load_n(&s2.done, __ATOMIC_SEQ_CST);
    if (!both) uv_sleep(1);
  }
  assert_true(both);
  assert_int_equal(s1.bad, 0);
  assert_int_equal(s2.bad, 0);
  assert_int_equal(s1.replies, 3000);
  assert_int_equal(s2.replies, 3000);
  tr_host_free(h);
}

/* With no deadline left the timer must not keep the loop alive: tr_host_run
 * returns as soon as the calls are answered, not when their (long) default
 * timeout would have passed. */
static void run_returns_with_no_deadline_left(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 60000);
  tr_addr c = spawn_counter(h, 0);
  reply_rec r = {0};
  for (int k = 0; k < 3; k++) {
    uint64_t t0 = uv_hrtime();
    assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "add", rec_reply, &r, "i", 1), TR_OK);
    tr_host_run(h);
    assert_int_equal(r.n, k + 1);
    assert_true(uv_hrtime() - t0 < UINT64_C(5000000000));
  }
  /* an explicit timeout (the heap) too */
  tr_buf none;
  tr_buf_init(&none);
  uint64_t t0 = uv_hrtime();
  assert_int_equal(tr_call(h, TR_NOADDR, c, "get", &none, 60000, rec_reply, &r), TR_OK);
  tr_host_run(h);
  assert_int_equal(r.n, 4);
  assert_true(uv_hrtime() - t0 < UINT64_C(5000000000));
  tr_buf_free(&none);
  tr_host_free(h);
}

/* Calls with the default timeout wait in a FIFO of request ids; an answered
 * call leaves its id behind, skipped at the head and dropped when the array
 * fills. Hundreds of calls in flight answered out of order, a few never:
 * exactly those time out (once each, not before their time), the others
 * are answered once, the heap's own deadline still fires first, and the
 * loop returns when the last deadline is gone. */
enum { HOLD_N = 400 };
static tr_token hold_tok[HOLD_N];
static int m_hold(tr_ctx *ctx, const tr_msg *args) {
  int64_t k;
  if (tr_msg_int(args, 0, &k) || k < 0 || k >= HOLD_N) return TR_EBADVALUE;
  return tr_ctx_defer(ctx, &hold_tok[k]);
}
static const tr_method holder_methods[] = {{"hold", m_hold}, {NULL, NULL}};
static const tr_behaviour holder = {.name = "Holder", .methods = holder_methods};

static int never_answered(int k) { return k % 50 == 7 || k == 333; }

static void hold_answer(tr_host *h, int k) {
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 1000 + k);
  assert_int_equal(tr_token_reply(h, &hold_tok[k], &b), TR_OK);
  tr_buf_free(&b);
}

static void deadline_fifo_out_of_order(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 100000, 300);
  tr_sched *s = &h->sched[0];
  tr_addr c;
  assert_int_equal(tr_spawn(h, &holder, NULL, NULL, &c), TR_OK);
  static reply_rec r[HOLD_N];
  static uint64_t made[HOLD_N];
  memset(r, 0, sizeof r);
  reply_rec rh = {0};
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 0);
  for (int k = 0; k < HOLD_N / 2; k++) {
    made[k] = tr_now_ms(h);
    assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "hold", rec_reply, &r[k], "i", k), TR_OK);
  }
  run_ready(h);
  /* the odd ones backwards, then the even ones */
  for (int k = HOLD_N / 2 - 1; k >= 0; k--)
    if (k % 2 && !never_answered(k)) hold_answer(h, k);
  for (int k = 0; k < HOLD_N / 2; k++)
    if (k % 2 == 0 && !never_answered(k)) hold_answer(h, k);
  run_ready(h);
  for (int k = 0; k < HOLD_N / 2; k++) {
    assert_int_equal(r[k].n, !never_answered(k));
    if (r[k].n) assert_int_equal(r[k].i, 1000 + k);
  }
  assert_int_equal(s->fifo_live, 4);
  /* more than the array holds: its stale ids are dropped to make room */
  for (int k = HOLD_N / 2; k < HOLD_N; k++) {
    made[k] = tr_now_ms(h);
    assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "hold", rec_reply, &r[k], "i", k), TR_OK);
  }
  assert_int_equal(tr_call(h, TR_NOADDR, c, "hold", &b, 100, rec_reply, &rh), TR_OK);
  run_ready(h);
  for (int k = HOLD_N / 2; k < HOLD_N; k++)
    if (!never_answered(k)) hold_answer(h, k);
  run_ready(h);
  assert_int_equal(s->fifo_live, 9);
  assert_true(s->fifo_cap <= 512);
  uint64_t t0 = uv_hrtime();
  tr_host_run(h); /* until the last deadline: 9 timeouts and the heap's */
  assert_true(uv_hrtime() - t0 < UINT64_C(5000000000));
  assert_int_equal(rh.n, 1);
  assert_int_equal(rh.status, TR_ETIMEOUT);
  for (int k = 0; k < HOLD_N; k++) {
    assert_int_equal(r[k].n, 1);
    if (never_answered(k)) {
      assert_int_equal(r[k].status, TR_ETIMEOUT);
      assert_true(r[k].at >= made[k] + 300);
      assert_true(rh.at <= r[k].at);
    } else {
      assert_int_equal(r[k].status, TR_OK);
      assert_int_equal(r[k].i, 1000 + k);
    }
  }
  assert_int_equal(s->fifo_live, 0);
  assert_int_equal(s->fifo_tail, 0);
  /* and again from an empty FIFO */
  reply_rec r2 = {0};
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "hold", rec_reply, &r2, "i", 0), TR_OK);
  run_ready(h);
  hold_answer(h, 0);
  tr_host_run(h);
  assert_int_equal(r2.n, 1);
  assert_int_equal(r2.status, TR_OK);
  tr_buf_free(&b);
  tr_host_free(h);
}

/* Every outcome of a message to a C actor, one after the other on one actor
 * (so the method found last changes between them): answers, the handler's
 * own failure, a system error with and without a text, a send whose handler
 * fails (one log line), an unknown method called and sent, an optional
 * notice without a handler (dropped quietly), a kill from inside the
 * handler (its answer still comes, then the actor is gone). */
static void c_delivery_outcomes(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr c = spawn_counter(h, 0);
  reply_rec r[8];
  memset(r, 0, sizeof r);
  tr_buf none;
  tr_buf_init(&none);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "add", rec_reply, &r[0], "i", 5), TR_OK);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "fail", &none, TR_TIMEOUT_DEFAULT, rec_reply, &r[1]),
                   TR_OK);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, c, "add", rec_reply, &r[2], "i", 1), TR_OK);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "syserr", &none, TR_TIMEOUT_DEFAULT, rec_reply,
                           &r[3]), TR_OK);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "rawerr", &none, TR_TIMEOUT_DEFAULT, rec_reply,
                           &r[4]), TR_OK);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "missing", &none, TR_TIMEOUT_DEFAULT, rec_reply,
                           &r[5]), TR_OK);
  tr_host_run(h);
  assert_int_equal(r[0].status, TR_OK);
  assert_int_equal(r[0].i, 5);
  assert_int_equal(r[1].status, TR_FAILED);
  assert_string_equal(r[1].reason, "nope");
  assert_int_equal(r[1].field, 7);
  assert_int_equal(r[2].status, TR_OK);
  assert_int_equal(r[2].i, 6);
  assert_int_equal(r[3].status, TR_EBADVALUE);
  assert_string_equal(r[3].s, "custom 42");
  assert_int_equal(r[4].status, TR_ENOTFOUND);
  assert_int_equal(r[5].status, TR_ENOHANDLER);
  assert_non_null(strstr(r[5].s, "no handler 'missing'"));
  for (int k = 0; k < 6; k++) assert_int_equal(r[k].n, 1);
  assert_int_equal(lc.lines, 0);
  /* sends: a failing handler and an unknown method log a line each; a
   * handler that answers nothing and a notice without a handler do not */
  assert_int_equal(tr_send(h, TR_NOADDR, c, "syserr", &none), TR_OK);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, c, "add", "i", 2), TR_OK);
  assert_int_equal(tr_send(h, TR_NOADDR, c, "on_down", &none), TR_OK);
  assert_int_equal(tr_send(h, TR_NOADDR, c, "missing", &none), TR_OK);
  assert_int_equal(tr_send(h, TR_NOADDR, c, "rawerr", &none), TR_OK);
  tr_host_run(h);
  assert_int_equal(lc.lines, 3);
  assert_non_null(strstr(lc.buf, "message 'syserr' failed: bad_value: custom 42"));
  assert_non_null(strstr(lc.buf, "no handler 'missing'"));
  assert_non_null(strstr(lc.buf, "message 'rawerr' failed: not_found"));
  assert_null(strstr(lc.buf, "on_down"));
  assert_int_equal(tr_call(h, TR_NOADDR, c, "get", &none, TR_TIMEOUT_DEFAULT, rec_reply, &r[6]),
                   TR_OK);
  assert_int_equal(tr_call(h, TR_NOADDR, c, "kill_self", &none, TR_TIMEOUT_DEFAULT, rec_reply,
                           &r[7]), TR_OK);
  tr_host_run(h);
  assert_int_equal(r[6].status, TR_OK);
  assert_int_equal(r[6].i, 8);
  assert_int_equal(r[7].n, 1);
  assert_int_equal(r[7].status, TR_OK);
  assert_int_equal(r[7].i, 0);
  assert_int_equal(tr_alive(h, c), 0);
  tr_buf_free(&none);
  tr_host_free(h);
}

/* Method lookup: an unknown method is "no_handler" (also after known ones
 * were found), two behaviours with the same method names each run their
 * own, and optional notices without a handler are dropped quietly. */
static int m_one(tr_ctx *ctx, const tr_msg *args) { return tr_pack_int(tr_ctx_reply(ctx), 1); }
static int m_two(tr_ctx *ctx, const tr_msg *args) { return tr_pack_int(tr_ctx_reply(ctx), 2); }
static int m_long(tr_ctx *ctx, const tr_msg *args) { return tr_pack_int(tr_ctx_reply(ctx), 3); }
static int m_longer(tr_ctx *ctx, const tr_msg *args) { return tr_pack_int(tr_ctx_reply(ctx), 4); }
static const tr_method one_methods[] = {{"which", m_one},
                                        {"a_rather_long_method_name", m_long},
                                        {"a_rather_long_method_name_2", m_longer},
                                        {"", m_two},
                                        {NULL, NULL}};
static const tr_method two_methods[] = {{"which", m_two}, {NULL, NULL}};
static const tr_behaviour beh_one = {.name = "One", .methods = one_methods};
static const tr_behaviour beh_two = {.name = "Two", .methods = two_methods};
static const tr_behaviour beh_none = {.name = "None"};

static int call_int(tr_host *h, tr_addr a, const char *method, int64_t *out) {
  reply_rec r = {0};
  tr_buf none;
  tr_buf_init(&none);
  int rc = tr_call(h, TR_NOADDR, a, method, &none, TR_TIMEOUT_DEFAULT, rec_reply, &r);
  tr_buf_free(&none);
  if (rc) return rc;
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  *out = r.i;
  return r.status;
}

static void method_lookup_edges(void **state) {
  reset_globals();
  logcap lc;
  tr_host *h = new_host(&lc, 0, 0);
  tr_addr one, two, none;
  assert_int_equal(tr_spawn(h, &beh_one, NULL, NULL, &one), TR_OK);
  assert_int_equal(tr_spawn(h, &beh_two, NULL, NULL, &two), TR_OK);
  assert_int_equal(tr_spawn(h, &beh_none, NULL, NULL, &none), TR_OK);
  int64_t v;
  for (int round = 0; round < 3; round++) {
    assert_int_equal(call_int(h, one, "which", &v), TR_OK);
    assert_int_equal(v, 1);
    assert_int_equal(call_int(h, two, "which", &v), TR_OK);
    assert_int_equal(v, 2);
    assert_int_equal(call_int(h, one, "a_rather_long_method_name", &v), TR_OK);
    assert_int_equal(v, 3);
    assert_int_equal(call_int(h, one, "a_rather_long_method_name_2", &v), TR_OK);
    assert_int_equal(v, 4);
    assert_int_equal(call_int(h, one, "a_rather_long_method_nam", &v), TR_ENOHANDLER);
    assert_int_equal(call_int(h, one, "which2", &v), TR_ENOHANDLER);
    assert_int_equal(call_int(h, one, "whic", &v), TR_ENOHANDLER);
    assert_int_equal(call_int(h, two, "a_rather_long_method_name", &v), TR_ENOHANDLER);
    assert_int_equal(call_int(h, none, "which", &v), TR_ENOHANDLER);
  }
  /* a one-way message without a handler is logged; optional notices are not */
  int lines = lc.lines;
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, one, "on_down", "i", 1), TR_OK);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, one, "on_exit", "i", 1), TR_OK);
  tr_host_run(h);
  assert_int_equal(lc.lines, lines);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, one, "missing", "i", 1), TR_OK);
  tr_host_run(h);
  assert_int_equal(lc.lines, lines + 1);
  assert_non_null(strstr(lc.buf, "missing"));
  tr_host_free(h);
}

/* The method an actor got last is kept on it (tr__c_deliver), keyed by the
 * name's bytes: names of every length class of the key (1..3, 4..7, 8..16
 * bytes, and longer ones, which are not kept) that differ only in their last
 * byte, a middle byte, or their length must each reach their own handler,
 * also right after one another and after unknown names; two behaviours with
 * the same names keep their own; an actor of a behaviour made at the address
 * of a freed one runs the new table. */
static int m_ret(tr_ctx *ctx, const tr_msg *args) {
  /* the handler answers with the index of its name in names[] below */
  static const char *const names[] = {
      "a", "b", "ab", "abc", "abd", "ping", "pinh", "pingx", "ping_pon", "ping_poo",
      "ping_pong", "ping_pong_ping_p", "ping_pong_ping_q", "ping_pong_ping_pq",
      "abcXefghijkl", "abcYefghijkl", "xbcdefg", "abcdefgh_ping_pong_long"};
  const char *m = tr_ctx_method(ctx);
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(names[i], m) == 0) return tr_pack_int(tr_ctx_reply(ctx), (int64_t)i);
  return TR_EINVAL;
}
/* each its own function, so that a wrong entry shows as a wrong handler too */
#define RET_FN(k) \
  static int m_ret##k(tr_ctx *c, const tr_msg *a) { \
    int rc = m_ret(c, a);                             \
    tr_pack_int(tr_ctx_reply(c), k);                  \
    return rc;                                        \
  }
RET_FN(0) RET_FN(1) RET_FN(2) RET_FN(3) RET_FN(4) RET_FN(5) RET_FN(6) RET_FN(7) RET_FN(8)
RET_FN(9) RET_FN(10) RET_FN(11) RET_FN(12) RET_FN(13) RET_FN(14) RET_FN(15) RET_FN(16)
RET_FN(17)
static const tr_method names_methods[] = {
    {"a", m_ret0}, {"b", m_ret1}, {"ab", m_ret2}, {"abc", m_ret3}, {"abd", m_ret4},
    {"ping", m_ret5}, {"pinh", m_ret6}, {"pingx", m_ret7}, {"ping_pon", m_ret8},
    {"ping_poo", m_ret9}, {"ping_pong", m_ret10}, {"ping_pong_ping_p", m_ret11},
    {"ping_pong_ping_q", m_ret12}, {"ping_pong_ping_pq", m_ret13}, {"abcXefghijkl", m_ret14},
    {"abcYefghijkl", m_ret15}, {"xbcdefg", m_ret16}, {"abcdefgh_ping_pong_long", m_ret17},
    {NULL, NULL}};
static const tr_behaviour beh_names = {.name = "Names", .methods = names_methods};

/* the reply of a call: two integers, the index the handler found for its
 * name and the handler's own number; both must be `want` */
static void call_names(tr_host *h, tr_addr a, const char *method, int want) {
  reply_rec r = {0};
  int64_t first = -1, second = -1;
  tr_buf none;
  tr_buf_init(&none);
  assert_int_equal(tr_call(h, TR_NOADDR, a, method, &none, TR_TIMEOUT_DEFAULT, rec_reply, &r),
                   TR_OK);
  tr_buf_free(&none);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  if (want < 0) {
    assert_int_equal(r.status, TR_ENOHANDLER);
    return;
  }
  assert_int_equal(r.status, TR_OK);
  assert_int_equal(sscanf(r.text, "%" SCNd64 ", %" SCNd64, &first, &second), 2);
  assert_int_equal(first, want);
  assert_int_equal(second, want);
}

static int m_x(tr_ctx *ctx, const tr_msg *args) { return tr_pack_int(tr_ctx_reply(ctx), 100); }
static int m_y(tr_ctx *ctx, const tr_msg *args) { return tr_pack_int(tr_ctx_reply(ctx), 200); }
static int m_z(tr_ctx *ctx, const tr_msg *args) { return tr_pack_int(tr_ctx_reply(ctx), 300); }

static void method_cache_edges(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a;
  assert_int_equal(tr_spawn(h, &beh_names, NULL, NULL, &a), TR_OK);
  const int n = (int)(sizeof names_methods / sizeof *names_methods) - 1;
  static const char *const unknown[] = {"c", "aa", "abe", "pin", "pinhx", "pinG", "pingy",
                                        "ping_po", "ping_poo_", "ping_pong_ping_r",
                                        "ping_pong_ping_", "ping_pong_ping_pr",
                                        "abcZefghijkl", "xbcdefh", "abcdefgh_ping_pong_lonG"};
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < n; i++) {
      call_names(h, a, names_methods[i].name, i); /* keeps it */
      call_names(h, a, names_methods[i].name, i); /* finds it kept */
      /* a neighbour (differs in the last byte, a middle byte, or length) */
      int j = (i * 7 + round + 1) % n;
      call_names(h, a, names_methods[j].name, j);
      call_names(h, a, names_methods[i].name, i);
      call_names(h, a, unknown[i % (int)(sizeof unknown / sizeof *unknown)], -1);
      call_names(h, a, names_methods[i].name, i);
    }
  for (size_t u = 0; u < sizeof unknown / sizeof *unknown; u++) {
    call_names(h, a, "ping", 5);
    call_names(h, a, unknown[u], -1);
  }

  /* two behaviours, the same name: each actor its own handler */
  tr_method *tx = calloc(2, sizeof *tx), *ty = calloc(2, sizeof *ty);
  tx[0] = (tr_method){"ping", m_x};
  ty[0] = (tr_method){"ping", m_y};
  tr_behaviour *bx = calloc(1, sizeof *bx), *by = calloc(1, sizeof *by);
  bx->name = "X";
  bx->methods = tx;
  by->name = "Y";
  by->methods = ty;
  tr_addr x, y;
  assert_int_equal(tr_spawn(h, bx, NULL, NULL, &x), TR_OK);
  assert_int_equal(tr_spawn(h, by, NULL, NULL, &y), TR_OK);
  int64_t v;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(call_int(h, x, "ping", &v), TR_OK);
    assert_int_equal(v, 100);
    assert_int_equal(call_int(h, y, "ping", &v), TR_OK);
    assert_int_equal(v, 200);
  }
  /* X's actor gone, its behaviour and table freed; a new behaviour, likely
   * at the same addresses, with "ping" elsewhere in another table */
  assert_int_equal(tr_kill(h, x), TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, x));
  free(bx);
  free(tx);
  tr_method *tz = calloc(3, sizeof *tz);
  tz[0] = (tr_method){"pong", m_y};
  tz[1] = (tr_method){"ping", m_z};
  tr_behaviour *bz = calloc(1, sizeof *bz);
  bz->name = "Z";
  bz->methods = tz;
  tr_addr z;
  assert_int_equal(tr_spawn(h, bz, NULL, NULL, &z), TR_OK);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(call_int(h, z, "ping", &v), TR_OK);
    assert_int_equal(v, 300);
    assert_int_equal(call_int(h, z, "pong", &v), TR_OK);
    assert_int_equal(v, 200);
    assert_int_equal(call_int(h, y, "ping", &v), TR_OK);
    assert_int_equal(v, 200);
    assert_int_equal(call_int(h, y, "pong", &v), TR_ENOHANDLER);
  }
  tr_host_free(h);
  free(by);
  free(ty);
  free(bz);
  free(tz);
}

/* A C handler never sees corrupt arguments: one integer cut short, or
 * followed by a corrupt byte, is refused before it runs (the inline reading
 * of a lone scalar must not let them through); the same integer whole is
 * read. */
static int handler_runs;
static int m_count(tr_ctx *ctx, const tr_msg *args) {
  int64_t v;
  handler_runs++;
  if (tr_msg_int(args, 0, &v)) return TR_EBADVALUE;
  return tr_pack_int(tr_ctx_reply(ctx), v + 1);
}
static const tr_method count_methods[] = {{"count", m_count}, {NULL, NULL}};
static const tr_behaviour beh_count = {.name = "Count", .methods = count_methods};

static void corrupt_arguments_refused(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a;
  assert_int_equal(tr_spawn(h, &beh_count, NULL, NULL, &a), TR_OK);
  handler_runs = 0;
  for (int k = 0; k < 3; k++) {
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_int(&b, 100000);
    if (k == 0) b.len--;                       /* cut short */
    if (k == 1) b.data[b.len++] = (char)0xc1;  /* a byte never used */
    reply_rec r = {0};
    assert_int_equal(tr_call(h, TR_NOADDR, a, "count", &b, TR_TIMEOUT_DEFAULT, rec_reply, &r),
                     TR_OK);
    tr_buf_free(&b);
    tr_host_run(h);
    assert_int_equal(r.n, 1);
    if (k < 2) {
      assert_int_equal(r.status, TR_EBADVALUE);
      assert_non_null(strstr(r.s, "corrupt payload for 'count'"));
      assert_int_equal(handler_runs, 0);
    } else {
      assert_int_equal(r.status, TR_OK);
      assert_int_equal(r.i, 100001);
      assert_int_equal(handler_runs, 1);
    }
  }
  tr_host_free(h);
}

/* A reply is read before its callback runs only when it is exactly one
 * scalar: one integer cut short or followed by a corrupt byte, two values,
 * a container or nothing read as they always did. */
static int m_raw(tr_ctx *ctx, const tr_msg *args) {
  int64_t k;
  if (tr_msg_int(args, 0, &k)) return TR_EBADVALUE;
  tr_buf *b = tr_ctx_reply(ctx);
  switch (k) {
    case 0: tr_pack_int(b, 100000); break;
    case 1: tr_pack_int(b, 100000); b->len--; break;             /* cut short */
    case 2: tr_pack_int(b, 100000); b->data[b->len++] = (char)0xc1; break;
    case 3: tr_pack_int(b, 100000); tr_pack_int(b, 7); break;
    case 4: tr_pack_fmt(b, "[ii]", 1, 2); break;
    case 5: break;                                                /* nothing */
    case 6: tr_pack_str(b, "text"); break;
  }
  return 0;
}
static const tr_method raw_methods[] = {{"raw", m_raw}, {NULL, NULL}};
static const tr_behaviour beh_raw = {.name = "Raw", .methods = raw_methods};

static void replies_read_before_callbacks(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a;
  assert_int_equal(tr_spawn(h, &beh_raw, NULL, NULL, &a), TR_OK);
  static const struct { int count, has_i; int64_t i; const char *text; } want[] = {
      {1, 1, 100000, "100000"}, {0, 0, 0, "<corrupt payload>"}, {0, 0, 0, "<corrupt payload>"},
      {2, 1, 100000, "100000, 7"}, {1, 0, 0, "{1, 2}"}, {0, 0, 0, ""}, {1, 0, 0, "\"text\""}};
  for (int k = 0; k < 7; k++) {
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_int(&b, k);
    reply_rec r = {0};
    assert_int_equal(tr_call(h, TR_NOADDR, a, "raw", &b, TR_TIMEOUT_DEFAULT, rec_reply, &r),
                     TR_OK);
    tr_buf_free(&b);
    tr_host_run(h);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.status, TR_OK);
    assert_int_equal(r.count, want[k].count);
    assert_int_equal(r.has_i, want[k].has_i);
    if (want[k].has_i) assert_int_equal(r.i, want[k].i);
    assert_string_equal(r.text, want[k].text);
  }
  tr_host_free(h);
}

/* Differential: a lone scalar is read inline on the C paths (a handler's
 * arguments, an answer before its callback) with one dispatch for integers;
 * every integer width at its edges, whole, cut short, followed by a corrupt
 * byte or by a second value, and other scalars, must read exactly as the
 * general reader (tr__msg_parse_one, tr__msg_try_one) reads the same bytes. */
static char mirror_seen[256];
static int mirror_runs;
static void describe(const tr_msg *m, char *out, size_t cap) {
  int64_t v = 0;
  int has = tr_msg_int(m, 0, &v) == 0;
  char text[128];
  tr_msg_format(m, -1, text, sizeof text);
  snprintf(out, cap, "%d|%d|%d|%" PRId64 "|%s", tr_msg_count(m), (int)tr_msg_type(m, 0), has, v,
           text);
}
static void put_raw(tr_buf *b, const char *p, size_t n) { /* (white box: n < 96) */
  memcpy(b->data, p, n);
  b->len = n;
}
static int m_mirror(tr_ctx *ctx, const tr_msg *args) {
  mirror_runs++;
  describe(args, mirror_seen, sizeof mirror_seen);
  put_raw(tr_ctx_reply(ctx), args->data, args->len);
  return TR_OK;
}
static const tr_method mirror_methods[] = {{"mirror", m_mirror}, {NULL, NULL}};
static const tr_behaviour beh_mirror = {.name = "Mirror", .methods = mirror_methods};

typedef struct { int n, status; char seen[256]; } mirror_rec;
static void mirror_reply(tr_host *h, int status, const tr_msg *m, void *ud) {
  mirror_rec *r = ud;
  r->n++;
  r->status = status;
  describe(m, r->seen, sizeof r->seen);
}

static void scalar_reading_differential(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a;
  assert_int_equal(tr_spawn(h, &beh_mirror, NULL, NULL, &a), TR_OK);
  static const int64_t ints[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL,
                                 4294967296LL, INT64_MAX, -1, -32, -33, -128, -129, -32768,
                                 -32769, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN};
  enum { NI = sizeof ints / sizeof ints[0], NX = 5 };
  int checked = 0, refused = 0;
  for (int k = 0; k < NI + NX; k++) {
    tr_buf base;
    tr_buf_init(&base);
    if (k < NI) tr_pack_int(&base, ints[k]);
    else if (k == NI) put_raw(&base, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9); /* UINT64_MAX */
    else if (k == NI + 1) tr_pack_nil(&base);
    else if (k == NI + 2) tr_pack_bool(&base, 1);
    else if (k == NI + 3) tr_pack_str(&base, "s");
    else tr_pack_double(&base, 1.5);
    for (int variant = 0; variant < 4; variant++) {
      char bytes[32];
      size_t n = base.len;
      memcpy(bytes, base.data, n);
      if (variant == 1) n--;                      /* cut short (a lone byte: nothing) */
      if (variant == 2) bytes[n++] = (char)0xc1;  /* a byte never used */
      if (variant == 3) bytes[n++] = 0x07;        /* a second value */
      /* what the general reader makes of these bytes, as arguments and as an answer */
      char want_args[256] = "", want_reply[256];
      tr_msg m;
      tr__msg_init(&m, bytes, n);
      int ok = tr__msg_parse_one(&m) >= 0;
      if (ok) describe(&m, want_args, sizeof want_args);
      tr__msg_done(&m);
      tr__msg_init(&m, bytes, n);
      tr__msg_try_one(&m);
      describe(&m, want_reply, sizeof want_reply);
      tr__msg_done(&m);
      tr_buf b;
      tr_buf_init(&b);
      put_raw(&b, bytes, n);
      mirror_rec r = {0};
      mirror_runs = 0;
      mirror_seen[0] = 0;
      assert_int_equal(tr_call(h, TR_NOADDR, a, "mirror", &b, TR_TIMEOUT_DEFAULT, mirror_reply, &r),
                       TR_OK);
      tr_buf_free(&b);
      tr_host_run(h);
      assert_int_equal(r.n, 1);
      if (!ok) { /* refused before the handler runs */
        assert_int_equal(r.status, TR_EBADVALUE);
        assert_int_equal(mirror_runs, 0);
        refused++;
        continue;
      }
      assert_int_equal(r.status, TR_OK);
      assert_int_equal(mirror_runs, 1);
      assert_string_equal(mirror_seen, want_args);
      assert_string_equal(r.seen, want_reply); /* the same bytes back */
      checked++;
    }
    tr_buf_free(&base);
  }
  assert_true(checked > 40 && refused > 20);
  tr_host_free(h);
}

/* The last actor a message was delivered to is kept by its scheduler: a
 * dead one is never delivered to, whether its record is still there (it
 * waits in the run queue) or freed and another actor made in its memory. */
static int count_call(tr_host *h, tr_addr a, int64_t v, int64_t *out) {
  reply_rec r = {0};
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, v);
  int rc = tr_call(h, TR_NOADDR, a, "count", &b, TR_TIMEOUT_DEFAULT, rec_reply, &r);
  tr_buf_free(&b);
  if (rc) return rc;
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  *out = r.i;
  return r.status;
}

static void delivery_cache_edges(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a1, a2, a3;
  int64_t v;
  assert_int_equal(tr_spawn(h, &beh_count, NULL, NULL, &a1), TR_OK);
  tr_host_run(h);
  assert_int_equal(count_call(h, a1, 1, &v), TR_OK);
  assert_int_equal(v, 2);
  assert_int_equal(count_call(h, a1, 2, &v), TR_OK); /* kept */
  assert_int_equal(v, 3);
  /* dead, its record freed, another made (in its memory, likely) */
  assert_int_equal(tr_kill(h, a1), TR_OK);
  tr_host_run(h);
  assert_int_equal(tr_spawn(h, &beh_count, NULL, NULL, &a2), TR_OK);
  tr_host_run(h);
  assert_int_equal(count_call(h, a1, 3, &v), TR_EDEAD);
  assert_int_equal(count_call(h, a2, 4, &v), TR_OK);
  assert_int_equal(v, 5);
  assert_int_equal(count_call(h, a1, 5, &v), TR_EDEAD);
  /* dead while its record waits in the run queue (a message queued) */
  assert_int_equal(tr_spawn(h, &beh_count, NULL, NULL, &a3), TR_OK);
  tr_host_run(h);
  assert_int_equal(count_call(h, a3, 6, &v), TR_OK);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 7);
  assert_int_equal(tr_send(h, TR_NOADDR, a3, "count", &b), TR_OK); /* a3 kept, queued */
  assert_int_equal(tr_kill(h, a3), TR_OK);
  assert_false(tr_alive(h, a3));
  assert_int_equal(tr_send(h, TR_NOADDR, a3, "count", &b), TR_EDEAD);
  reply_rec r = {0};
  int rc = tr_call(h, TR_NOADDR, a3, "count", &b, TR_TIMEOUT_DEFAULT, rec_reply, &r);
  tr_host_run(h);
  assert_true(rc == TR_EDEAD || (rc == TR_OK && r.n == 1 && r.status == TR_EDEAD));
  tr_buf_free(&b);
  /* the others still answer, in turns */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(count_call(h, a2, i, &v), TR_OK);
    assert_int_equal(v, i + 1);
    assert_int_equal(count_call(h, a3, i, &v), TR_EDEAD);
  }
  tr_host_free(h);
}

/* A C reply callback runs for its actor; what it does to actors (its own
 * or others, whose queued answers are then delivered inside it) must not
 * leave the host pointing at a freed actor: a callback that kills its own
 * actor and calls again, and A's callback killing B whose answer (delivered
 * at B's death) kills A before A's callback calls again. */
typedef struct {
  tr_host *h;
  tr_addr a, b, server;
  int ran_a, ran_b, again_rc;
  reply_rec again;
} killers;

static void cb_kill_self(tr_host *h, int status, const tr_msg *m, void *ud) {
  killers *k = ud;
  k->ran_a++;
  assert_int_equal(tr_kill(h, k->a), TR_OK);
  k->again_rc = tr_call_fmt(h, k->a, k->server, "add", rec_reply, &k->again, "i", 1);
}

static void cb_b_kills_a(tr_host *h, int status, const tr_msg *m, void *ud) {
  killers *k = ud;
  k->ran_b++;
  tr_kill(h, k->a);
}

static void cb_a_kills_b(tr_host *h, int status, const tr_msg *m, void *ud) {
  killers *k = ud;
  k->ran_a++;
  tr_kill(h, k->b); /* delivers b's queued answer now: cb_b_kills_a */
  k->again_rc = tr_call_fmt(h, k->a, k->server, "add", rec_reply, &k->again, "i", 1);
}

static void callbacks_that_kill_callers(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  killers k = {.h = h};
  k.server = spawn_counter(h, 0);
  k.a = spawn_counter(h, 0);
  assert_int_equal(tr_call_fmt(h, k.a, k.server, "add", cb_kill_self, &k, "i", 1), TR_OK);
  tr_host_run(h);
  assert_int_equal(k.ran_a, 1);
  assert_int_equal(tr_alive(h, k.a), 0);
  assert_int_equal(k.again_rc, TR_OK); /* a call from a dead address: its answer still comes */
  assert_int_equal(k.again.n, 1);
  memset(&k, 0, sizeof k);
  k.h = h;
  k.server = spawn_counter(h, 0);
  k.a = spawn_counter(h, 0);
  k.b = spawn_counter(h, 0);
  /* both answered in the server's one turn: a's callback first */
  assert_int_equal(tr_call_fmt(h, k.a, k.server, "add", cb_a_kills_b, &k, "i", 1), TR_OK);
  assert_int_equal(tr_call_fmt(h, k.b, k.server, "add", cb_b_kills_a, &k, "i", 1), TR_OK);
  tr_host_run(h);
  assert_int_equal(k.ran_a, 1);
  assert_int_equal(k.ran_b, 1);
  assert_int_equal(tr_alive(h, k.a), 0);
  assert_int_equal(tr_alive(h, k.b), 0);
  assert_int_equal(k.again_rc, TR_OK);
  assert_int_equal(k.again.n, 1);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ids_reuse_one_slot),
      cmocka_unit_test(ids_generation_wraps),
      cmocka_unit_test(late_reply_for_recycled_slot),
      cmocka_unit_test(late_reply_after_caller_died),
      cmocka_unit_test(many_calls_in_flight),
      cmocka_unit_test(reply_in_place_and_not),
      cmocka_unit_test(reply_across_schedulers),
      cmocka_unit_test(run_returns_with_no_deadline_left),
      cmocka_unit_test(deadline_fifo_out_of_order),
      cmocka_unit_test(c_delivery_outcomes),
      cmocka_unit_test(method_lookup_edges),
      cmocka_unit_test(method_cache_edges),
      cmocka_unit_test(corrupt_arguments_refused),
      cmocka_unit_test(delivery_cache_edges),
      cmocka_unit_test(replies_read_before_callbacks),
      cmocka_unit_test(scalar_reading_differential),
      cmocka_unit_test(callbacks_that_kill_callers),
  };
  RUN_TESTS(tests, argc, argv);
}
