/* The C API across schedulers: placement (explicit, automatic, from
 * handlers, one scheduler, the environment), calls and replies that cross
 * threads, deferred replies, dead addresses, kills and stops of remote
 * actors, monitors, links and trap_exit across schedulers, the shared name
 * registry, timers on another scheduler, many concurrent calls, tr_host_run
 * waiting for the other schedulers, tr_host_free while they are busy, and a
 * Lua actor on another scheduler.
 *
 * Threads: the test's thread runs scheduler 1 (inside tr_host_run); the
 * others run on threads the host owns, possibly also while the test is not
 * inside tr_host_run. Data written by a handler on another thread is read by
 * the test only after tr_host_run has returned (all schedulers quiescent),
 * inside a reply callback (the answer carried it), under g_lock, or through
 * C11 atomics. */
#include <limits.h>
#include <stdatomic.h>

#include "helpers.h"
#include "internal.h" /* tr__sched_sync, for the tooling test */

/* ---- shared state ----------------------------------------------------------------------- */
static uv_thread_t g_main;  /* the test's thread: scheduler 1's */
static uv_mutex_t g_lock;   /* guards the notices */

static atomic_int g_entered;  /* "block": the handler is running */
static atomic_int g_gate;     /* "block": may return */
static atomic_int g_pveto;    /* on_stopping vetoes this many times */
static atomic_int g_seq;      /* orders the stop hooks */
static atomic_int g_stopping_n, g_stopped_n, g_stopping_at, g_stopped_at;
static atomic_int g_ticks;
static atomic_int g_holds;    /* "hold" calls taken */
static atomic_long g_loops;   /* "loop" turns */
static atomic_int g_token_errors; /* tr_token_reply/fail that did not return 0 */
/* "fill": its room callback ran (how often, status, its send's result, its
 * thread), and the handler is done */
static atomic_int g_room_n, g_room_status, g_room_send_rc, g_fill_done;
static uv_thread_t g_room_thread;

/* written on the actor's thread, read after tr_host_run returns */
static uv_thread_t g_stopping_thread, g_stopped_thread, g_tick_thread;
static char g_tick_label[32];
static int g_cancel_rc;
static int64_t g_chain_steps;
/* written by "report" (an actor on scheduler 1, so the test's thread) */
static int64_t g_reported;

typedef struct {
  int64_t ref;
  tr_addr self, who;
  char reason[32];
  char message[160];
  int on_main;
} notice;
static notice g_down[32], g_exit[32];
static int g_ndown, g_nexit;

static int on_main(void) {
  uv_thread_t t = uv_thread_self();
  return uv_thread_equal(&t, &g_main);
}

static void reset(void) {
  reset_globals();
  g_main = uv_thread_self();
  atomic_store(&g_entered, 0);
  atomic_store(&g_gate, 0);
  atomic_store(&g_pveto, 0);
  atomic_store(&g_seq, 0);
  atomic_store(&g_stopping_n, 0);
  atomic_store(&g_stopped_n, 0);
  atomic_store(&g_stopping_at, 0);
  atomic_store(&g_stopped_at, 0);
  atomic_store(&g_ticks, 0);
  atomic_store(&g_holds, 0);
  atomic_store(&g_loops, 0);
  atomic_store(&g_token_errors, 0);
  atomic_store(&g_room_n, 0);
  atomic_store(&g_room_status, 1);
  atomic_store(&g_room_send_rc, 1);
  atomic_store(&g_fill_done, 0);
  memset(&g_room_thread, 0, sizeof g_room_thread);
  memset(&g_stopping_thread, 0, sizeof g_stopping_thread);
  memset(&g_stopped_thread, 0, sizeof g_stopped_thread);
  memset(&g_tick_thread, 0, sizeof g_tick_thread);
  g_tick_label[0] = 0;
  g_cancel_rc = 1;
  g_chain_steps = 0;
  g_reported = -1;
  uv_mutex_lock(&g_lock);
  memset(g_down, 0, sizeof g_down);
  memset(g_exit, 0, sizeof g_exit);
  g_ndown = g_nexit = 0;
  uv_mutex_unlock(&g_lock);
}

/* ---- Probe: a C behaviour that reports where it runs ------------------------------------ */
typedef struct {
  int64_t count;
  uv_thread_t init_thread; /* the thread init ran on */
  int inited;
  tr_token hold;           /* "hold": a call that is never answered */
  int64_t steps, target;   /* "chain" */
  tr_addr report_to;
  tr_token fan_tok;        /* "fan" */
  int fan_left, fan_ok, fan_bad, fan_off_thread;
  int ticks, tick_limit;   /* "every" */
  tr_timer_id timer;
} probe_st;

static int p_init(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  st->init_thread = uv_thread_self();
  st->inited = 1;
  if (tr_msg_type(args, 0) == TR_T_INT) tr_msg_int(args, 0, &st->count);
  return 0;
}
static int p_stopping(tr_ctx *ctx) {
  g_stopping_thread = uv_thread_self();
  atomic_store(&g_stopping_at, atomic_fetch_add(&g_seq, 1) + 1);
  atomic_fetch_add(&g_stopping_n, 1);
  if (atomic_load(&g_pveto) > 0) {
    atomic_fetch_sub(&g_pveto, 1);
    return 1;
  }
  return 0;
}
static void p_stopped(tr_ctx *ctx) {
  g_stopped_thread = uv_thread_self();
  atomic_store(&g_stopped_at, atomic_fetch_add(&g_seq, 1) + 1);
  atomic_fetch_add(&g_stopped_n, 1);
}

/* where() -> scheduler index of self, on the test's thread, init ran on this
 * thread, this thread's id (raw bytes) */
static int m_where(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  uv_thread_t self = uv_thread_self();
  int init_same = st->inited && uv_thread_equal(&self, &st->init_thread);
  return tr_pack_fmt(tr_ctx_reply(ctx), "I b b S", (int64_t)TR_ADDR_SCHED(tr_ctx_self(ctx)),
                     on_main(), init_same, (const char *)&self, sizeof self);
}
static int m_padd(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  int64_t n;
  if (tr_msg_int(args, 0, &n)) return tr_ctx_error(ctx, TR_EBADVALUE, "add needs an integer");
  st->count += n;
  return tr_pack_int(tr_ctx_reply(ctx), st->count);
}
static int m_pget(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  return tr_pack_int(tr_ctx_reply(ctx), st->count);
}
static int m_pfail(tr_ctx *ctx, const tr_msg *args) {
  tr_pack_fmt(tr_ctx_fail(ctx), "{s s}", "reason", "nope");
  return TR_FAILED;
}
static int m_psyserr(tr_ctx *ctx, const tr_msg *args) {
  return tr_ctx_error(ctx, TR_EBADVALUE, "custom %d", 42);
}
/* who() -> sender, is_call, on the test's thread */
static int m_pwho(tr_ctx *ctx, const tr_msg *args) {
  return tr_pack_fmt(tr_ctx_reply(ctx), "a b b", tr_ctx_sender(ctx), tr_ctx_is_call(ctx),
                     on_main());
}
static int m_hold(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  int rc = tr_ctx_defer(ctx, &st->hold);
  atomic_fetch_add(&g_holds, 1);
  return rc;
}
/* block(ms): runs until g_gate opens or ms pass; answers whether the gate opened */
static int m_block(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  int64_t ms = 1000;
  tr_msg_int(args, 0, &ms);
  atomic_store(&g_entered, 1);
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  while (!atomic_load(&g_gate) && uv_hrtime() < end) uv_sleep(1);
  st->count++; /* the state must still be there (ASan) */
  return tr_pack_bool(tr_ctx_reply(ctx), atomic_load(&g_gate));
}

/* relay(to, method, timeout_ms): calls to:method() as this actor and answers
 * later through a token: with the callee's values and then whether the
 * callback ran on this handler's thread; or, when the call failed, with the
 * failure value {reason = status name, code = that same-thread flag}. A call
 * refused at once is this handler's own system error. */
typedef struct {
  tr_token tok;
  uv_thread_t thread;
} relay_t;

static void repack(tr_buf *b, const tr_msg *m) {
  int n = tr_msg_count(m);
  for (int i = 0; i < n; i++) {
    int64_t v;
    int bo;
    double d;
    tr_addr a;
    const char *p;
    size_t len;
    switch (tr_msg_type(m, i)) {
      case TR_T_INT: tr_msg_int(m, i, &v); tr_pack_int(b, v); break;
      case TR_T_BOOL: tr_msg_bool(m, i, &bo); tr_pack_bool(b, bo); break;
      case TR_T_FLOAT: tr_msg_num(m, i, &d); tr_pack_double(b, d); break;
      case TR_T_ADDR: tr_msg_addr(m, i, &a); tr_pack_addr(b, a); break;
      case TR_T_STR: tr_msg_str(m, i, &p, &len); tr_pack_lstr(b, p, len); break;
      default: tr_pack_nil(b); break;
    }
  }
}

static void p_relay_done(tr_host *h, int status, const tr_msg *m, void *ud) {
  relay_t *r = ud;
  uv_thread_t self = uv_thread_self();
  int same = uv_thread_equal(&self, &r->thread);
  tr_buf b;
  tr_buf_init(&b);
  int rc;
  if (status == TR_OK) {
    repack(&b, m);
    tr_pack_bool(&b, same);
    rc = tr_token_reply(h, &r->tok, &b);
  } else {
    tr_pack_fmt(&b, "{s s s i}", "reason", tr_errname(status), "code", same);
    rc = tr_token_fail(h, &r->tok, &b);
  }
  if (rc != TR_OK) atomic_fetch_add(&g_token_errors, 1);
  tr_buf_free(&b);
  free(r);
}

static int m_prelay(tr_ctx *ctx, const tr_msg *args) {
  tr_addr to;
  const char *method;
  size_t mlen;
  int64_t timeout = TR_TIMEOUT_DEFAULT;
  if (tr_msg_addr(args, 0, &to) || tr_msg_str(args, 1, &method, &mlen))
    return tr_ctx_error(ctx, TR_EBADVALUE, "relay(to, method, timeout_ms)");
  tr_msg_int(args, 2, &timeout);
  char mname[64];
  snprintf(mname, sizeof mname, "%.*s", (int)mlen, method);
  relay_t *r = calloc(1, sizeof *r);
  if (!r) return TR_ENOMEM;
  r->thread = uv_thread_self();
  int rc = tr_call(tr_ctx_host(ctx), tr_ctx_self(ctx), to, mname, NULL, timeout, p_relay_done, r);
  if (rc) {
    free(r);
    return tr_ctx_error(ctx, rc, "relay: %s", tr_errname(rc));
  }
  /* the callback runs later, on this actor's thread: defer now */
  rc = tr_ctx_defer(ctx, &r->tok);
  if (rc) atomic_fetch_add(&g_token_errors, 1);
  return rc;
}

/* send_to(to, method) -> what tr_send returned */
static int m_send_to(tr_ctx *ctx, const tr_msg *args) {
  tr_addr to;
  const char *method = "get";
  size_t mlen = 3;
  if (tr_msg_addr(args, 0, &to)) return TR_EBADVALUE;
  tr_msg_str(args, 1, &method, &mlen);
  char mname[64];
  snprintf(mname, sizeof mname, "%.*s", (int)mlen, method);
  int rc = tr_send(tr_ctx_host(ctx), tr_ctx_self(ctx), to, mname, NULL);
  return tr_pack_int(tr_ctx_reply(ctx), rc);
}

/* spawn_here(k) -> rc, address of a new Probe spawned with .scheduler = k */
static const tr_behaviour probe;
static int m_spawn_here(tr_ctx *ctx, const tr_msg *args) {
  int64_t k = 0;
  tr_msg_int(args, 0, &k);
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = (unsigned)k;
  tr_addr a = TR_NOADDR;
  int rc = tr_spawn(tr_ctx_host(ctx), &probe, NULL, &o, &a);
  return tr_pack_fmt(tr_ctx_reply(ctx), "i a", rc, a);
}

/* reg(name) -> rc of registering self; whereis(name) -> rc, address */
static int m_reg(tr_ctx *ctx, const tr_msg *args) {
  const char *p;
  size_t len;
  if (tr_msg_str(args, 0, &p, &len)) return TR_EBADVALUE;
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)len, p);
  return tr_pack_int(tr_ctx_reply(ctx), tr_register(tr_ctx_host(ctx), name, tr_ctx_self(ctx)));
}
static int m_whereis(tr_ctx *ctx, const tr_msg *args) {
  const char *p;
  size_t len;
  if (tr_msg_str(args, 0, &p, &len)) return TR_EBADVALUE;
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)len, p);
  tr_addr a = TR_NOADDR;
  int rc = tr_whereis(tr_ctx_host(ctx), name, &a);
  return tr_pack_fmt(tr_ctx_reply(ctx), "i a", rc, a);
}

