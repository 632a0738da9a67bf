/* Actors whose behaviour is written in C. */
#include "cactor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tr_host *tr_ctx_host(tr_ctx *c) { return c ? c->s->h : NULL; }
tr_addr tr_ctx_self(tr_ctx *c) { return c ? c->a->addr : TR_NOADDR; }
tr_addr tr_ctx_sender(tr_ctx *c) { return c && c->e ? c->e->from : TR_NOADDR; }
void *tr_ctx_state(tr_ctx *c) { return c ? c->a->cold->cstate : NULL; }
const char *tr_ctx_method(tr_ctx *c) { return c && c->e ? TR_ENV_METHOD(c->e) : ""; }
int tr_ctx_is_call(tr_ctx *c) { return c && c->e && c->e->kind == TR_K_CALL; }

tr_buf *tr_ctx_reply(tr_ctx *c) {
  if (!c) return NULL;
  if (c->fail) { /* (the values replace a failure value) */
    c->out.len = 0; /* tr_buf_reset, inline: no stack frame */
    c->fail = 0;
  }
  return &c->out;
}

tr_buf *tr_ctx_fail(tr_ctx *c) {
  if (!c) return NULL;
  if (!c->fail) tr_buf_reset(&c->out);
  c->fail = 1;
  return &c->out;
}

int tr_ctx_error(tr_ctx *c, int code, const char *fmt, ...) {
  if (!c) return TR_EINVAL;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt ? fmt : "", ap);
  va_end(ap);
  c->err_set = 1;
  return code;
}

int tr_ctx_defer(tr_ctx *c, tr_token *out) {
  if (!c || !out) return TR_EINVAL;
  if (!tr_ctx_is_call(c) || !c->e->req) return TR_EINVAL;
  if (!tr__owe(c->s, c->a, c->e->req, c->e->from)) return TR_ENOMEM;
  out->req = c->e->req;
  out->caller = c->e->from;
  out->owner = c->a->addr;
  c->e->req = 0; /* the obligation moved to the token */
  c->deferred = 1;
  return 0;
}

/* A method name of n bytes, 1 to 16, as two words: overlapping loads, as in
 * tr__copy, so nothing outside [0, n) is read and every byte is in a word.
 * Equal keys of equal lengths are equal bytes. 0: no key (another length). */
static inline int name_key(const char *p, size_t n, uint64_t k[2]) {
  if (n - 1 >= 16) return 0;
  if (n >= 8) {
    memcpy(&k[0], p, 8);
    memcpy(&k[1], p + n - 8, 8);
  } else if (n >= 4) {
    uint32_t x, y;
    memcpy(&x, p, 4);
    memcpy(&y, p + n - 4, 4);
    k[0] = x | (uint64_t)y << 32;
    k[1] = 0;
  } else {
    k[0] = (unsigned char)p[0] | (uint64_t)(unsigned char)p[n >> 1] << 8 |
           (uint64_t)(unsigned char)p[n - 1] << 16;
    k[1] = 0;
  }
  return 1;
}

/* The handler for the message's method. An actor mostly gets the same
 * method again (a server's one request): the entry it found last is kept on
 * the actor, keyed by the envelope's method bytes (all mlen of them: the
 * same bytes give the same strcmp answer), so a repeat costs a few compares
 * instead of a strcmp per table entry up to it. On the actor, not per
 * behaviour: a behaviour is the program's memory and may be freed and
 * another made at its address, but not while actors of it live (troupe.h).
 * A method table swapped for another misses. Unknown methods are not kept:
 * they scan every time. */
tr_handler_fn tr__c_lookup(tr_actor *a, const tr_env *e) {
  const char *name = TR_ENV_METHOD(e);
  const tr_method *tab = a->cb->methods;
  tr_actor_cold *c = a->cold; /* (its own once init ran: it holds the state) */
  /* (the entry kept is tested first, inline, by tr__c_method) */
  for (const tr_method *m = tab; m && m->name; m++)
    if (strcmp(m->name, name) == 0) {
      uint64_t k[2];
      if (c != &tr__cold_none && name_key(name, e->mlen, k)) {
        c->mc_tab = tab;
        c->mc_fn = m->fn;
        c->mc_key[0] = k[0];
        c->mc_key[1] = k[1];
        c->mc_len = e->mlen;
      }
      return m->fn;
    }
  return NULL;
}

/* (the usual case, a message for a handler the actor has, is host.c's
 * c_deliver: inlined into the run loop with the reply) */
void tr__c_init(tr_sched *s, tr_actor *a, tr_env *e) {
  tr_ctx c;
  tr_msg m;
  tr__ctx_init(&c, s, a, NULL);
  tr__msg_init(&m, TR_ENV_PAYLOAD(e), e->len);
  a->cur = e;
  tr_actor_cold *cd = tr__cold(a); /* a C actor's state is kept there */
  if (cd) cd->cstate = calloc(1, a->cb->state_size ? a->cb->state_size : 1);
  int rc = cd && cd->cstate ? 0 : TR_ENOMEM;
  if (rc == 0 && a->cb->init) rc = a->cb->init(&c, &m);
  a->cur = NULL;
  tr__env_free(s, e);
  if (rc) {
    char msg[320];
    snprintf(msg, sizeof msg, "init failed: %s", c.err_set ? c.err : tr_strerror(rc));
    tr__actor_died(s, a, TR_ECRASHED, msg, NULL);
  } else {
    a->started = 1;
    if (a->cb->on_start) a->cb->on_start(&c);
  }
  tr__msg_done(&m);
  tr__ctx_done(&c);
}

void tr__c_no_handler(tr_sched *s, tr_actor *a, tr_env *e) {
  const char *method = TR_ENV_METHOD(e);
  if (e->kind == TR_K_SEND && (strcmp(method, "on_down") == 0 || strcmp(method, "on_exit") == 0)) {
    tr__env_free(s, e); /* system notices are optional: no handler, no noise */
    return;
  }
  tr_ctx c;
  char who[96];
  tr__ctx_init(&c, s, a, e);
  tr_addr_format(s->h, a->addr, who, sizeof who);
  int rc = tr_ctx_error(&c, TR_ENOHANDLER, "%s has no handler '%s'", who, method);
  if (e->kind == TR_K_CALL && e->req && a->state != TR_S_DEAD)
    tr__reply_error(s, a->addr, e->from, e->req, rc, c.err, NULL);
  else if (e->kind == TR_K_SEND)
    tr__c_send_failed(s, a, e, rc, &c);
  tr__env_free(s, e);
  tr__ctx_done(&c);
}

void tr__c_send_failed(tr_sched *s, tr_actor *a, const tr_env *e, int rc, const tr_ctx *c) {
  char who[96];
  tr_addr_format(s->h, a->addr, who, sizeof who);
  tr__log(s->h, "%s: message '%s' failed: %s: %s", who, TR_ENV_METHOD(e), tr_errname(rc),
          c->err_set ? c->err : tr_strerror(rc));
}

int tr__c_hooks(tr_sched *s, tr_actor *a, int which) {
  tr_ctx c;
  tr__ctx_init(&c, s, a, NULL);
  int veto = 0;
  if (which == 0 && a->cb->on_stopping) veto = a->cb->on_stopping(&c);
  if (which == 1 && a->cb->on_stopped) a->cb->on_stopped(&c);
  tr_buf_free(&c.out);
  return veto;
}

void tr__c_destroy(tr_sched *s, tr_actor *a) {
  (void)s;
  if (a->cold == &tr__cold_none) return;
  free(a->cold->cstate);
  a->cold->cstate = NULL;
}
