/* Shared pieces of the C tests: a reply recorder, a log catcher, an event
 * trace, and "Counter", a C behaviour with one handler per situation the
 * tests need. Everything is static: each test file is its own program. */
#ifndef TROUPE_TEST_HELPERS_H
#define TROUPE_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <troupe.h>

#define UNUSED __attribute__((unused))

/* Runs the cmocka group, restricted to the test named by argv[1] if given. */
#define RUN_TESTS(tests, argc, argv)                  \
  do {                                                \
    if ((argc) > 1) cmocka_set_test_filter((argv)[1]); \
    return cmocka_run_group_tests(tests, NULL, NULL); \
  } while (0)

/* ---- replies ------------------------------------------------------------------- */
typedef struct {
  int n;          /* how many times the callback ran */
  int status;
  int count;      /* values in the reply */
  int has_i;
  int64_t i;      /* value 0 if it is an integer */
  char s[256];    /* value 0 if it is a string */
  char s1[1024];  /* value 1 if it is a string (the traceback of a crash) */
  char text[512]; /* all values, formatted */
  uint64_t at;    /* tr_now_ms when it came */
  int64_t field;  /* value 0's field "code" or "available", if an integer */
  char reason[128]; /* value 0's field "reason", if a string */
} reply_rec;

static UNUSED void rec_reply(tr_host *h, int status, const tr_msg *m, void *ud) {
  reply_rec *r = ud;
  const char *p;
  size_t len;
  r->n++;
  r->status = status;
  r->at = tr_now_ms(h);
  r->count = tr_msg_count(m);
  tr_msg_format(m, -1, r->text, sizeof r->text);
  r->has_i = tr_msg_int(m, 0, &r->i) == 0;
  r->s[0] = r->s1[0] = r->reason[0] = 0;
  if (tr_msg_str(m, 0, &p, &len) == 0) snprintf(r->s, sizeof r->s, "%.*s", (int)len, p);
  if (tr_msg_str(m, 1, &p, &len) == 0) snprintf(r->s1, sizeof r->s1, "%.*s", (int)len, p);
  r->field = -1;
  if (tr_msg_field_int(m, 0, "code", &r->field) != 0)
    tr_msg_field_int(m, 0, "available", &r->field);
  if (tr_msg_field_str(m, 0, "reason", &p, &len) == 0)
    snprintf(r->reason, sizeof r->reason, "%.*s", (int)len, p);
}

/* ---- log lines ----------------------------------------------------------------- */
typedef struct {
  char buf[8192];
  int lines;
} logcap;

static UNUSED void cap_log(void *ud, const char *line) {
  logcap *c = ud;
  size_t n = strlen(c->buf);
  if (n < sizeof c->buf - 1) snprintf(c->buf + n, sizeof c->buf - n, "%s\n", line);
  c->lines++;
}

/* A host on its own loop, logging into `lc` (NULL: stderr). */
static UNUSED tr_host *new_host(logcap *lc, uint32_t mailbox, int64_t timeout_ms) {
  tr_host_options o;
  tr_host_options_init(&o);
  o.mailbox_capacity = mailbox;
  o.call_timeout_ms = timeout_ms;
  if (lc) {
    memset(lc, 0, sizeof *lc);
    o.log = cap_log;
    o.log_ud = lc;
  }
  tr_host *h = NULL;
  int rc = tr_host_new(&h, &o);
  assert_int_equal(rc, TR_OK);
  assert_non_null(h);
  return h;
}

/* ---- an event trace, shared by the actors of a test -------------------------------- */
static char g_events[4096];

static UNUSED void ev(const char *fmt, ...) {
  size_t n = strlen(g_events);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_events + n, sizeof g_events - n, fmt, ap);
  va_end(ap);
  n = strlen(g_events);
  if (n < sizeof g_events - 1) {
    g_events[n] = ';';
    g_events[n + 1] = 0;
  }
}

/* ---- Counter: the C behaviour under test ---------------------------------------------- */
typedef struct {
  int64_t count;
  int ticks;
} counter_st;

static tr_token g_tok[16];   /* tokens taken by "defer" */
static int g_ntok;
static int g_veto;            /* on_stopping vetoes this many times */
static int g_defer_rc;        /* what tr_ctx_defer returned in "defer_send" */
static tr_addr g_sender;      /* "note" records its sender here */
static int g_is_call = -1;
static tr_timer_id g_timer;   /* "tick" cancels it after `limit` ticks */
static int g_tick_limit;
static uv_thread_t g_loop_thread; /* "note" checks it runs on this thread */
static int g_wrong_thread;