/* watch(target) -> rc, ref; link_to(target) -> rc; trap(on) -> rc;
 * stop(target) -> rc; kill(target) -> rc */
static int m_watch(tr_ctx *ctx, const tr_msg *args) {
  tr_addr t;
  if (tr_msg_addr(args, 0, &t)) return TR_EBADVALUE;
  uint64_t ref = 0;
  int rc = tr_monitor(tr_ctx_host(ctx), tr_ctx_self(ctx), t, &ref);
  return tr_pack_fmt(tr_ctx_reply(ctx), "i I", rc, (int64_t)ref);
}
static int m_link_to(tr_ctx *ctx, const tr_msg *args) {
  tr_addr t;
  if (tr_msg_addr(args, 0, &t)) return TR_EBADVALUE;
  return tr_pack_int(tr_ctx_reply(ctx), tr_link(tr_ctx_host(ctx), tr_ctx_self(ctx), t));
}
static int m_trap(tr_ctx *ctx, const tr_msg *args) {
  int on = 1;
  tr_msg_bool(args, 0, &on);
  return tr_pack_int(tr_ctx_reply(ctx), tr_trap_exit(tr_ctx_host(ctx), tr_ctx_self(ctx), on));
}
static int m_stop(tr_ctx *ctx, const tr_msg *args) {
  tr_addr t;
  if (tr_msg_addr(args, 0, &t)) return TR_EBADVALUE;
  return tr_pack_int(tr_ctx_reply(ctx), tr_stop(tr_ctx_host(ctx), t));
}
static int m_kill(tr_ctx *ctx, const tr_msg *args) {
  tr_addr t;
  if (tr_msg_addr(args, 0, &t)) return TR_EBADVALUE;
  return tr_pack_int(tr_ctx_reply(ctx), tr_kill(tr_ctx_host(ctx), t));
}
static int m_pstop_self(tr_ctx *ctx, const tr_msg *args) {
  return tr_stop(tr_ctx_host(ctx), tr_ctx_self(ctx));
}

/* chain(n, report_to): sends itself "step" n times, one after the other, then
 * reports n to report_to (if not TR_NOADDR) */
static int m_chain(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  if (tr_msg_int(args, 0, &st->target)) return TR_EBADVALUE;
  st->report_to = TR_NOADDR;
  tr_msg_addr(args, 1, &st->report_to);
  st->steps = 0;
  return tr_send(tr_ctx_host(ctx), tr_ctx_self(ctx), tr_ctx_self(ctx), "step", NULL);
}
static int m_step(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  tr_host *h = tr_ctx_host(ctx);
  st->steps++;
  g_chain_steps++;
  if (st->steps < st->target) return tr_send(h, tr_ctx_self(ctx), tr_ctx_self(ctx), "step", NULL);
  if (st->report_to != TR_NOADDR)
    return tr_send_fmt(h, tr_ctx_self(ctx), st->report_to, "report", "I", st->steps);
  return 0;
}
static int m_report(tr_ctx *ctx, const tr_msg *args) {
  if (!on_main()) return TR_EINVAL; /* used on scheduler 1 only */
  return tr_msg_int(args, 0, &g_reported);
}
/* loop: sends itself "loop" forever */
static int m_loop(tr_ctx *ctx, const tr_msg *args) {
  atomic_fetch_add(&g_loops, 1);
  return tr_send(tr_ctx_host(ctx), tr_ctx_self(ctx), tr_ctx_self(ctx), "loop", NULL);
}

/* tick(label?): counts; cancels st->timer after st->tick_limit ticks */
static int m_ptick(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  const char *p;
  size_t len;
  st->ticks++;
  g_tick_thread = uv_thread_self();
  if (tr_msg_str(args, 0, &p, &len) == 0)
    snprintf(g_tick_label, sizeof g_tick_label, "%.*s", (int)len, p);
  atomic_fetch_add(&g_ticks, 1);
  if (st->tick_limit && st->ticks >= st->tick_limit && st->timer) {
    g_cancel_rc = tr_cancel_timer(tr_ctx_host(ctx), st->timer);
    st->timer = 0;
  }
  return 0;
}
/* every(ms, limit): an interval timer to self, cancelled by the limit-th tick */
static int m_every(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  int64_t ms, limit;
  if (tr_msg_int(args, 0, &ms) || tr_msg_int(args, 1, &limit)) return TR_EBADVALUE;
  st->ticks = 0;
  st->tick_limit = (int)limit;
  int rc = tr_send_after(tr_ctx_host(ctx), tr_ctx_self(ctx), ms, ms, "tick", NULL, &st->timer);
  return tr_pack_int(tr_ctx_reply(ctx), rc);
}
/* after(ms): a one-shot timer to self */
static int m_after(tr_ctx *ctx, const tr_msg *args) {
  int64_t ms;
  if (tr_msg_int(args, 0, &ms)) return TR_EBADVALUE;
  return tr_send_after(tr_ctx_host(ctx), tr_ctx_self(ctx), ms, 0, "tick", NULL, NULL);
}

/* fan(to, n): n calls to:add(1) at once; answers (ok, bad, callbacks that ran
 * on another thread than this actor's) once all are answered */
static void fan_done(tr_host *h, int status, const tr_msg *m, void *ud) {
  probe_st *st = ud;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &st->init_thread)) st->fan_off_thread++;
  if (status == TR_OK) st->fan_ok++;
  else st->fan_bad++;
  if (--st->fan_left == 0) {
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_fmt(&b, "i i i", st->fan_ok, st->fan_bad, st->fan_off_thread);
    if (tr_token_reply(h, &st->fan_tok, &b) != TR_OK) atomic_fetch_add(&g_token_errors, 1);
    tr_buf_free(&b);
  }
}
static int m_fan(tr_ctx *ctx, const tr_msg *args) {
  probe_st *st = tr_ctx_state(ctx);
  tr_addr to;
  int64_t n;
  if (tr_msg_addr(args, 0, &to) || tr_msg_int(args, 1, &n) || n <= 0) return TR_EBADVALUE;
  st->fan_ok = st->fan_bad = st->fan_off_thread = 0;
  st->fan_left = (int)n;
  int rc = tr_ctx_defer(ctx, &st->fan_tok);
  if (rc) return rc;
  for (int64_t i = 0; i < n; i++)
    if (tr_call_fmt(tr_ctx_host(ctx), tr_ctx_self(ctx), to, "add", fan_done, st, "i", 1)) {
      st->fan_bad++;
      st->fan_left--;
    }
  if (st->fan_left == 0) { /* every call was refused */
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_fmt(&b, "i i i", st->fan_ok, st->fan_bad, st->fan_off_thread);
    tr_token_reply(tr_ctx_host(ctx), &st->fan_tok, &b);
    tr_buf_free(&b);
  }
  return 0;
}

static int m_pexit(tr_ctx *ctx, const tr_msg *args) {
  int64_t code = 0;
  tr_msg_int(args, 0, &code);
  tr_host_exit(tr_ctx_host(ctx), (int)code);
  return 0;
}

/* on_down(ref, address, reason, detail), on_exit(address, reason, detail) */
static void record(notice *arr, int *n, tr_ctx *ctx, const tr_msg *args, int base) {
  notice d;
  memset(&d, 0, sizeof d);
  const char *p;
  size_t len;
  d.self = tr_ctx_self(ctx);
  d.on_main = on_main();
  if (base == 1) tr_msg_int(args, 0, &d.ref);
  tr_msg_addr(args, base, &d.who);
  if (tr_msg_str(args, base + 1, &p, &len) == 0)
    snprintf(d.reason, sizeof d.reason, "%.*s", (int)len, p);
  if (tr_msg_field_str(args, base + 2, "message", &p, &len) == 0)
    snprintf(d.message, sizeof d.message, "%.*s", (int)len, p);
  uv_mutex_lock(&g_lock);
  if (*n < 32) arr[(*n)++] = d;
  uv_mutex_unlock(&g_lock);
}
static int m_on_down(tr_ctx *ctx, const tr_msg *args) {
  record(g_down, &g_ndown, ctx, args, 1);
  return 0;
}
static int m_on_exit(tr_ctx *ctx, const tr_msg *args) {
  record(g_exit, &g_nexit, ctx, args, 0);
  return 0;
}

/* fill(target, max): sends target add(1) until it is full (at most max
 * sends), then asks for room (fill_room); answers the sends that went
 * through and what tr_notify_room returned */
static void fill_room(tr_host *h, tr_addr to, int status, void *ud) {
  (void)ud;
  g_room_thread = uv_thread_self();
  atomic_store(&g_room_status, status);
  if (status == 0) atomic_store(&g_room_send_rc, tr_send_fmt(h, TR_NOADDR, to, "add", "i", 1));
  atomic_fetch_add(&g_room_n, 1);
}
static int m_fill(tr_ctx *ctx, const tr_msg *args) {
  tr_addr to;
  int64_t max = 1000, n = 0;
  if (tr_msg_addr(args, 0, &to)) return tr_ctx_error(ctx, TR_EBADVALUE, "fill needs an address");
  tr_msg_int(args, 1, &max);
  int rc = 0;
  while (n < max && (rc = tr_send_fmt(tr_ctx_host(ctx), tr_ctx_self(ctx), to, "add", "i", 1)) == 0)
    n++;
  int nrc = rc == TR_EFULL ? tr_notify_room(tr_ctx_host(ctx), to, fill_room, NULL) : 1;
  atomic_store(&g_fill_done, 1);
  return tr_pack_fmt(tr_ctx_reply(ctx), "I i i", n, rc, nrc);
}

static const tr_method probe_methods[] = {
    {"where", m_where},       {"add", m_padd},
    {"get", m_pget},          {"fail", m_pfail},
    {"syserr", m_psyserr},    {"who", m_pwho},
    {"hold", m_hold},         {"block", m_block},
    {"relay", m_prelay},       {"send_to", m_send_to},
    {"spawn_here", m_spawn_here}, {"reg", m_reg},
    {"whereis", m_whereis},   {"watch", m_watch},
    {"link_to", m_link_to},   {"trap", m_trap},
    {"stop", m_stop},         {"kill", m_kill},
    {"stop_self", m_pstop_self}, {"chain", m_chain},
    {"step", m_step},         {"report", m_report},
    {"loop", m_loop},         {"tick", m_ptick},
    {"every", m_every},       {"after", m_after},
    {"fan", m_fan},           {"exit", m_pexit},
    {"on_down", m_on_down},   {"on_exit", m_on_exit},
    {"fill", m_fill},
    {NULL, NULL}};

static const tr_behaviour probe = {
    .name = "Probe",
    .state_size = sizeof(probe_st),
    .init = p_init,
    .on_stopping = p_stopping,
    .on_stopped = p_stopped,
    .methods = probe_methods,
};

/* ---- helpers ---------------------------------------------------------------------------- */
static tr_host *new_sched_host(unsigned schedulers) {
  tr_host_options o;
  tr_host_options_init(&o);
  o.schedulers = schedulers;
  tr_host *h = NULL;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  assert_non_null(h);
  if (schedulers) assert_int_equal(tr_host_schedulers(h), schedulers);
  return h;
}

/* A Probe on scheduler k (1-based; 0: automatic) with count `start`. */
static tr_addr spawn_on(tr_host *h, unsigned k, int64_t start) {
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = k;
  o.mailbox_capacity = 20000;
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, start);
  tr_addr a = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &probe, &b, &o, &a), TR_OK);
  tr_buf_free(&b);
  assert_true(a != TR_NOADDR);
  if (k) assert_int_equal(TR_ADDR_SCHED(a), k - 1);
  return a;
}

/* A reply, plus where its callback ran and its values by index. */
typedef struct {
  reply_rec r;
  int off_main;          /* callbacks that ran off the test's thread */
  int64_t ints[8];       /* integer or boolean values (-1 otherwise) */
  tr_addr addrs[8];      /* address values (TR_NOADDR otherwise) */
  uv_thread_t thread;    /* a value holding a thread id, if any */
  int has_thread;
} sreply;

