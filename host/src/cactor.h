/* C actors: what cactor.c (the API a handler calls, init, the rare cases)
 * and host.c (the delivery of a message to a found handler, inlined into
 * the run loop with the reply) share. Not installed. */
#ifndef TROUPE_CACTOR_H
#define TROUPE_CACTOR_H

#include "internal.h"

struct tr_ctx {
  tr_sched *s;
  tr_actor *a;
  tr_env *e;
  tr_buf out;
  int fail;       /* out holds the handler's own error value */
  int deferred;
  int err_set;
  char err[256];
};

static inline void tr__ctx_init(tr_ctx *c, tr_sched *s, tr_actor *a, tr_env *e) {
  c->s = s;
  c->a = a;
  c->e = e;
  c->out.data = c->out.inline_; /* tr_buf_init, inline: once per message */
  c->out.len = 0;
  c->out.cap = sizeof c->out.inline_;
  c->fail = c->deferred = c->err_set = 0; /* (err is read only once err_set) */
}

static inline void tr__ctx_done(tr_ctx *c) {
  if (c->out.data != c->out.inline_) tr_buf_free(&c->out);
}

/* The same test as name_key's (cactor.c) against a key it made (n the
 * name's length, 1 to 16), without going through memory. */
static inline int tr__c_name_is(const char *p, size_t n, const uint64_t k[2]) {
  if (n >= 8) {
    uint64_t x, y;
    memcpy(&x, p, 8);
    memcpy(&y, p + n - 8, 8);
    return x == k[0] && y == k[1];
  }
  if (n >= 4) {
    uint32_t x, y;
    memcpy(&x, p, 4);
    memcpy(&y, p + n - 4, 4);
    return (x | (uint64_t)y << 32) == k[0];
  }
  return ((unsigned char)p[0] | (uint64_t)(unsigned char)p[n >> 1] << 8 |
          (uint64_t)(unsigned char)p[n - 1] << 16) == k[0];
}

/* The handler for e's method, or NULL: the method found last (kept on the
 * actor) inline, else the table scan (tr__c_lookup, which keeps what it finds). */
tr_handler_fn tr__c_lookup(tr_actor *a, const tr_env *e);
static inline __attribute__((always_inline)) tr_handler_fn tr__c_method(tr_actor *a,
                                                                      const tr_env *e) {
  const tr_actor_cold *c = a->cold; /* (its own once init ran: it holds the state) */
  if (c->mc_len && e->mlen == c->mc_len && a->cb->methods == c->mc_tab &&
      tr__c_name_is(TR_ENV_METHOD(e), e->mlen, c->mc_key))
    return c->mc_fn;
  return tr__c_lookup(a, e);
}

/* A C actor's INIT message: its state, init, on_start (or its death). Frees e. */
void tr__c_init(tr_sched *s, tr_actor *a, tr_env *e);
/* A message whose method the C actor has no handler for: an error answer,
 * a log line, or a system notice dropped. Frees e. */
void tr__c_no_handler(tr_sched *s, tr_actor *a, tr_env *e);
/* A send whose handler returned rc < 0: the log line. */
void tr__c_send_failed(tr_sched *s, tr_actor *a, const tr_env *e, int rc, const tr_ctx *c);

#endif