static UNUSED void reset_globals(void) {
  g_events[0] = 0;
  memset(g_tok, 0, sizeof g_tok);
  g_ntok = 0;
  g_veto = 0;
  g_defer_rc = 1;
  g_sender = TR_NOADDR;
  g_is_call = -1;
  g_timer = 0;
  g_tick_limit = 0;
  g_loop_thread = uv_thread_self();
  g_wrong_thread = 0;
}

static int c_init(tr_ctx *ctx, const tr_msg *args) {
  counter_st *st = tr_ctx_state(ctx);
  char text[256];
  const char *s;
  size_t len;
  tr_msg_format(args, -1, text, sizeof text);
  ev("init(%s)", text);
  if (tr_msg_str(args, 0, &s, &len) == 0 && len == 4 && memcmp(s, "fail", 4) == 0)
    return tr_ctx_error(ctx, TR_EINVAL, "bad init");
  if (tr_msg_type(args, 0) == TR_T_INT) tr_msg_int(args, 0, &st->count);
  return 0;
}
static void c_start(tr_ctx *ctx) { ev("start"); }
static int c_stopping(tr_ctx *ctx) {
  ev("stopping");
  if (g_veto > 0) {
    g_veto--;
    return 1;
  }
  return 0;
}
static void c_stopped(tr_ctx *ctx) { ev("stopped"); }

static int m_add(tr_ctx *ctx, const tr_msg *args) {
  counter_st *st = tr_ctx_state(ctx);
  int64_t n;
  if (tr_msg_int(args, 0, &n)) return tr_ctx_error(ctx, TR_EBADVALUE, "add needs an integer");
  st->count += n;
  return tr_pack_int(tr_ctx_reply(ctx), st->count);
}
static int m_get(tr_ctx *ctx, const tr_msg *args) {
  counter_st *st = tr_ctx_state(ctx);
  return tr_pack_int(tr_ctx_reply(ctx), st->count);
}
/* echo(...) -> text of the arguments, their count */
static int m_echo(tr_ctx *ctx, const tr_msg *args) {
  char text[400];
  tr_msg_format(args, -1, text, sizeof text);
  return tr_pack_fmt(tr_ctx_reply(ctx), "si", text, tr_msg_count(args));
}
static int m_fail(tr_ctx *ctx, const tr_msg *args) {
  tr_pack_int(tr_ctx_reply(ctx), 99); /* replaced by the failure value */
  tr_pack_fmt(tr_ctx_fail(ctx), "{s s s i}", "reason", "nope", "code", 7);
  return TR_FAILED;
}
static int m_syserr(tr_ctx *ctx, const tr_msg *args) {
  return tr_ctx_error(ctx, TR_EBADVALUE, "custom %d", 42);
}
static int m_rawerr(tr_ctx *ctx, const tr_msg *args) { return TR_ENOTFOUND; }
static int m_defer(tr_ctx *ctx, const tr_msg *args) {
  if (g_ntok >= 16) return TR_ENOMEM;
  return tr_ctx_defer(ctx, &g_tok[g_ntok++]);
}
static int m_defer_send(tr_ctx *ctx, const tr_msg *args) {
  tr_token t;
  g_defer_rc = tr_ctx_defer(ctx, &t);
  return 0;
}
static int m_note(tr_ctx *ctx, const tr_msg *args) {
  char text[256];
  tr_msg_format(args, -1, text, sizeof text);
  ev("note(%s)", text);
  g_sender = tr_ctx_sender(ctx);
  g_is_call = tr_ctx_is_call(ctx);
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &g_loop_thread)) g_wrong_thread = 1;
  return 0;
}
/* who() -> the sender's address (TR_NOADDR packs as address 0), is_call */
static int m_who(tr_ctx *ctx, const tr_msg *args) {
  return tr_pack_fmt(tr_ctx_reply(ctx), "ab", tr_ctx_sender(ctx), tr_ctx_is_call(ctx));
}
/* forward(to, ...) sends "note" with the rest to `to`, as this actor */
static int m_forward(tr_ctx *ctx, const tr_msg *args) {
  tr_addr to;
  if (tr_msg_addr(args, 0, &to)) return tr_ctx_error(ctx, TR_EBADVALUE, "forward needs an address");
  int64_t v = 0;
  tr_msg_int(args, 1, &v);
  return tr_send_fmt(tr_ctx_host(ctx), tr_ctx_self(ctx), to, "note", "I", v);
}
/* relay(to, method, n): calls to:method(n) as this actor; answers later with
 * that reply (TR_OK) or a failure holding the status name. */