static void on_sreply(tr_host *h, int status, const tr_msg *m, void *ud) {
  sreply *s = ud;
  if (!on_main()) s->off_main++;
  rec_reply(h, status, m, &s->r);
  for (int i = 0; i < 8; i++) {
    int b;
    const char *p;
    size_t len;
    s->ints[i] = -1;
    s->addrs[i] = TR_NOADDR;
    switch (tr_msg_type(m, i)) {
      case TR_T_INT: tr_msg_int(m, i, &s->ints[i]); break;
      case TR_T_BOOL:
        tr_msg_bool(m, i, &b);
        s->ints[i] = b;
        break;
      case TR_T_ADDR: tr_msg_addr(m, i, &s->addrs[i]); break;
      case TR_T_STR:
        if (tr_msg_str(m, i, &p, &len) == 0 && len == sizeof s->thread) {
          memcpy(&s->thread, p, sizeof s->thread);
          s->has_thread = 1;
        }
        break;
      default: break;
    }
  }
}

/* Calls to:method(args) from outside the actors, runs the host until it is
 * quiescent; the callback must have run exactly once, on this thread. */
static void call_run(tr_host *h, tr_addr to, const char *method, const tr_buf *args,
                     int64_t timeout_ms, sreply *out) {
  memset(out, 0, sizeof *out);
  assert_int_equal(tr_call(h, TR_NOADDR, to, method, args, timeout_ms, on_sreply, out), TR_OK);
  tr_host_run(h);
  assert_int_equal(out->r.n, 1);
  assert_int_equal(out->off_main, 0);
}

#define CALLF(h, to, method, out, ...)                              \
  do {                                                              \
    tr_buf b_;                                                      \
    tr_buf_init(&b_);                                               \
    assert_int_equal(tr_pack_fmt(&b_, __VA_ARGS__), TR_OK);         \
    call_run((h), (to), (method), &b_, 2000, (out));                \
    tr_buf_free(&b_);                                               \
  } while (0)

typedef struct {
  unsigned sched;
  int on_main, init_same;
  uv_thread_t thread;
} place;

static place where(tr_host *h, tr_addr a) {
  sreply r;
  CALLF(h, a, "where", &r, "");
  assert_int_equal(r.r.status, TR_OK);
  assert_true(r.has_thread);
  place p = {(unsigned)r.ints[0], (int)r.ints[1], (int)r.ints[2], r.thread};
  assert_int_equal(p.sched, TR_ADDR_SCHED(a));
  assert_int_equal(p.init_same, 1); /* init ran on the thread of the handlers */
  return p;
}

static int same_thread(uv_thread_t a, uv_thread_t b) { return uv_thread_equal(&a, &b); }

/* The notice `self` got about `who` (the n-th of them, from 0); 0 if none. */
static int find_notice(notice *arr, int *count, tr_addr self, tr_addr who, int nth, notice *out) {
  int found = 0;
  uv_mutex_lock(&g_lock);
  for (int i = 0; i < *count; i++)
    if (arr[i].self == self && arr[i].who == who && found++ == nth) {
      *out = arr[i];
      break;
    }
  uv_mutex_unlock(&g_lock);
  return found > nth;
}
static int count_notices(notice *arr, int *count, tr_addr self, tr_addr who) {
  int n = 0;
  uv_mutex_lock(&g_lock);
  for (int i = 0; i < *count; i++)
    if (arr[i].self == self && arr[i].who == who) n++;
  uv_mutex_unlock(&g_lock);
  return n;
}
static int total_notices(int *count) {
  uv_mutex_lock(&g_lock);
  int n = *count;
  uv_mutex_unlock(&g_lock);
  return n;
}

static uint64_t ms_since(uint64_t t0) { return (uv_hrtime() - t0) / 1000000u; }

/* A timer on the host's loop (so: the test's thread, outside any actor, while
 * tr_host_run runs) that kills `target` once *when is non-zero (or after
 * about a second, which the test then sees in `seen`). With `post`, it also
 * calls target:get() three times right after tr_kill returned, then opens
 * g_gate. */
typedef struct {
  uv_timer_t t;
  tr_host *h;
  tr_addr target;
  atomic_int *when;
  int polls, kill_rc, seen;
  sreply *post;
  int post_rc[3];
} killer;

static void killer_tick(uv_timer_t *t) {
  killer *k = t->data;
  if (!atomic_load(k->when) && ++k->polls < 1000) return;
  k->seen = atomic_load(k->when);
  k->kill_rc = tr_kill(k->h, k->target);
  for (int i = 0; k->post && i < 3; i++) {
    memset(&k->post[i], 0, sizeof k->post[i]);
    k->post_rc[i] = tr_call(k->h, TR_NOADDR, k->target, "get", NULL, 2000, on_sreply, &k->post[i]);
  }
  atomic_store(&g_gate, 1);
  uv_close((uv_handle_t *)&k->t, NULL);
}

static void start_killer(killer *k, tr_host *h, tr_addr target, atomic_int *when, sreply *post) {
  memset(k, 0, sizeof *k);
  k->h = h;
  k->target = target;
  k->when = when;
  k->post = post;
  k->kill_rc = 1;
  k->t.data = k;
  assert_int_equal(uv_timer_init(tr_host_loop(h), &k->t), 0);
  assert_int_equal(uv_timer_start(&k->t, killer_tick, 1, 1), 0);
}

/* ---- placement -------------------------------------------------------------------------- */
static void placement_explicit_and_automatic(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  assert_int_equal(tr_host_schedulers(h), 2);
  tr_addr a1 = spawn_on(h, 1, 0), a2 = spawn_on(h, 2, 0), b2 = spawn_on(h, 2, 0);
  place p1 = where(h, a1), p2 = where(h, a2), q2 = where(h, b2);
  /* scheduler 1 is the thread that runs tr_host_run; scheduler 2 is another */
  assert_int_equal(p1.on_main, 1);
  assert_true(same_thread(p1.thread, g_main));
  assert_int_equal(p2.on_main, 0);
  assert_false(same_thread(p2.thread, g_main));
  assert_true(same_thread(p2.thread, q2.thread)); /* one thread per scheduler */
  /* out of range: refused, the address not written */
  unsigned bad[] = {3, TR_MAX_SCHEDULERS, 255, 256, UINT_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tr_spawn_options o;
    memset(&o, 0, sizeof o);
    o.scheduler = bad[i];
    tr_addr out = TR_NOADDR;
    assert_int_equal(tr_spawn(h, &probe, NULL, &o, &out), TR_EINVAL);
    assert_true(out == TR_NOADDR);
    assert_int_equal(tr_spawn_lua_string(h, "return {}", "=empty", NULL, &o, &out), TR_EINVAL);
    assert_true(out == TR_NOADDR);
  }
  /* automatic, from outside any actor: a C behaviour stays on the
   * spawner's scheduler (its code may share the program's memory); a Lua
   * file or source goes round-robin over the two */
  for (int i = 0; i < 4; i++) {
    tr_addr a = TR_NOADDR;
    if (i < 2) {
      tr_spawn_options o;
      memset(&o, 0, sizeof o); /* .scheduler = 0 */
      assert_int_equal(tr_spawn(h, &probe, NULL, &o, &a), TR_OK);
    } else {
      assert_int_equal(tr_spawn(h, &probe, NULL, NULL, &a), TR_OK); /* no options: same */
    }
    assert_int_equal(TR_ADDR_SCHED(a), 0);
    place p = where(h, a);
    assert_int_equal(p.on_main, 1);
    assert_true(same_thread(p.thread, p1.thread));
  }
  unsigned s[6];
  for (int i = 0; i < 6; i++) {
    tr_addr a = TR_NOADDR;
    assert_int_equal(tr_spawn_lua_string(h, "return {}", "=empty", NULL, NULL, &a), TR_OK);
    s[i] = TR_ADDR_SCHED(a);
    assert_true(s[i] < 2);
  }
  for (int i = 0; i + 1 < 6; i++) assert_int_not_equal(s[i], s[i + 1]);
  tr_host_free(h);
}

/* As with one scheduler, an address is usable as soon as tr_spawn returns,
 * whichever scheduler the actor is placed on. */
static void spawned_address_usable_at_once(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr w1 = spawn_on(h, 1, 0);
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = 2;
  tr_addr a = TR_NOADDR, b = TR_NOADDR, c = TR_NOADDR, d = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &a), TR_OK);
  assert_true(tr_alive(h, a));
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a, "add", "i", 2), TR_OK);
  sreply r;
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_call(h, TR_NOADDR, a, "get", NULL, 2000, on_sreply, &r), TR_OK);
  assert_int_equal(tr_monitor(h, w1, a, NULL), TR_OK);
  assert_int_equal(tr_link(h, w1, a), TR_OK);
  assert_int_equal(tr_unlink(h, w1, a), TR_OK);
  assert_int_equal(tr_register(h, "fresh", a), TR_OK);
  assert_int_equal(tr_send_after(h, a, 1, 0, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &b), TR_OK);
  assert_int_equal(tr_stop(h, b), TR_OK);
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &c), TR_OK);
  assert_int_equal(tr_kill(h, c), TR_OK);
  assert_int_equal(tr_spawn_lua_string(h, "return { ping = function() return 'pong' end }",
                                       "=fresh", NULL, &o, &d),
                   TR_OK);
  sreply lr;
  memset(&lr, 0, sizeof lr);
  assert_int_equal(tr_call(h, TR_NOADDR, d, "ping", NULL, 2000, on_sreply, &lr), TR_OK);
  tr_host_run(h);
  assert_int_equal(r.r.n, 1);
  assert_int_equal(r.r.status, TR_OK);
  assert_int_equal(r.r.i, 2);
  assert_int_equal(lr.r.n, 1);
  assert_string_equal(lr.r.s, "pong");
  assert_int_equal(atomic_load(&g_ticks), 1);
  assert_false(tr_alive(h, b));
  assert_false(tr_alive(h, c));
  /* the new actors ran init on scheduler 2's thread */
  assert_false(where(h, a).on_main);
  tr_host_free(h);
}

static void placement_from_handlers(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a1 = spawn_on(h, 1, 0), a2 = spawn_on(h, 2, 0);
  place p2 = where(h, a2);
  sreply r;
  /* automatic inside a handler: the spawner's scheduler */
  CALLF(h, a2, "spawn_here", &r, "i", 0);
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(TR_ADDR_SCHED(r.addrs[1]), 1);
  assert_true(same_thread(where(h, r.addrs[1]).thread, p2.thread));
  CALLF(h, a1, "spawn_here", &r, "i", 0);
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(TR_ADDR_SCHED(r.addrs[1]), 0);
  assert_int_equal(where(h, r.addrs[1]).on_main, 1);
  /* explicit, onto the other scheduler */
  CALLF(h, a2, "spawn_here", &r, "i", 1);
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(TR_ADDR_SCHED(r.addrs[1]), 0);
  assert_int_equal(where(h, r.addrs[1]).on_main, 1);
  CALLF(h, a1, "spawn_here", &r, "i", 2);
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(TR_ADDR_SCHED(r.addrs[1]), 1);
  assert_true(same_thread(where(h, r.addrs[1]).thread, p2.thread));
  /* out of range from a handler */
  CALLF(h, a2, "spawn_here", &r, "i", 3);
  assert_int_equal(r.r.status, TR_OK);
  assert_int_equal(r.ints[0], TR_EINVAL);
  assert_true(r.addrs[1] == TR_NOADDR);
  tr_host_free(h);
}

static void one_scheduler_and_environment(void **state) {
  reset();
  tr_host *h = new_sched_host(1);
  assert_int_equal(tr_host_schedulers(h), 1);
  tr_addr a = spawn_on(h, 0, 5), b = spawn_on(h, 1, 0), c = TR_NOADDR;
  assert_int_equal(TR_ADDR_SCHED(a), 0);
  assert_int_equal(tr_spawn(h, &probe, NULL, NULL, &c), TR_OK);
  assert_int_equal(TR_ADDR_SCHED(c), 0);
  assert_int_equal(where(h, a).on_main, 1);
  assert_int_equal(where(h, b).on_main, 1);
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = 2;
  tr_addr out = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &out), TR_EINVAL);
  assert_true(out == TR_NOADDR);
  sreply r;
  CALLF(h, a, "spawn_here", &r, "i", 2); /* from a handler too */
  assert_int_equal(r.ints[0], TR_EINVAL);
  CALLF(h, a, "add", &r, "i", 1);
  assert_int_equal(r.r.i, 6);
  tr_host_free(h);
  assert_int_equal(tr_host_schedulers(NULL), 0);

  /* 0: from TROUPE_SCHEDULERS; an explicit number wins over it */
  const char *was = getenv("TROUPE_SCHEDULERS");
  char saved[64] = "";
  if (was) snprintf(saved, sizeof saved, "%s", was);
  setenv("TROUPE_SCHEDULERS", "3", 1);
  h = new_sched_host(0);
  assert_int_equal(tr_host_schedulers(h), 3);
  tr_addr a3 = spawn_on(h, 3, 0);
  assert_int_equal(where(h, a3).on_main, 0);
  tr_host_free(h);
  h = new_sched_host(2);
  assert_int_equal(tr_host_schedulers(h), 2);
  tr_host_free(h);
  /* neither: the number of cores, within the bounds */
  unsetenv("TROUPE_SCHEDULERS");
  h = new_sched_host(0);
  unsigned n = tr_host_schedulers(h);
  assert_true(n >= 1 && n <= TR_MAX_SCHEDULERS);
  tr_host_free(h);
  if (was) setenv("TROUPE_SCHEDULERS", saved, 1);
  /* more than the maximum: refused, or capped */
  tr_host_options ho;
  tr_host_options_init(&ho);
  ho.schedulers = TR_MAX_SCHEDULERS + 1;
  h = NULL;
  int rc = tr_host_new(&h, &ho);
  if (rc == TR_OK) {
    assert_true(tr_host_schedulers(h) <= TR_MAX_SCHEDULERS);
    tr_host_free(h);
  } else {
    assert_int_equal(rc, TR_EINVAL);
    assert_null(h);
  }
}

/* ---- calls and replies ------------------------------------------------------------------ */
static void call_reply_main_to_other_scheduler(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a2 = spawn_on(h, 2, 40);
  sreply r;
  CALLF(h, a2, "add", &r, "i", 2);
  assert_int_equal(r.r.status, TR_OK);
  assert_int_equal(r.r.i, 42);
  /* every kind of answer crosses back */
  CALLF(h, a2, "fail", &r, "");
  assert_int_equal(r.r.status, TR_FAILED);
  assert_string_equal(r.r.reason, "nope");
  CALLF(h, a2, "syserr", &r, "");
  assert_int_equal(r.r.status, TR_EBADVALUE);
  assert_string_equal(r.r.s, "custom 42");
  CALLF(h, a2, "missing", &r, "");
  assert_int_equal(r.r.status, TR_ENOHANDLER);
  assert_non_null(strstr(r.r.s, "missing"));
  CALLF(h, a2, "add", &r, "s", "x");
  assert_int_equal(r.r.status, TR_EBADVALUE);
  assert_string_equal(r.r.s, "add needs an integer");
  /* the handler sees nobody as the sender, a call, and runs off this thread */
  CALLF(h, a2, "who", &r, "");
  assert_int_equal(r.r.status, TR_OK);
  assert_true(r.addrs[0] == TR_NOADDR);
  assert_int_equal(r.ints[1], 1);
  assert_int_equal(r.ints[2], 0);
  /* several at once: answered in order, each once */
  sreply m[5];
  for (int i = 0; i < 5; i++) {
    memset(&m[i], 0, sizeof m[i]);
    assert_int_equal(tr_call_fmt(h, TR_NOADDR, a2, "add", on_sreply, &m[i], "i", 1), TR_OK);
  }
  /* a send (no answer) between them and the next call */
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a2, "add", "i", 10), TR_OK);
  tr_host_run(h);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(m[i].r.n, 1);
    assert_int_equal(m[i].off_main, 0);
    assert_int_equal(m[i].r.status, TR_OK);
    assert_int_equal(m[i].r.i, 43 + i);
  }
  CALLF(h, a2, "get", &r, "");
  assert_int_equal(r.r.i, 57);
  /* a call that nobody answers times out here, once */
  tr_buf none;
  tr_buf_init(&none);
  uint64_t t0 = uv_hrtime();
  call_run(h, a2, "hold", &none, 30, &r);
  tr_buf_free(&none);
  assert_int_equal(r.r.status, TR_ETIMEOUT);
  assert_true(ms_since(t0) >= 25);
  tr_host_run(h);
  assert_int_equal(r.r.n, 1);
  tr_host_free(h);
  assert_int_equal(r.r.n, 1);
}

static void actor_calls_other_scheduler_and_defers(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a1 = spawn_on(h, 1, 7), a2 = spawn_on(h, 2, 100);
  sreply r;
  /* a2 (scheduler 2) calls a1 (scheduler 1) as itself; the callback runs on
   * a2's thread and answers main through the deferred token */
  CALLF(h, a2, "relay", &r, "a s i", a1, "who", 2000);
  assert_int_equal(r.r.status, TR_OK);
  assert_true(r.addrs[0] == a2); /* a1 saw a2 as the sender */
  assert_int_equal(r.ints[1], 1); /* of a call */
  assert_int_equal(r.ints[2], 1); /* a1 ran on the test's thread */
  assert_int_equal(r.ints[3], 1); /* the callback ran on a2's thread */
  CALLF(h, a2, "relay", &r, "a s i", a1, "get", 2000);
  assert_int_equal(r.r.status, TR_OK);
  assert_int_equal(r.r.i, 7);
  assert_int_equal(r.ints[1], 1);
  /* and the other way round */
  CALLF(h, a1, "relay", &r, "a s i", a2, "who", 2000);
  assert_int_equal(r.r.status, TR_OK);
  assert_true(r.addrs[0] == a1);
  assert_int_equal(r.ints[2], 0); /* a2 did not run on the test's thread */
  assert_int_equal(r.ints[3], 1);
  /* failures cross back too: the callee's own error, no handler, a timeout */
  CALLF(h, a2, "relay", &r, "a s i", a1, "fail", 2000);
  assert_int_equal(r.r.status, TR_FAILED);
  assert_string_equal(r.r.reason, "failed");
  assert_int_equal(r.r.field, 1);
  CALLF(h, a2, "relay", &r, "a s i", a1, "nosuch", 2000);
  assert_int_equal(r.r.status, TR_FAILED);
  assert_string_equal(r.r.reason, "no_handler");
  assert_int_equal(r.r.field, 1);
  uint64_t t0 = uv_hrtime();
  CALLF(h, a2, "relay", &r, "a s i", a1, "hold", 30);
  assert_int_equal(r.r.status, TR_FAILED);
  assert_string_equal(r.r.reason, "timeout");
  assert_int_equal(r.r.field, 1); /* the timeout callback ran on a2's thread */
  assert_true(ms_since(t0) >= 25);
  /* a callee that dies while a2 waits: a2's callback hears dead, once */
  tr_addr v1 = spawn_on(h, 1, 0);
  atomic_store(&g_holds, 0);
  memset(&r, 0, sizeof r);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_fmt(&b, "a s i", v1, "hold", 2000);
  assert_int_equal(tr_call(h, TR_NOADDR, a2, "relay", &b, 2000, on_sreply, &r), TR_OK);
  tr_buf_free(&b);
  killer k;
  start_killer(&k, h, v1, &g_holds, NULL); /* once v1 holds a2's call */
  t0 = uv_hrtime();
  tr_host_run(h);
  assert_int_equal(k.seen, 1);
  assert_int_equal(k.kill_rc, TR_OK);
  assert_int_equal(r.r.n, 1);
  assert_int_equal(r.r.status, TR_FAILED);
  assert_string_equal(r.r.reason, "dead");
  assert_int_equal(r.r.field, 1);
  assert_true(ms_since(t0) < 1500); /* not the call's timeout */
  /* a call refused at once (a dead callee) never calls back */
  CALLF(h, a2, "relay", &r, "a s i", v1, "get", 2000);
  assert_int_equal(r.r.status, TR_EDEAD);
  assert_string_equal(r.r.s, "relay: dead");
  CALLF(h, a1, "relay", &r, "a s i", a1 + 1000, "get", 2000); /* never handed out */
  assert_int_equal(r.r.status, TR_EDEAD);
  assert_int_equal(atomic_load(&g_token_errors), 0);
  tr_host_free(h);
}

/* ---- dead addresses --------------------------------------------------------------------- */
static int g_room_calls;
static void room_cb(tr_host *h, tr_addr to, int status, void *ud) { g_room_calls++; }

static void dead_address_on_other_scheduler(void **state) {
  reset();
  g_room_calls = 0;
  tr_host *h = new_sched_host(2);
  tr_addr a1 = spawn_on(h, 1, 0), b2 = spawn_on(h, 2, 0), d2 = spawn_on(h, 2, 0),
          d1 = spawn_on(h, 1, 0);
  tr_host_run(h);
  assert_int_equal(tr_kill(h, d2), TR_OK);
  assert_int_equal(tr_kill(h, d1), TR_OK);
  tr_host_run(h); /* the kill of d2 is done on its scheduler */
  assert_false(tr_alive(h, d2));
  assert_false(tr_alive(h, d1));
  sreply r;
  memset(&r, 0, sizeof r);
  uint64_t ref = 0;
  assert_int_equal(tr_send(h, TR_NOADDR, d2, "get", NULL), TR_EDEAD);
  assert_int_equal(tr_call(h, TR_NOADDR, d2, "get", NULL, 1000, on_sreply, &r), TR_EDEAD);
  assert_int_equal(tr_stop(h, d2), TR_EDEAD);
  assert_int_equal(tr_kill(h, d2), TR_EDEAD);
  assert_int_equal(tr_send_after(h, d2, 1, 0, "tick", NULL, NULL), TR_EDEAD);
  assert_int_equal(tr_register(h, "ghost", d2), TR_EDEAD);
  assert_int_equal(tr_link(h, a1, d2), TR_EDEAD);
  assert_int_equal(tr_trap_exit(h, d2, 1), TR_EDEAD);
  assert_int_equal(tr_monitor(h, d2, a1, &ref), TR_EDEAD); /* a dead watcher */
  assert_int_equal(tr_notify_room(h, d2, room_cb, NULL), TR_EDEAD);
  /* addresses never handed out: on scheduler 2, past the last scheduler, on
   * another node */
  tr_addr never = ((tr_addr)1 << 48) | (TR_ADDR_SERIAL(b2) + 100000);
  assert_int_equal(tr_send(h, TR_NOADDR, never, "get", NULL), TR_EDEAD);
  assert_int_equal(tr_call(h, TR_NOADDR, never, "get", NULL, 1000, on_sreply, &r), TR_EDEAD);
  assert_false(tr_alive(h, never));
  tr_addr past = ((tr_addr)5 << 48) | TR_ADDR_SERIAL(b2);
  assert_int_equal(tr_send(h, TR_NOADDR, past, "get", NULL), TR_EDEAD);
  assert_false(tr_alive(h, past));
  tr_addr node = ((tr_addr)1 << 56) | (b2 & ~((tr_addr)0xFF << 56));
  assert_int_equal(tr_send(h, TR_NOADDR, node, "get", NULL), TR_EDEAD);
  /* from handlers: scheduler 1 to a dead actor of 2, 2 to 2, 2 to 1 */
  sreply s;
  CALLF(h, a1, "send_to", &s, "a", d2);
  assert_int_equal(s.ints[0], TR_EDEAD);
  CALLF(h, b2, "send_to", &s, "a", d2);
  assert_int_equal(s.ints[0], TR_EDEAD);
  CALLF(h, b2, "send_to", &s, "a", d1);
  assert_int_equal(s.ints[0], TR_EDEAD);
  CALLF(h, b2, "send_to", &s, "a", never);
  assert_int_equal(s.ints[0], TR_EDEAD);
  /* and to a live one across: fine */
  CALLF(h, b2, "send_to", &s, "a s", a1, "get");
  assert_int_equal(s.ints[0], TR_OK);
  tr_host_run(h);
  assert_int_equal(r.r.n, 0); /* refused calls never call back */
  assert_int_equal(g_room_calls, 0);
  tr_host_free(h);
  assert_int_equal(r.r.n, 0);
}