static void relay_done(tr_host *h, int status, const tr_msg *m, void *ud) {
  tr_token *tok = ud;
  tr_buf b;
  tr_buf_init(&b);
  int64_t v;
  if (status == TR_OK && tr_msg_int(m, 0, &v) == 0) {
    tr_pack_int(&b, v);
    tr_token_reply(h, tok, &b);
  } else {
    tr_pack_str(&b, tr_errname(status));
    tr_token_fail(h, tok, &b);
  }
  tr_buf_free(&b);
  free(tok);
}
static int m_relay(tr_ctx *ctx, const tr_msg *args) {
  tr_addr to;
  const char *method;
  size_t mlen;
  int64_t n;
  if (tr_msg_addr(args, 0, &to) || tr_msg_str(args, 1, &method, &mlen) || tr_msg_int(args, 2, &n))
    return tr_ctx_error(ctx, TR_EBADVALUE, "relay(to, method, n)");
  char mname[64];
  snprintf(mname, sizeof mname, "%.*s", (int)mlen, method);
  tr_token *tok = malloc(sizeof *tok);
  if (!tok) return TR_ENOMEM;
  int rc = tr_ctx_defer(ctx, tok);
  if (rc == 0)
    rc = tr_call_fmt(tr_ctx_host(ctx), tr_ctx_self(ctx), to, mname, relay_done, tok, "I", n);
  if (rc) free(tok);
  return rc;
}
static int m_tick(tr_ctx *ctx, const tr_msg *args) {
  counter_st *st = tr_ctx_state(ctx);
  char text[128];
  tr_msg_format(args, -1, text, sizeof text);
  st->ticks++;
  ev("tick(%s)", text);
  if (g_tick_limit && st->ticks >= g_tick_limit && g_timer) {
    int rc = tr_cancel_timer(tr_ctx_host(ctx), g_timer);
    ev("cancel=%d", rc);
    g_timer = 0;
  }
  return 0;
}
static int m_kill_self(tr_ctx *ctx, const tr_msg *args) {
  int rc = tr_kill(tr_ctx_host(ctx), tr_ctx_self(ctx));
  return tr_pack_fmt(tr_ctx_reply(ctx), "i", rc);
}
static int m_stop_self(tr_ctx *ctx, const tr_msg *args) {
  return tr_stop(tr_ctx_host(ctx), tr_ctx_self(ctx));
}
static int m_exit(tr_ctx *ctx, const tr_msg *args) {
  int64_t code = 0;
  tr_msg_int(args, 0, &code);
  tr_host_exit(tr_ctx_host(ctx), (int)code);
  return 0;
}

static const tr_method counter_methods[] = {
    {"add", m_add},         {"get", m_get},
    {"echo", m_echo},       {"fail", m_fail},
    {"syserr", m_syserr},   {"rawerr", m_rawerr},
    {"defer", m_defer},     {"defer_send", m_defer_send},
    {"note", m_note},       {"who", m_who},
    {"forward", m_forward}, {"relay", m_relay},
    {"tick", m_tick},       {"kill_self", m_kill_self},
    {"stop_self", m_stop_self}, {"exit", m_exit},
    {NULL, NULL}};

static UNUSED const tr_behaviour counter = {
    .name = "Counter",
    .state_size = sizeof(counter_st),
    .init = c_init,
    .on_start = c_start,
    .on_stopping = c_stopping,
    .on_stopped = c_stopped,
    .methods = counter_methods,
};

static UNUSED tr_addr spawn_counter(tr_host *h, int64_t start) {
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, start);
  tr_addr a = TR_NOADDR;
  int rc = tr_spawn(h, &counter, &b, NULL, &a);
  tr_buf_free(&b);
  assert_int_equal(rc, TR_OK);
  assert_true(a != TR_NOADDR);
  return a;
}

/* Runs the host's loop once per step until *flag becomes non-zero (at most
 * `ms` milliseconds). Returns 1 if it did. */
static UNUSED int run_until(tr_host *h, const int *flag, int ms) {
  uv_loop_t *loop = tr_host_loop(h);
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + (uint64_t)ms;
  while (!*flag) {
    uv_run(loop, UV_RUN_NOWAIT);
    uv_update_time(loop);
    if (*flag || uv_now(loop) > end) break;
    uv_sleep(1);
  }
  return *flag != 0;
}

/* Lets every runnable actor run, without waiting for timers or pending
 * calls (tr_host_run would wait for those). */
static UNUSED void run_ready(tr_host *h) {
  for (int i = 0; i < 20; i++) uv_run(tr_host_loop(h), UV_RUN_NOWAIT);
}

#endif