/* ---- a remote actor killed from main with calls queued ---------------------------------- */
static void queued_calls_fail_once_when_killed(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr w1 = spawn_on(h, 1, 0), a2 = spawn_on(h, 2, 0);
  uint64_t ref;
  assert_int_equal(tr_monitor(h, w1, a2, &ref), TR_OK);
  sreply held, blk, pre[3], post[3];
  memset(&held, 0, sizeof held);
  memset(&blk, 0, sizeof blk);
  assert_int_equal(tr_call(h, TR_NOADDR, a2, "hold", NULL, 2000, on_sreply, &held), TR_OK);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 1000);
  assert_int_equal(tr_call(h, TR_NOADDR, a2, "block", &b, 2000, on_sreply, &blk), TR_OK);
  tr_buf_free(&b);
  for (int i = 0; i < 3; i++) {
    memset(&pre[i], 0, sizeof pre[i]);
    assert_int_equal(tr_call(h, TR_NOADDR, a2, "get", NULL, 2000, on_sreply, &pre[i]), TR_OK);
  }
  /* once a2 runs "block" on its thread, a timer on the host's loop kills it
   * from outside any actor, calls it again (behind the kill, whatever the
   * timing), then lets the handler return */
  killer k;
  start_killer(&k, h, a2, &g_entered, post);
  uint64_t t0 = uv_hrtime();
  tr_host_run(h);
  assert_true(ms_since(t0) < 1900); /* answered by the death, not the timeouts */
  assert_int_equal(k.seen, 1);
  assert_int_equal(k.kill_rc, TR_OK);
  assert_false(tr_alive(h, a2));
  /* the owed call: dead, once */
  assert_int_equal(held.r.n, 1);
  assert_int_equal(held.off_main, 0);
  assert_int_equal(held.r.status, TR_EDEAD);
  /* the running call: answered once (done before the kill took effect, or not) */
  assert_int_equal(blk.r.n, 1);
  assert_true(blk.r.status == TR_OK || blk.r.status == TR_EDEAD);
  /* calls queued before the kill: once each; those still queued when it died
   * fail with dead (in order: answered ones first) */
  int dead_seen = 0;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(pre[i].r.n, 1);
    assert_int_equal(pre[i].off_main, 0);
    if (pre[i].r.status == TR_EDEAD) {
      dead_seen = 1;
      assert_non_null(strstr(pre[i].r.s, "killed"));
    } else {
      assert_int_equal(pre[i].r.status, TR_OK);
      assert_false(dead_seen);
    }
  }
  /* calls made after tr_kill returned: refused at once, or dead once */
  for (int i = 0; i < 3; i++) {
    if (k.post_rc[i] == TR_EDEAD) {
      assert_int_equal(post[i].r.n, 0);
    } else {
      assert_int_equal(k.post_rc[i], TR_OK);
      assert_int_equal(post[i].r.n, 1);
      assert_int_equal(post[i].off_main, 0);
      assert_int_equal(post[i].r.status, TR_EDEAD);
    }
  }
  /* the watcher on scheduler 1 heard why, once */
  notice d;
  assert_true(find_notice(g_down, &g_ndown, w1, a2, 0, &d));
  assert_string_equal(d.reason, "killed");
  assert_int_equal(d.ref, (int64_t)ref);
  assert_int_equal(d.on_main, 1);
  /* nothing more comes */
  tr_host_run(h);
  tr_host_free(h);
  assert_int_equal(held.r.n, 1);
  assert_int_equal(blk.r.n, 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(pre[i].r.n, 1);
    assert_int_equal(post[i].r.n, k.post_rc[i] == TR_OK);
  }
  assert_int_equal(count_notices(g_down, &g_ndown, w1, a2), 1);
}

/* ---- stop of a remote actor ------------------------------------------------------------- */
static void stop_runs_hooks_on_own_thread(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a1 = spawn_on(h, 1, 0), a2 = spawn_on(h, 2, 0);
  place p2 = where(h, a2);
  assert_false(same_thread(p2.thread, g_main));
  assert_int_equal(tr_stop(h, a2), TR_OK);
  assert_int_equal(tr_stop(h, a2), TR_OK); /* a second request is harmless */
  tr_host_run(h);
  assert_false(tr_alive(h, a2));
  assert_int_equal(atomic_load(&g_stopping_n), 1);
  assert_int_equal(atomic_load(&g_stopped_n), 1);
  assert_true(atomic_load(&g_stopping_at) < atomic_load(&g_stopped_at));
  assert_true(same_thread(g_stopping_thread, p2.thread));
  assert_true(same_thread(g_stopped_thread, p2.thread));
  assert_int_equal(tr_stop(h, a2), TR_EDEAD);
  /* asked by a handler on scheduler 1 */
  tr_addr b2 = spawn_on(h, 2, 0);
  sreply r;
  CALLF(h, a1, "stop", &r, "a", b2);
  assert_int_equal(r.ints[0], TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, b2));
  assert_int_equal(atomic_load(&g_stopped_n), 2);
  assert_true(same_thread(g_stopped_thread, p2.thread));
  /* and the other way round: a handler on 2 stops an actor of 1, whose hooks
   * run on the test's thread */
  tr_addr c1 = spawn_on(h, 1, 0), s2 = spawn_on(h, 2, 0);
  CALLF(h, s2, "stop", &r, "a", c1);
  assert_int_equal(r.ints[0], TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, c1));
  assert_int_equal(atomic_load(&g_stopped_n), 3);
  assert_true(same_thread(g_stopped_thread, g_main));
  /* a veto holds across schedulers */
  tr_addr v2 = spawn_on(h, 2, 3);
  atomic_store(&g_pveto, 1);
  assert_int_equal(tr_stop(h, v2), TR_OK);
  tr_host_run(h);
  assert_true(tr_alive(h, v2));
  assert_int_equal(atomic_load(&g_pveto), 0);
  CALLF(h, v2, "get", &r, "");
  assert_int_equal(r.r.status, TR_OK);
  assert_int_equal(r.r.i, 3);
  /* tr_shutdown reports the outcome here, on the test's thread */
  sreply sd;
  memset(&sd, 0, sizeof sd);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, v2, 1000, on_sreply, &sd), TR_OK);
  tr_host_run(h);
  assert_int_equal(sd.r.n, 1);
  assert_int_equal(sd.off_main, 0);
  assert_int_equal(sd.r.status, TR_OK);
  assert_string_equal(sd.r.s, "stopped");
  assert_false(tr_alive(h, v2));
  tr_addr x2 = spawn_on(h, 2, 0);
  atomic_store(&g_pveto, 1);
  memset(&sd, 0, sizeof sd);
  assert_int_equal(tr_shutdown(h, TR_NOADDR, x2, 1000, on_sreply, &sd), TR_OK);
  tr_host_run(h);
  assert_int_equal(sd.r.n, 1);
  assert_int_equal(sd.r.status, TR_FAILED);
  assert_string_equal(sd.r.s, "vetoed");
  assert_true(tr_alive(h, x2));
  assert_int_equal(tr_shutdown(h, TR_NOADDR, a2, 1000, on_sreply, &sd), TR_EDEAD);
  /* calls queued with a stop: each answered exactly once */
  tr_addr q2 = spawn_on(h, 2, 0);
  sreply q[5];
  for (int i = 0; i < 5; i++) {
    memset(&q[i], 0, sizeof q[i]);
    assert_int_equal(tr_call(h, TR_NOADDR, q2, "get", NULL, 2000, on_sreply, &q[i]), TR_OK);
  }
  assert_int_equal(tr_stop(h, q2), TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, q2));
  for (int i = 0; i < 5; i++) {
    assert_int_equal(q[i].r.n, 1);
    assert_true(q[i].r.status == TR_OK || q[i].r.status == TR_EDEAD);
  }
  tr_host_free(h);
  for (int i = 0; i < 5; i++) assert_int_equal(q[i].r.n, 1);
}

/* ---- monitors --------------------------------------------------------------------------- */
static void monitors_across_schedulers(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr w1 = spawn_on(h, 1, 0), w2 = spawn_on(h, 2, 0);
  notice d;
  sreply r;
  /* a watcher on 1, its target on 2: killed */
  tr_addr t2 = spawn_on(h, 2, 0);
  uint64_t r1 = 0;
  assert_int_equal(tr_monitor(h, w1, t2, &r1), TR_OK);
  assert_int_equal(tr_kill(h, t2), TR_OK);
  tr_host_run(h);
  assert_true(find_notice(g_down, &g_ndown, w1, t2, 0, &d));
  assert_string_equal(d.reason, "killed");
  assert_int_equal(d.ref, (int64_t)r1);
  assert_int_equal(d.on_main, 1);
  /* a watcher on 2 (watching from its own handler), its target on 1: stopped */
  tr_addr t1 = spawn_on(h, 1, 0);
  CALLF(h, w2, "watch", &r, "a", t1);
  assert_int_equal(r.ints[0], TR_OK);
  int64_t r2 = r.ints[1];
  assert_int_equal(tr_stop(h, t1), TR_OK);
  tr_host_run(h);
  assert_true(find_notice(g_down, &g_ndown, w2, t1, 0, &d));
  assert_string_equal(d.reason, "stopped");
  assert_int_equal(d.ref, r2);
  assert_int_equal(d.on_main, 0);
  /* normal: it stopped itself */
  tr_addr n2 = spawn_on(h, 2, 0);
  uint64_t r3 = 0;
  assert_int_equal(tr_monitor(h, w1, n2, &r3), TR_OK);
  CALLF(h, n2, "stop_self", &r, "");
  assert_true(find_notice(g_down, &g_ndown, w1, n2, 0, &d));
  assert_string_equal(d.reason, "normal");
  assert_int_equal(d.ref, (int64_t)r3);
  /* noproc: already dead when watched, both ways */
  uint64_t r4 = 0;
  assert_int_equal(tr_monitor(h, w1, t2, &r4), TR_OK);
  CALLF(h, w2, "watch", &r, "a", t1);
  assert_int_equal(r.ints[0], TR_OK);
  int64_t r5 = r.ints[1];
  tr_host_run(h);
  assert_true(find_notice(g_down, &g_ndown, w1, t2, 1, &d));
  assert_string_equal(d.reason, "noproc");
  assert_int_equal(d.ref, (int64_t)r4);
  assert_true(find_notice(g_down, &g_ndown, w2, t1, 1, &d));
  assert_string_equal(d.reason, "noproc");
  assert_int_equal(d.ref, r5);
  /* distinct refs */
  int64_t refs[] = {(int64_t)r1, r2, (int64_t)r3, (int64_t)r4, r5};
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++) assert_true(refs[i] != refs[j]);
  /* demonitor from main, of monitors whose watcher is on either scheduler */
  tr_addr u2 = spawn_on(h, 2, 0), u1 = spawn_on(h, 1, 0);
  uint64_t r6 = 0;
  assert_int_equal(tr_monitor(h, w1, u2, &r6), TR_OK);
  CALLF(h, w2, "watch", &r, "a", u1);
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(tr_demonitor(h, r6), TR_OK);
  assert_int_equal(tr_demonitor(h, r6), TR_ENOTFOUND);
  assert_int_equal(tr_demonitor(h, (uint64_t)r.ints[1]), TR_OK);
  assert_int_equal(tr_kill(h, u2), TR_OK);
  assert_int_equal(tr_kill(h, u1), TR_OK);
  tr_host_run(h);
  assert_int_equal(count_notices(g_down, &g_ndown, w1, u2), 0);
  assert_int_equal(count_notices(g_down, &g_ndown, w2, u1), 0);
  /* a watcher that dies first takes its monitor along */
  tr_addr k2 = spawn_on(h, 2, 0), k1 = spawn_on(h, 1, 0);
  uint64_t r7 = 0;
  assert_int_equal(tr_monitor(h, k2, k1, &r7), TR_OK);
  assert_int_equal(tr_kill(h, k2), TR_OK);
  tr_host_run(h);
  assert_int_equal(tr_kill(h, k1), TR_OK);
  tr_host_run(h);
  assert_int_equal(count_notices(g_down, &g_ndown, k2, k1), 0);
  /* exactly the notices above, no more */
  assert_int_equal(total_notices(&g_ndown), 5);
  tr_host_free(h);
}

/* ---- links ------------------------------------------------------------------------------ */
static void links_across_schedulers(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr w1 = spawn_on(h, 1, 0), w2 = spawn_on(h, 2, 0);
  notice d;
  sreply r;
  /* a1 linked to b2; b2 killed: a1 dies with linked_exit */
  tr_addr a1 = spawn_on(h, 1, 0), b2 = spawn_on(h, 2, 0);
  assert_int_equal(tr_link(h, a1, b2), TR_OK);
  assert_int_equal(tr_monitor(h, w2, a1, NULL), TR_OK);
  assert_int_equal(tr_kill(h, b2), TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, a1));
  assert_true(find_notice(g_down, &g_ndown, w2, a1, 0, &d));
  assert_string_equal(d.reason, "linked_exit");
  assert_non_null(strstr(d.message, "killed"));
  /* a2 linked (from its own handler) to b1; b1 killed: a2 dies */
  tr_addr a2 = spawn_on(h, 2, 0), b1 = spawn_on(h, 1, 0);
  CALLF(h, a2, "link_to", &r, "a", b1);
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(tr_monitor(h, w1, a2, NULL), TR_OK);
  assert_int_equal(tr_kill(h, b1), TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, a2));
  assert_true(find_notice(g_down, &g_ndown, w1, a2, 0, &d));
  assert_string_equal(d.reason, "linked_exit");
  /* a normal stop does not propagate; nor does a death after unlink */
  tr_addr c1 = spawn_on(h, 1, 0), c2 = spawn_on(h, 2, 0), e2 = spawn_on(h, 2, 0);
  assert_int_equal(tr_link(h, c1, c2), TR_OK);
  assert_int_equal(tr_link(h, c1, e2), TR_OK);
  assert_int_equal(tr_unlink(h, e2, c1), TR_OK);
  assert_int_equal(tr_stop(h, c2), TR_OK);
  assert_int_equal(tr_kill(h, e2), TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, c2));
  assert_false(tr_alive(h, e2));
  assert_true(tr_alive(h, c1));
  assert_int_equal(tr_link(h, c1, e2), TR_EDEAD);
  /* trapping exits on 2: on_exit there, and it lives */
  tr_addr x1 = spawn_on(h, 1, 0);
  assert_int_equal(tr_trap_exit(h, w2, 1), TR_OK);
  assert_int_equal(tr_link(h, w2, x1), TR_OK);
  assert_int_equal(tr_kill(h, x1), TR_OK);
  tr_host_run(h);
  assert_true(tr_alive(h, w2));
  assert_true(find_notice(g_exit, &g_nexit, w2, x1, 0, &d));
  assert_string_equal(d.reason, "killed");
  assert_int_equal(d.on_main, 0);
  /* trapping on 1 (set from its handler), the linked actor on 2 */
  tr_addr y2 = spawn_on(h, 2, 0);
  CALLF(h, w1, "trap", &r, "b", 1);
  assert_int_equal(r.ints[0], TR_OK);
  CALLF(h, w1, "link_to", &r, "a", y2);
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(tr_kill(h, y2), TR_OK);
  tr_host_run(h);
  assert_true(tr_alive(h, w1));
  assert_true(find_notice(g_exit, &g_nexit, w1, y2, 0, &d));
  assert_string_equal(d.reason, "killed");
  assert_int_equal(d.on_main, 1);
  /* the link spawn option across schedulers */
  tr_addr parent = spawn_on(h, 1, 0), child = TR_NOADDR;
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = 2;
  o.link = parent;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &child), TR_OK);
  assert_int_equal(TR_ADDR_SCHED(child), 1);
  assert_int_equal(tr_kill(h, child), TR_OK);
  tr_host_run(h);
  assert_false(tr_alive(h, parent));
  child = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &child), TR_EDEAD); /* to a dead actor */
  assert_true(child == TR_NOADDR);
  /* a chain that alternates schedulers dies from one end */
  enum { CHAIN = 200 };
  tr_addr chain[CHAIN];
  for (int i = 0; i < CHAIN; i++) {
    chain[i] = spawn_on(h, 1 + (unsigned)(i % 2), 0);
    if (i) assert_int_equal(tr_link(h, chain[i - 1], chain[i]), TR_OK);
  }
  tr_host_run(h);
  assert_int_equal(tr_kill(h, chain[0]), TR_OK);
  tr_host_run(h);
  for (int i = 0; i < CHAIN; i++) assert_false(tr_alive(h, chain[i]));
  assert_int_equal(total_notices(&g_nexit), 2);
  tr_host_free(h);
}

/* ---- names ------------------------------------------------------------------------------ */
static void names_across_schedulers(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a1 = spawn_on(h, 1, 0), a2 = spawn_on(h, 2, 0), out = TR_NOADDR;
  sreply r;
  CALLF(h, a2, "reg", &r, "s", "svc"); /* registered on scheduler 2's thread */
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(tr_whereis(h, "svc", &out), TR_OK);
  assert_true(out == a2);
  CALLF(h, out, "add", &r, "i", 3);
  assert_int_equal(r.r.i, 3);
  CALLF(h, a1, "reg", &r, "s", "svc"); /* taken, from either side */
  assert_int_equal(r.ints[0], TR_EEXISTS);
  assert_int_equal(tr_register(h, "svc", a1), TR_EEXISTS);
  /* registered here, looked up on scheduler 2 */
  assert_int_equal(tr_register(h, "one", a1), TR_OK);
  CALLF(h, a2, "whereis", &r, "s", "one");
  assert_int_equal(r.ints[0], TR_OK);
  assert_true(r.addrs[1] == a1);
  CALLF(h, a2, "whereis", &r, "s", "nobody");
  assert_int_equal(r.ints[0], TR_ENOTFOUND);
  /* the name option with a placement */
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = 2;
  o.name = "named2";
  tr_addr n2 = TR_NOADDR, again = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &n2), TR_OK);
  assert_int_equal(TR_ADDR_SCHED(n2), 1);
  assert_int_equal(tr_whereis(h, "named2", &out), TR_OK);
  assert_true(out == n2);
  o.scheduler = 1;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &again), TR_EEXISTS);
  assert_true(again == TR_NOADDR);
  o.scheduler = 2;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &again), TR_EEXISTS);
  assert_true(again == TR_NOADDR);
  assert_int_equal(tr_unregister(h, "named2"), TR_OK);
  assert_int_equal(tr_whereis(h, "named2", &out), TR_ENOTFOUND);
  /* names go with their actor, whichever scheduler it died on */
  assert_int_equal(tr_kill(h, a2), TR_OK);
  tr_host_run(h);
  assert_int_equal(tr_whereis(h, "svc", &out), TR_ENOTFOUND);
  assert_int_equal(tr_unregister(h, "svc"), TR_ENOTFOUND);
  assert_int_equal(tr_register(h, "late", a2), TR_EDEAD);
  CALLF(h, n2, "reg", &r, "s", "svc"); /* free again */
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(tr_whereis(h, "svc", &out), TR_OK);
  assert_true(out == n2);
  tr_host_free(h);
}

/* ---- timers ----------------------------------------------------------------------------- */
static void timers_on_other_scheduler(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a2 = spawn_on(h, 2, 0);
  place p2 = where(h, a2);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, "a");
  tr_timer_id once = 0, cancelled = 0;
  uint64_t t0 = uv_hrtime();
  assert_int_equal(tr_send_after(h, a2, 30, 0, "tick", &b, &once), TR_OK);
  tr_buf_reset(&b);
  tr_pack_str(&b, "never");
  assert_int_equal(tr_send_after(h, a2, 10, 10, "tick", &b, &cancelled), TR_OK);
  tr_buf_free(&b);
  assert_true(once != 0 && cancelled != 0 && once != cancelled);
  assert_int_equal(tr_cancel_timer(h, cancelled), TR_OK);
  tr_host_run(h); /* waits for the timer of scheduler 2 */
  assert_true(ms_since(t0) >= 25);
  assert_int_equal(atomic_load(&g_ticks), 1);
  assert_string_equal(g_tick_label, "a");
  assert_true(same_thread(g_tick_thread, p2.thread));
  /* a timer of another scheduler that fired or was cancelled: cancelling it
   * again does nothing (whether that says TR_ENOTFOUND or 0 is not specified
   * across schedulers); an id of no scheduler is not found */
  int rc = tr_cancel_timer(h, once);
  assert_true(rc == TR_ENOTFOUND || rc == TR_OK);
  rc = tr_cancel_timer(h, cancelled);
  assert_true(rc == TR_ENOTFOUND || rc == TR_OK);
  assert_int_equal(tr_cancel_timer(h, ((uint64_t)9 << 56) | 1), TR_ENOTFOUND);
  assert_int_equal(tr_cancel_timer(h, 987654321), TR_ENOTFOUND);
  assert_int_equal(tr_cancel_timer(NULL, once), TR_EINVAL);
  /* a timer of scheduler 1, on an actor there: as with one scheduler */
  tr_addr a1 = spawn_on(h, 1, 0);
  tr_timer_id local = 0;
  assert_int_equal(tr_send_after(h, a1, 10000, 0, "tick", NULL, &local), TR_OK);
  assert_int_equal(tr_cancel_timer(h, local), TR_OK);
  assert_int_equal(tr_cancel_timer(h, local), TR_ENOTFOUND);
  tr_host_run(h); /* nothing left: does not wait 10 s */
  assert_int_equal(atomic_load(&g_ticks), 1);
  /* an interval the actor sets and cancels itself */
  sreply r;
  CALLF(h, a2, "every", &r, "i i", 5, 3); /* runs until the cancel */
  assert_int_equal(r.ints[0], TR_OK);
  assert_int_equal(atomic_load(&g_ticks), 4);
  assert_int_equal(g_cancel_rc, TR_OK);
  /* a timer only scheduler 2 knows about keeps tr_host_run waiting */
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a2, "after", "i", 40), TR_OK);
  t0 = uv_hrtime();
  tr_host_run(h);
  assert_true(ms_since(t0) >= 35);
  assert_int_equal(atomic_load(&g_ticks), 5);
  /* timers die with their actor: tr_host_run does not wait 30 s */
  tr_timer_id longer = 0;
  assert_int_equal(tr_send_after(h, a2, 30000, 0, "tick", NULL, &longer), TR_OK);
  assert_int_equal(tr_send_after(h, a2, 5, 5, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_kill(h, a2), TR_OK);
  t0 = uv_hrtime();
  tr_host_run(h);
  assert_true(ms_since(t0) < 1000);
  rc = tr_cancel_timer(h, longer);
  assert_true(rc == TR_ENOTFOUND || rc == TR_OK);
  assert_int_equal(tr_send_after(h, a2, 1, 0, "tick", NULL, NULL), TR_EDEAD);
  assert_int_equal(tr_send_at(h, a2, 0, "tick", NULL, NULL), TR_EDEAD);
  int ticks = atomic_load(&g_ticks);
  assert_true(ticks >= 5);
  tr_host_run(h);
  assert_int_equal(atomic_load(&g_ticks), ticks);
  tr_host_free(h);
}

/* ---- many calls ------------------------------------------------------------------------- */
typedef struct {
  int n, status, off_main;
  int64_t v;
} one_call;

static void on_one(tr_host *h, int status, const tr_msg *m, void *ud) {
  one_call *c = ud;
  c->n++;
  c->status = status;
  if (!on_main()) c->off_main++;
  c->v = -1;
  tr_msg_int(m, 0, &c->v);
}

static void many_calls_answered_once(void **state) {
  enum { N = 10000, FAN = 2000 };
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a2 = spawn_on(h, 2, 0), a1 = spawn_on(h, 1, 0), b2 = spawn_on(h, 2, 0);
  one_call *calls = calloc(N, sizeof *calls);
  char *seen = calloc(N + 1, 1);
  assert_non_null(calls);
  assert_non_null(seen);
  tr_buf one;
  tr_buf_init(&one);
  tr_pack_int(&one, 1);
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < N; i++)
    assert_int_equal(tr_call(h, TR_NOADDR, a2, "add", &one, TR_TIMEOUT_DEFAULT, on_one, &calls[i]),
                     TR_OK);
  tr_buf_free(&one);
  tr_host_run(h);
  int off = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(calls[i].n, 1);
    assert_int_equal(calls[i].status, TR_OK);
    off += calls[i].off_main;
    assert_true(calls[i].v >= 1 && calls[i].v <= N);
    assert_false(seen[calls[i].v]);
    seen[calls[i].v] = 1;
    assert_int_equal(calls[i].v, i + 1); /* one sender, one receiver: in order */
  }
  assert_int_equal(off, 0);
  sreply r;
  CALLF(h, a2, "get", &r, "");
  assert_int_equal(r.r.i, N);
  /* actors calling across in both directions at once */
  sreply f2, f1;
  memset(&f2, 0, sizeof f2);
  memset(&f1, 0, sizeof f1);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a2, "fan", on_sreply, &f2, "a i", a1, FAN), TR_OK);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, a1, "fan", on_sreply, &f1, "a i", b2, FAN), TR_OK);
  tr_host_run(h);
  assert_int_equal(f2.r.n, 1);
  assert_int_equal(f2.r.status, TR_OK);
  assert_int_equal(f2.ints[0], FAN); /* ok */
  assert_int_equal(f2.ints[1], 0);   /* failed */
  assert_int_equal(f2.ints[2], 0);   /* callbacks off the caller's thread */
  assert_int_equal(f1.r.n, 1);
  assert_int_equal(f1.r.status, TR_OK);
  assert_int_equal(f1.ints[0], FAN);
  assert_int_equal(f1.ints[1], 0);
  assert_int_equal(f1.ints[2], 0);
  CALLF(h, a1, "get", &r, "");
  assert_int_equal(r.r.i, FAN);
  CALLF(h, b2, "get", &r, "");
  assert_int_equal(r.r.i, FAN);
  assert_int_equal(atomic_load(&g_token_errors), 0);
  assert_true(ms_since(t0) < 5000); /* well under the default call timeout */
  tr_host_free(h);
  for (int i = 0; i < N; i++) assert_int_equal(calls[i].n, 1);
  free(calls);
  free(seen);
}

/* ---- tr_host_run and the other schedulers ----------------------------------------------- */
static void run_waits_for_other_schedulers(void **state) {
  enum { STEPS = 50000 };
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a2 = spawn_on(h, 2, 0), a1 = spawn_on(h, 1, 0), b2 = spawn_on(h, 2, 0);
  /* a long chain of self-sends on 2, then a report to 1 */
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, a2, "chain", "I a", (int64_t)STEPS, a1), TR_OK);
  tr_host_run(h);
  assert_int_equal(g_chain_steps, STEPS);
  assert_int_equal(g_reported, STEPS);
  /* only scheduler 2 has work: tr_host_run still waits for all of it */
  g_chain_steps = 0;
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, b2, "chain", "I a", (int64_t)STEPS, TR_NOADDR), TR_OK);
  tr_host_run(h);
  assert_int_equal(g_chain_steps, STEPS);
  /* tr_host_exit from an actor on 1 ends the run with its code while 2 is busy */
  tr_addr l2 = spawn_on(h, 2, 0);
  assert_int_equal(tr_send(h, TR_NOADDR, l2, "loop", NULL), TR_OK);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 7);
  assert_int_equal(tr_send_after(h, a1, 20, 0, "exit", &b, NULL), TR_OK);
  tr_buf_free(&b);
  assert_int_equal(tr_host_run(h), 7);
  assert_true(atomic_load(&g_loops) > 0);
  assert_int_equal(tr_kill(h, l2), TR_OK);
  tr_host_run(h); /* then quiescent again */
  assert_false(tr_alive(h, l2));
  long loops = atomic_load(&g_loops);
  uv_sleep(20);
  assert_int_equal(atomic_load(&g_loops), loops); /* it did stop */
  tr_host_free(h);
}

/* ---- tr_host_free while other schedulers are busy --------------------------------------- */
static void free_while_busy(void **state) {
  reset();
  tr_host *h = new_sched_host(3);
  tr_addr l2 = spawn_on(h, 2, 0), t2 = spawn_on(h, 2, 0), o2 = spawn_on(h, 2, 0),
          b3 = spawn_on(h, 3, 0), e1 = spawn_on(h, 1, 0), k2 = spawn_on(h, 2, 0);
  assert_int_equal(tr_send(h, TR_NOADDR, l2, "loop", NULL), TR_OK);
  assert_int_equal(tr_send_after(h, t2, 30000, 0, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_send_after(h, t2, 1, 1, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_link(h, l2, e1), TR_OK);
  assert_int_equal(tr_monitor(h, e1, t2, NULL), TR_OK);
  assert_int_equal(tr_register(h, "busy", l2), TR_OK);
  sreply held, blk, after[4];
  memset(&held, 0, sizeof held);
  memset(&blk, 0, sizeof blk);
  assert_int_equal(tr_call(h, TR_NOADDR, o2, "hold", NULL, TR_TIMEOUT_INFINITE, on_sreply, &held),
                   TR_OK);
  /* b3 runs a 150 ms handler on its own thread while the host is freed */
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 150);
  assert_int_equal(tr_call(h, TR_NOADDR, b3, "block", &b, TR_TIMEOUT_INFINITE, on_sreply, &blk),
                   TR_OK);
  tr_buf_free(&b);
  for (int i = 0; i < 4; i++) {
    memset(&after[i], 0, sizeof after[i]);
    assert_int_equal(
        tr_call(h, TR_NOADDR, b3, "get", NULL, TR_TIMEOUT_INFINITE, on_sreply, &after[i]), TR_OK);
  }
  /* k2 (on the busy scheduler 2) has 500 calls in flight to e1 on 1 */
  sreply fan;
  memset(&fan, 0, sizeof fan);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, k2, "fan", on_sreply, &fan, "a i", e1, 500), TR_OK);
  tr_buf_init(&b);
  tr_pack_int(&b, 9);
  assert_int_equal(tr_send_after(h, e1, 30, 0, "exit", &b, NULL), TR_OK);
  tr_buf_free(&b);
  assert_int_equal(tr_host_run(h), 9);
  assert_true(atomic_load(&g_loops) > 0);
  tr_host_free(h); /* kills everything; answers every call still owed, once */
  assert_int_equal(held.r.n, 1);
  assert_int_equal(held.r.status, TR_EDEAD);
  assert_int_equal(held.off_main, 0);
  assert_int_equal(blk.r.n, 1);
  assert_true(blk.r.status == TR_OK || blk.r.status == TR_EDEAD);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(after[i].r.n, 1);
    assert_true(after[i].r.status == TR_OK || after[i].r.status == TR_EDEAD);
  }
  assert_int_equal(fan.r.n, 1);
  assert_true(fan.r.status == TR_OK || fan.r.status == TR_EDEAD);
}

static void free_without_running(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr a2 = spawn_on(h, 2, 0), b1 = spawn_on(h, 1, 0), c2 = spawn_on(h, 2, 0);
  assert_int_equal(tr_send_after(h, a2, 30000, 0, "tick", NULL, NULL), TR_OK);
  assert_int_equal(tr_send_after(h, a2, 1, 1, "tick", NULL, NULL), TR_OK);
  for (int i = 0; i < 10; i++)
    assert_int_equal(tr_send_fmt(h, TR_NOADDR, a2, "add", "i", i), TR_OK);
  assert_int_equal(tr_send(h, TR_NOADDR, c2, "loop", NULL), TR_OK);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, c2, "chain", "I a", (int64_t)100000, b1), TR_OK);
  assert_int_equal(tr_link(h, a2, b1), TR_OK);
  assert_int_equal(tr_monitor(h, b1, a2, NULL), TR_OK);
  assert_int_equal(tr_register(h, "doomed", a2), TR_OK);
  sreply held, got;
  memset(&held, 0, sizeof held);
  memset(&got, 0, sizeof got);
  assert_int_equal(tr_call(h, TR_NOADDR, a2, "hold", NULL, TR_TIMEOUT_INFINITE, on_sreply, &held),
                   TR_OK);
  assert_int_equal(tr_call(h, TR_NOADDR, a2, "get", NULL, 5000, on_sreply, &got), TR_OK);
  uv_sleep(5); /* scheduler 2 may be working by now */
  tr_host_free(h);
  assert_int_equal(held.r.n, 1);
  assert_int_equal(held.r.status, TR_EDEAD);
  assert_int_equal(got.r.n, 1);
  assert_true(got.r.status == TR_OK || got.r.status == TR_EDEAD);
  assert_int_equal(held.off_main + got.off_main, 0);
}

/* ---- a Lua actor on another scheduler --------------------------------------------------- */
static const char *LUA_PROBE =
    "return {\n"
    "  ping = function() return 'pong' end,\n"
    "  add_via = function(self, t, n) return t:call('add', n) end,\n"
    "  try_add = function(self, t, n)\n"
    "    local ok, r = pcall(function() return t:call('add', n) end)\n"
    "    if ok then return r end\n"
    "    return 'error: ' .. (type(r) == 'table' and tostring(r.code) or tostring(r))\n"
    "  end,\n"
    "}\n";

static void lua_actor_on_other_scheduler(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = 2;
  tr_addr l2 = TR_NOADDR, l1 = TR_NOADDR;
  assert_int_equal(tr_spawn_lua_string(h, LUA_PROBE, "=probe", NULL, &o, &l2), TR_OK);
  assert_int_equal(TR_ADDR_SCHED(l2), 1);
  o.scheduler = 1;
  assert_int_equal(tr_spawn_lua_string(h, LUA_PROBE, "=probe", NULL, &o, &l1), TR_OK);
  assert_int_equal(TR_ADDR_SCHED(l1), 0);
  sreply r;
  CALLF(h, l2, "ping", &r, "");
  assert_int_equal(r.r.status, TR_OK);
  assert_string_equal(r.r.s, "pong");
  /* Lua on 2 calls C on 1, Lua on 1 calls C on 2 (a blocking call in Lua) */
  tr_addr c1 = spawn_on(h, 1, 10), c2 = spawn_on(h, 2, 100);
  CALLF(h, l2, "add_via", &r, "a i", c1, 5);
  assert_int_equal(r.r.status, TR_OK);
  assert_int_equal(r.r.i, 15);
  CALLF(h, l1, "add_via", &r, "a i", c2, 5);
  assert_int_equal(r.r.status, TR_OK);
  assert_int_equal(r.r.i, 105);
  /* a dead C actor on the other scheduler: the error comes back as "dead" */
  assert_int_equal(tr_kill(h, c1), TR_OK);
  tr_host_run(h);
  CALLF(h, l2, "try_add", &r, "a i", c1, 5);
  assert_int_equal(r.r.status, TR_OK);
  assert_string_equal(r.r.s, "error: dead");
  assert_true(tr_alive(h, l2));
  /* uncaught, it crashes the Lua actor (as with one scheduler): the caller
   * hears crashed */
  CALLF(h, l2, "add_via", &r, "a i", c1, 5);
  assert_int_equal(r.r.status, TR_ECRASHED);
  tr_host_run(h);
  assert_false(tr_alive(h, l2));
  tr_host_free(h);
}


/* ---- full mailboxes across schedulers ------------------------------------------------------ */
/* A Probe on scheduler k with a public lane of `cap`. */
static tr_addr spawn_cap(tr_host *h, unsigned k, uint32_t cap) {
  tr_spawn_options o;
  memset(&o, 0, sizeof o);
  o.scheduler = k;
  o.mailbox_capacity = cap;
  tr_addr a = TR_NOADDR;
  assert_int_equal(tr_spawn(h, &probe, NULL, &o, &a), TR_OK);
  assert_int_equal(TR_ADDR_SCHED(a), k - 1);
  return a;
}

/* Starts "block" on `a` (another scheduler's) and waits until it runs. */
static void block_actor(tr_host *h, tr_addr a) {
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 20000);
  assert_int_equal(tr_send(h, TR_NOADDR, a, "block", &b), TR_OK);
  tr_buf_free(&b);
  uint64_t t0 = uv_hrtime();
  while (!atomic_load(&g_entered) && ms_since(t0) < 10000) uv_sleep(1);
  assert_true(atomic_load(&g_entered));
}

/* Sends a add(1) until TR_EFULL (at most max): the number that went through. */
static int fill_from_main(tr_host *h, tr_addr a, int max) {
  int n = 0, rc = 0;
  while (n < max && (rc = tr_send_fmt(h, TR_NOADDR, a, "add", "i", 1)) == TR_OK) n++;
  assert_int_equal(rc, TR_EFULL);
  return n;
}

typedef struct {
  int n, status, send_rc, off_main;
  tr_addr to;
} xroom;

static void on_xroom(tr_host *h, tr_addr to, int status, void *ud) {
  xroom *r = ud;
  r->n++;
  r->status = status;
  r->to = to;
  if (!on_main()) r->off_main++;
  if (status == 0) r->send_rc = tr_send_fmt(h, TR_NOADDR, to, "add", "i", 1);
}

/* Runs the test's loop (scheduler 1) for about ms without blocking. */
static void spin_loop(tr_host *h, unsigned ms) {
  uint64_t t0 = uv_hrtime();
  while (ms_since(t0) < ms) {
    uv_run(tr_host_loop(h), UV_RUN_NOWAIT);
    uv_sleep(1);
  }
}

/* C on scheduler 1 sending to a full mailbox on scheduler 2: TR_EFULL for
 * sends and calls, nothing queued past the bound (the messages on their way
 * count); tr_notify_room calls back once, on this thread, only once the
 * actor has taken a message. */
static void full_mailbox_across_pushes_back_on_c(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr b2 = spawn_cap(h, 2, 4);
  block_actor(h, b2);
  /* the actor is busy: all four are still on their way */
  assert_int_equal(fill_from_main(h, b2, 100), 4);
  for (int i = 0; i < 10; i++)
    assert_int_equal(tr_send_fmt(h, TR_NOADDR, b2, "add", "i", 1), TR_EFULL);
  sreply r;
  memset(&r, 0, sizeof r);
  assert_int_equal(tr_call(h, TR_NOADDR, b2, "get", NULL, 2000, on_sreply, &r), TR_EFULL);
  assert_int_equal(tr_call_fmt(h, TR_NOADDR, b2, "add", on_sreply, &r, "i", 1), TR_EFULL);
  /* the private lane is never refused */
  assert_int_equal(tr_send_after(h, b2, 0, 0, "tick", NULL, NULL), TR_OK);
  xroom room;
  memset(&room, 0, sizeof room);
  room.send_rc = 1;
  assert_int_equal(tr_notify_room(h, b2, on_xroom, &room), TR_OK);
  spin_loop(h, 50); /* still full: no callback */
  assert_int_equal(room.n, 0);
  atomic_store(&g_gate, 1);
  tr_host_run(h);
  assert_int_equal(room.n, 1);
  assert_int_equal(room.status, TR_OK);
  assert_true(room.to == b2);
  assert_int_equal(room.off_main, 0);
  assert_int_equal(room.send_rc, TR_OK);
  assert_int_equal(r.r.n, 0); /* refused calls never call back */
  CALLF(h, b2, "get", &r, "");
  assert_int_equal(r.r.status, TR_OK);
  /* block counts one, then the four, then the one sent from the callback */
  assert_int_equal(r.r.i, 6);
  /* room already: a callback all the same, later (from the owner) */
  memset(&room, 0, sizeof room);
  assert_int_equal(tr_notify_room(h, b2, on_xroom, &room), TR_OK);
  assert_int_equal(room.n, 0);
  tr_host_run(h);
  assert_int_equal(room.n, 1);
  assert_int_equal(room.status, TR_OK);
  assert_int_equal(room.off_main, 0);
  tr_host_free(h);
}

/* tr_notify_room asked on scheduler 2 about a mailbox of scheduler 1: the
 * callback runs on scheduler 2's thread. */
/* b1 on scheduler 1 (a mailbox of 3) and a2 on scheduler 2; a2 fills b1
 * and asks for room (fill, fill_room) while this thread does not run its
 * loop, so b1 takes nothing and no room is made yet. */
static place a2_fills_b1(tr_host *h, tr_addr *b1, tr_addr *a2) {
  *b1 = spawn_cap(h, 1, 3);
  *a2 = spawn_on(h, 2, 0);
  place p2 = where(h, *a2);
  assert_false(p2.on_main);
  memset(&g_room_thread, 0, sizeof g_room_thread);
  assert_int_equal(tr_send_fmt(h, TR_NOADDR, *a2, "fill", "a i", *b1, 1000), TR_OK);
  uint64_t t0 = uv_hrtime();
  while (!atomic_load(&g_fill_done) && ms_since(t0) < 10000) uv_sleep(1);
  assert_true(atomic_load(&g_fill_done));
  assert_int_equal(atomic_load(&g_room_n), 0);
  return p2;
}

static void notify_room_across_calls_back_on_the_asker(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr b1, a2;
  place p2 = a2_fills_b1(h, &b1, &a2);
  tr_host_run(h);
  assert_int_equal(atomic_load(&g_room_n), 1);
  assert_int_equal(atomic_load(&g_room_status), TR_OK);
  assert_int_equal(atomic_load(&g_room_send_rc), TR_OK);
  assert_true(same_thread(g_room_thread, p2.thread));
  sreply r;
  CALLF(h, b1, "get", &r, "");
  assert_int_equal(r.r.i, 4); /* three, then the one from the callback */
  tr_host_free(h);
}

/* The asker, a C actor of scheduler 2, dies before a mailbox of scheduler 1
 * has room: its callback hears TR_EDEAD as it dies (on its own thread, while
 * its state exists) and the owner's later answer finds nothing. */
static void notify_room_across_asker_dies_first(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr b1, a2;
  place p2 = a2_fills_b1(h, &b1, &a2);
  assert_int_equal(tr_kill(h, a2), TR_OK); /* done on scheduler 2 */
  uint64_t t0 = uv_hrtime();
  while (atomic_load(&g_room_n) == 0 && ms_since(t0) < 10000) uv_sleep(1);
  assert_int_equal(atomic_load(&g_room_n), 1);
  assert_int_equal(atomic_load(&g_room_status), TR_EDEAD);
  assert_true(same_thread(g_room_thread, p2.thread));
  tr_host_run(h); /* b1 takes its three: room, answered to a gone asker */
  spin_loop(h, 50);
  assert_int_equal(atomic_load(&g_room_n), 1);
  sreply r;
  CALLF(h, b1, "get", &r, "");
  assert_int_equal(r.r.i, 3); /* nothing sent from a callback */
  tr_host_free(h);
}

/* The target dies (or is gone) before there is room: TR_EDEAD, once. */
static void notify_room_across_dead(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_addr b2 = spawn_cap(h, 2, 2), c2 = spawn_cap(h, 2, 2);
  block_actor(h, b2);
  assert_int_equal(fill_from_main(h, b2, 100), 2);
  xroom room, gone;
  memset(&room, 0, sizeof room);
  memset(&gone, 0, sizeof gone);
  assert_int_equal(tr_notify_room(h, b2, on_xroom, &room), TR_OK);
  assert_int_equal(tr_kill(h, b2), TR_OK); /* handled after the wait is recorded */
  /* c2 is killed before the request reaches its scheduler */
  assert_int_equal(tr_kill(h, c2), TR_OK);
  assert_int_equal(tr_notify_room(h, c2, on_xroom, &gone), TR_OK);
  atomic_store(&g_gate, 1);
  tr_host_run(h);
  assert_int_equal(room.n, 1);
  assert_int_equal(room.status, TR_EDEAD);
  assert_int_equal(room.off_main, 0);
  assert_int_equal(gone.n, 1);
  assert_int_equal(gone.status, TR_EDEAD);
  assert_int_equal(gone.off_main, 0);
  /* gone already: refused, no callback */
  assert_int_equal(tr_notify_room(h, b2, on_xroom, &room), TR_EDEAD);
  spin_loop(h, 20);
  assert_int_equal(room.n, 1);
  tr_host_free(h);
}

/* The host is freed while a wait for room across schedulers is pending:
 * the callback hears TR_EDEAD during tr_host_free (its actor is killed, as
 * for a mailbox of this scheduler), exactly once; nothing leaks (ASan). */
static const char *LUA_NAPPER =
    "return {\n"
    "  nap = function(self, t, ms) t:send('report', 1); require('troupe').sleep(ms) end,\n"
    "  add = function() end,\n"
    "}\n";

static void notify_room_across_pending_at_free(void **state) {
  for (int recorded = 0; recorded < 2; recorded++) {
    reset();
    tr_host *h = new_sched_host(2);
    tr_spawn_options o;
    memset(&o, 0, sizeof o);
    o.scheduler = 2;
    o.mailbox_capacity = 2;
    tr_addr n2 = TR_NOADDR, r1 = spawn_on(h, 1, 0), p2 = spawn_on(h, 2, 0);
    assert_int_equal(tr_spawn_lua_string(h, LUA_NAPPER, "=napper", NULL, &o, &n2), TR_OK);
    assert_int_equal(tr_send_fmt(h, TR_NOADDR, n2, "nap", "a i", r1, 600000), TR_OK);
    uint64_t t0 = uv_hrtime();
    while (g_reported != 1 && ms_since(t0) < 10000) {
      uv_run(tr_host_loop(h), UV_RUN_NOWAIT);
      uv_sleep(1);
    }
    assert_int_equal(g_reported, 1); /* it sleeps in its handler: it takes nothing */
    assert_int_equal(fill_from_main(h, n2, 100), 2);
    xroom room;
    memset(&room, 0, sizeof room);
    assert_int_equal(tr_notify_room(h, n2, on_xroom, &room), TR_OK);
    if (recorded) { /* a call behind it on the same scheduler: the wait is recorded */
      sreply r;
      memset(&r, 0, sizeof r);
      assert_int_equal(tr_call(h, TR_NOADDR, p2, "get", NULL, 5000, on_sreply, &r), TR_OK);
      t0 = uv_hrtime();
      while (!r.r.n && ms_since(t0) < 10000) {
        uv_run(tr_host_loop(h), UV_RUN_NOWAIT);
        uv_sleep(1);
      }
      assert_int_equal(r.r.n, 1);
    }
    assert_int_equal(room.n, 0);
    tr_host_free(h);
    assert_int_equal(room.n, 1);
    assert_int_equal(room.status, TR_EDEAD);
    assert_int_equal(room.off_main, 0);
  }
}

/* ---- tooling: tr__sched_sync (the REPL's :ls reads each scheduler on its thread) ---------- */
typedef struct {
  uv_thread_t thread;
  unsigned index;
  int ran;
} sync_probe;

static void sync_fn(tr_sched *s, void *ud) {
  sync_probe *p = ud;
  p->thread = uv_thread_self();
  p->index = s->index;
  p->ran++;
}

static void sync_runs_on_the_other_thread_or_times_out(void **state) {
  reset();
  tr_host *h = new_sched_host(2);
  tr_sched *s1 = &h->sched[0], *s2 = &h->sched[1];
  /* on the caller's own scheduler: at once */
  sync_probe p = {0};
  assert_int_equal(tr__sched_sync(s1, s1, sync_fn, &p, 100), 0);
  assert_int_equal(p.ran, 1);
  assert_int_equal(p.index, 0);
  assert_true(same_thread(p.thread, g_main));
  /* on another: on its thread, and the caller waits for it */
  memset(&p, 0, sizeof p);
  assert_int_equal(tr__sched_sync(s1, s2, sync_fn, &p, 1000), 0);
  assert_int_equal(p.ran, 1);
  assert_int_equal(p.index, 1);
  assert_false(same_thread(p.thread, g_main));
  /* a scheduler stuck in a C handler does not answer: the caller gives up
   * after its timeout, and the request, when it finally runs, frees itself
   * without touching the caller's data (ASan would see it) */
  tr_addr a2 = spawn_on(h, 2, 0);
  atomic_store(&g_gate, 0);
  atomic_store(&g_entered, 0);
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, 400);
  sreply blk;
  memset(&blk, 0, sizeof blk);
  assert_int_equal(tr_call(h, TR_NOADDR, a2, "block", &b, 5000, on_sreply, &blk), TR_OK);
  tr_buf_free(&b);
  uint64_t end = uv_hrtime() + 2000000000u;
  while (!atomic_load(&g_entered) && uv_hrtime() < end) uv_sleep(1);
  assert_true(atomic_load(&g_entered));
  sync_probe *gone = calloc(1, sizeof *gone);
  assert_non_null(gone);
  uint64_t t0 = uv_hrtime();
  assert_int_equal(tr__sched_sync(s1, s2, sync_fn, gone, 50), TR_ETIMEOUT);
  assert_true(uv_hrtime() - t0 < 300000000u); /* it did not wait for the handler */
  assert_int_equal(gone->ran, 0);
  free(gone); /* the abandoned request must not use it */
  tr_host_run(h); /* the handler returns; the abandoned request runs, frees itself */
  assert_int_equal(blk.r.n, 1);
  memset(&p, 0, sizeof p);
  assert_int_equal(tr__sched_sync(s1, s2, sync_fn, &p, 1000), 0); /* and it answers again */
  assert_int_equal(p.ran, 1);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  uv_mutex_init(&g_lock);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(placement_explicit_and_automatic),
      cmocka_unit_test(spawned_address_usable_at_once),
      cmocka_unit_test(placement_from_handlers),
      cmocka_unit_test(one_scheduler_and_environment),
      cmocka_unit_test(call_reply_main_to_other_scheduler),
      cmocka_unit_test(actor_calls_other_scheduler_and_defers),
      cmocka_unit_test(dead_address_on_other_scheduler),
      cmocka_unit_test(queued_calls_fail_once_when_killed),
      cmocka_unit_test(stop_runs_hooks_on_own_thread),
      cmocka_unit_test(monitors_across_schedulers),
      cmocka_unit_test(links_across_schedulers),
      cmocka_unit_test(names_across_schedulers),
      cmocka_unit_test(timers_on_other_scheduler),
      cmocka_unit_test(many_calls_answered_once),
      cmocka_unit_test(run_waits_for_other_schedulers),
      cmocka_unit_test(free_while_busy),
      cmocka_unit_test(free_without_running),
      cmocka_unit_test(lua_actor_on_other_scheduler),
      cmocka_unit_test(sync_runs_on_the_other_thread_or_times_out),
      cmocka_unit_test(full_mailbox_across_pushes_back_on_c),
      cmocka_unit_test(notify_room_across_calls_back_on_the_asker),
      cmocka_unit_test(notify_room_across_dead),
      cmocka_unit_test(notify_room_across_asker_dies_first),
      cmocka_unit_test(notify_room_across_pending_at_free),
  };
  RUN_TESTS(tests, argc, argv);
}
