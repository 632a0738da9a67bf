/* Monitors, links, exit propagation and stop waiters: what happens to the
 * others when an actor dies. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tr__reason_name(int code, int stop_self) {
  switch (code) {
    case TR_OK: return stop_self ? "normal" : "stopped";
    case TR_EKILLED: return "killed";
    case TR_ECRASHED: return "crashed";
    case TR_EOOM: return "out_of_memory";
    case TR_ETIMEOUT: return "timeout";
    case TR_ELINKED: return "linked_exit";
    case TR_EDEAD: return "noproc";
    default: return tr_errname(code);
  }
}

static int abnormal(int code) { return code != TR_OK; }

/* Pack (..., reason, detail) where detail is {message=, traceback=} or nil. */
static void pack_reason(tr_buf *b, const char *reason, const char *msg, const char *tb) {
  tr_pack_str(b, reason);
  if (!msg && !tb) {
    tr_pack_nil(b);
    return;
  }
  tr_pack_map(b, (msg ? 1 : 0) + (tb ? 1 : 0));
  if (msg) tr_pack_fmt(b, "ss", "message", msg);
  if (tb) tr_pack_fmt(b, "ss", "traceback", tb);
}

static void send_system(tr_sched *s, tr_addr to, tr_addr from, const char *method,
                        const tr_buf *b) {
  tr_env *e = tr__env_new(s, method, strlen(method), b->data, b->len);
  if (!e) return;
  e->from = from;
  e->to = to;
  if (tr__deliver(s, e, 1, NULL)) tr__env_free(s, e); /* the watcher is gone too */
}

/* ---- monitors --------------------------------------------------------------------- */
static void mon_unlink(tr_sched *s, tr_mon *m, tr_actor *target, tr_actor *watcher) {
  tr_map_del(&s->mons, m->ref);
  if (target) {
    if (m->tprev) m->tprev->tnext = m->tnext;
    else if (target->cold->mons == m) target->cold->mons = m->tnext;
    if (m->tnext) m->tnext->tprev = m->tprev;
  }
  if (watcher) {
    if (m->wprev) m->wprev->wnext = m->wnext;
    else if (watcher->cold->watching == m) watcher->cold->watching = m->wnext;
    if (m->wnext) m->wnext->wprev = m->wprev;
  }
}

/* Across schedulers a monitor is two records with the same ref: the
 * watcher's (in its `watching` list and its scheduler's `mons`) and the
 * target's (in its `mons` list and its scheduler's `mons`). Each scheduler
 * touches only its own; the death of either side is a message to the other.
 * The ref names the watcher's scheduler in its top byte. */
static void down_now(tr_sched *s, uint64_t r, tr_addr watcher, tr_addr target,
                     const char *reason) {
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_int(&b, (int64_t)r);
  tr_pack_addr(&b, target);
  pack_reason(&b, reason, NULL, NULL);
  send_system(s, watcher, target, "on_down", &b);
  tr_buf_free(&b);
}

/* On the target's scheduler: add the target's record, or answer noproc. */
static void op_mon_add(tr_sched *s, tr_env *e) {
  tr_actor *t = tr__lookup(s, e->to);
  uint64_t r = e->req;
  tr_addr watcher = e->from, target = e->to;
  tr__env_free(s, e);
  tr_actor_cold *tc = t ? tr__cold(t) : NULL;
  tr_mon *m = tc ? calloc(1, sizeof *m) : NULL;
  if (!m || tr_map_put(&s->mons, r, m)) {
    free(m);
    /* gone meanwhile: the watcher hears noproc (through its record) */
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_int(&b, (int64_t)r);
    tr_pack_addr(&b, target);
    pack_reason(&b, "noproc", NULL, NULL);
    tr__op(s, watcher, tr__op_mon_fire, target, r, 0, b.data, b.len);
    tr_buf_free(&b);
    return;
  }
  m->ref = r;
  m->watcher = watcher;
  m->target = target;
  m->tnext = tc->mons;
  if (tc->mons) tc->mons->tprev = m;
  tc->mons = m;
}

/* On the watcher's scheduler: the target died (payload: on_down's values),
 * unless the monitor was dropped meanwhile. */
void tr__op_mon_fire(tr_sched *s, tr_env *e) {
  tr_mon *m = tr_map_get(&s->mons, e->req);
  if (!m || m->watcher != e->to) {
    tr__env_free(s, e);
    return;
  }
  mon_unlink(s, m, NULL, tr__lookup(s, m->watcher));
  free(m);
  tr_env *d = tr__env_new(s, "on_down", 7, TR_ENV_PAYLOAD(e), e->len);
  if (d) {
    d->from = e->from;
    d->to = e->to;
    if (tr__deliver(s, d, 1, NULL)) tr__env_free(s, d);
  }
  tr__env_free(s, e);
}

/* On the target's scheduler: drop its record of a monitor. */
static void op_mon_del(tr_sched *s, tr_env *e) {
  tr_mon *m = tr_map_get(&s->mons, e->req);
  tr__env_free(s, e);
  if (!m) return;
  mon_unlink(s, m, tr__lookup(s, m->target), NULL);
  free(m);
}

static int monitor_here(tr_sched *s, tr_addr watcher, tr_addr target, uint64_t r) {
  tr_actor *w = tr__lookup(s, watcher);
  if (!w) return TR_EDEAD;
  tr_actor *t = tr__lookup(s, target);
  int remote = !t && tr__foreign(s, target) && tr__alive_any(s, target);
  if (!t && !remote) { /* already gone: the down message comes at once */
    down_now(s, r, watcher, target, "noproc");
    return 0;
  }
  tr_actor_cold *wc = tr__cold(w), *tc = t ? tr__cold(t) : NULL;
  tr_mon *m = wc && (tc || !t) ? calloc(1, sizeof *m) : NULL;
  if (!m) return TR_ENOMEM;
  m->ref = r;
  m->watcher = watcher;
  m->target = target;
  if (tr_map_put(&s->mons, r, m)) {
    free(m);
    return TR_ENOMEM;
  }
  if (t) {
    m->tnext = tc->mons;
    if (tc->mons) tc->mons->tprev = m;
    tc->mons = m;
  }
  m->wnext = wc->watching;
  if (wc->watching) wc->watching->wprev = m;
  wc->watching = m;
  if (remote) tr__op(s, target, op_mon_add, watcher, r, 0, NULL, 0);
  return 0;
}

static void op_monitor(tr_sched *s, tr_env *e) {
  tr_addr watcher = e->to, target = e->from;
  uint64_t r = e->req;
  tr__env_free(s, e);
  monitor_here(s, watcher, target, r);
}

int tr_monitor(tr_host *h, tr_addr watcher, tr_addr target, uint64_t *ref) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  if (!tr__alive_any(s, watcher)) return TR_EDEAD;
  tr_sched *ws = &h->sched[TR_ADDR_SCHED(watcher)];
  uint64_t r = ((uint64_t)ws->index << 56) | __atomic_add_fetch(&ws->next_mon, 1, __ATOMIC_RELAXED);
  if (ref) *ref = r;
  if (ws != s) return tr__op(s, watcher, op_monitor, target, r, 0, NULL, 0);
  return monitor_here(s, watcher, target, r);
}

static void op_demonitor(tr_sched *s, tr_env *e) {
  uint64_t r = e->req;
  tr__env_free(s, e);
  tr_mon *m = tr_map_get(&s->mons, r);
  if (!m) return;
  tr_actor *t = tr__lookup(s, m->target);
  mon_unlink(s, m, t, tr__lookup(s, m->watcher));
  if (!t && tr__foreign(s, m->target)) tr__op(s, m->target, op_mon_del, TR_NOADDR, r, 0, NULL, 0);
  free(m);
}

int tr_demonitor(tr_host *h, uint64_t ref) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  unsigned wi = (unsigned)(ref >> 56);
  if (wi >= h->nsched) return TR_ENOTFOUND;
  if (wi != s->index) /* another scheduler's watcher: done there */
    return tr__op(s, (tr_addr)wi << 48 | 1, op_demonitor, TR_NOADDR, ref, 0, NULL, 0);
  tr_mon *m = tr_map_get(&s->mons, ref);
  if (!m || m->watcher == TR_NOADDR || TR_ADDR_SCHED(m->watcher) != s->index) return TR_ENOTFOUND;
  tr_env *e = tr__env_new(s, NULL, 0, NULL, 0);
  if (!e) return TR_ENOMEM;
  e->req = ref;
  op_demonitor(s, e);
  return 0;
}

/* ---- links ------------------------------------------------------------------------- */
static int link_has(tr_actor *a, tr_addr peer) {
  for (tr_lnk *l = a->cold->links; l; l = l->next)
    if (l->peer == peer) return 1;
  return 0;
}

static int link_add(tr_actor *a, tr_addr peer) {
  if (link_has(a, peer)) return 0;
  tr_actor_cold *c = tr__cold(a);
  tr_lnk *l = c ? calloc(1, sizeof *l) : NULL;
  if (!l) return TR_ENOMEM;
  l->peer = peer;
  l->next = c->links;
  c->links = l;
  return 0;
}

static void link_del(tr_actor *a, tr_addr peer) {
  if (!a->cold->links) return; /* (none: its cold part may be the shared one) */
  for (tr_lnk **pp = &a->cold->links; *pp; pp = &(*pp)->next)
    if ((*pp)->peer == peer) {
      tr_lnk *l = *pp;
      *pp = l->next;
      free(l);
      return;
    }
}

static void op_link_exit(tr_sched *s, tr_env *e);

/* On one side's scheduler: add (code 1) or drop (code 0) its half of a link.
 * A side that is gone when the request comes answers as if it died then. */
static void op_link_half(tr_sched *s, tr_env *e) {
  tr_actor *x = tr__lookup(s, e->to);
  tr_addr self = e->to, peer = e->from;
  int add = e->status;
  tr__env_free(s, e);
  if (x) {
    if (add) link_add(x, peer);
    else link_del(x, peer);
  } else if (add) {
    char text[160], who[96];
    tr_addr_format(s->h, self, who, sizeof who);
    snprintf(text, sizeof text, "linked actor %s exited (noproc)", who);
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_addr(&b, self);
    pack_reason(&b, "noproc", NULL, NULL);
    tr_env *x2 = tr__env_new(s, text, strlen(text), b.data, b.len);
    tr_buf_free(&b);
    if (!x2) return;
    x2->kind = TR_K_OP;
    x2->op = op_link_exit;
    x2->to = peer;
    x2->from = self;
    x2->status = (int8_t)TR_EDEAD;
    if (TR_ADDR_SCHED(peer) == s->index) op_link_exit(s, x2);
    else tr__post(s, &s->h->sched[TR_ADDR_SCHED(peer)], x2);
  }
}

static int link_half(tr_sched *s, tr_addr self, tr_addr peer, int add) {
  tr_actor *x = tr__lookup(s, self);
  if (x) return add ? link_add(x, peer) : (link_del(x, peer), 0);
  return tr__op(s, self, op_link_half, peer, 0, add, NULL, 0);
}

int tr_link(tr_host *h, tr_addr a, tr_addr b) {
  if (!h || a == b) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  if (!tr__alive_any(s, a) || !tr__alive_any(s, b)) return TR_EDEAD;
  if (link_half(s, a, b, 1)) return TR_ENOMEM;
  if (link_half(s, b, a, 1)) {
    link_half(s, a, b, 0);
    return TR_ENOMEM;
  }
  return 0;
}

int tr_unlink(tr_host *h, tr_addr a, tr_addr b) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  int alive = tr__alive_any(s, a);
  if (alive) link_half(s, a, b, 0);
  if (tr__alive_any(s, b)) link_half(s, b, a, 0);
  return alive ? 0 : TR_EDEAD;
}

static void op_trap(tr_sched *s, tr_env *e) {
  tr_actor *x = tr__lookup(s, e->to);
  if (x) x->trap_exit = e->status != 0;
  tr__env_free(s, e);
}

int tr_trap_exit(tr_host *h, tr_addr a, int on) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  tr_actor *x = tr__lookup(s, a);
  if (!x) {
    if (!tr__alive_any(s, a)) return TR_EDEAD;
    return tr__op(s, a, op_trap, TR_NOADDR, 0, on != 0, NULL, 0);
  }
  x->trap_exit = on != 0;
  return 0;
}

static void exitq_push(tr_sched *s, tr_addr addr, const char *msg) {
  if (s->exitq_n == s->exitq_cap) {
    size_t cap = s->exitq_cap ? s->exitq_cap * 2 : 16;
    struct tr_exitq *q = realloc(s->exitq, cap * sizeof *q);
    if (!q) return;
    s->exitq = q;
    s->exitq_cap = cap;
  }
  s->exitq[s->exitq_n].addr = addr;
  s->exitq[s->exitq_n].msg = strdup(msg);
  s->exitq_n++;
}

/* Apply queued linked exits one by one (iteratively: a chain of 10,000
 * linked actors must not recurse 10,000 deep). */
void tr__drain_exits(tr_sched *s) {
  if (s->draining) return;
  s->draining = 1;
  while (s->exitq_n > 0) {
    struct tr_exitq x = s->exitq[--s->exitq_n];
    tr_actor *a = tr__lookup(s, x.addr);
    if (a) {
      if (a->running) { /* dies when its handler returns */
        if (!a->kill_pending) {
          tr_actor_cold *c = tr__cold(a); /* (none: it dies as killed, without the text) */
          a->kill_pending = 1;
          if (c) {
            c->kill_code = TR_ELINKED;
            free(c->kill_msg);
            c->kill_msg = x.msg;
            x.msg = NULL;
          }
        }
      } else {
        tr__actor_died(s, a, TR_ELINKED, x.msg, NULL);
      }
    }
    free(x.msg);
  }
  s->draining = 0;
}

/* ---- stop waiters ------------------------------------------------------------------- */
int tr__stopwait_add(tr_sched *s, tr_actor *a, uint64_t req, tr_addr caller) {
  (void)s;
  tr_actor_cold *c = tr__cold(a);
  tr_stopwait *w = c ? calloc(1, sizeof *w) : NULL;
  if (!w) return TR_ENOMEM;
  w->req = req;
  w->caller = caller;
  w->next = c->stopwait;
  c->stopwait = w;
  return 0;
}

static void stopwait_answer(tr_sched *s, tr_actor *a, int status, const char *text) {
  tr_stopwait *w = a->cold->stopwait;
  if (w) a->cold->stopwait = NULL;
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, text);
  while (w) {
    tr_stopwait *next = w->next;
    tr__reply(s, a->addr, w->caller, w->req, status, b.data, b.len);
    free(w);
    w = next;
  }
  tr_buf_free(&b);
}

static void c_hooks_stopped(tr_sched *s, tr_actor *a);

void tr__stop_finish(tr_sched *s, tr_actor *a, int vetoed) {
  if (a->state == TR_S_DEAD) return;
  if (vetoed) {
    a->stop_self = 0;
    stopwait_answer(s, a, TR_FAILED, "vetoed");
    return;
  }
  a->state = TR_S_STOPPING;
  c_hooks_stopped(s, a);
  tr__actor_died(s, a, TR_OK, NULL, NULL);
}

static void c_hooks_stopped(tr_sched *s, tr_actor *a) {
  if (a->lang == TR_LANG_C && a->started) tr__c_hooks(s, a, 1);
}

/* On the target's scheduler: wait for it to stop (answer req to caller with
 * the reason), and ask it to stop. Gone already: "noproc". */
static void op_stopwait(tr_sched *s, tr_env *e) {
  tr_actor *a = tr__lookup(s, e->to);
  uint64_t req = e->req;
  tr_addr caller = e->from, target = e->to;
  tr__env_free(s, e);
  if (!a || tr__stopwait_add(s, a, req, caller)) {
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_str(&b, a ? "out_of_memory" : "noproc");
    tr__reply(s, target, caller, req, a ? TR_ENOMEM : TR_OK, b.data, b.len);
    tr_buf_free(&b);
    return;
  }
  tr_stop(s->h, target);
}

int tr__stop_and_wait(tr_sched *s, tr_addr target, uint64_t req, tr_addr caller) {
  return tr__op(s, target, op_stopwait, caller, req, 0, NULL, 0);
}

int tr_shutdown(tr_host *h, tr_addr from, tr_addr target, int64_t timeout_ms,
                tr_reply_cb cb, void *ud) {
  if (!h || !cb) return TR_EINVAL;
  if (timeout_ms <= 0 && timeout_ms != TR_TIMEOUT_INFINITE && timeout_ms != TR_TIMEOUT_DEFAULT)
    return TR_EINVAL;
  tr_sched *s = tr__here(h);
  if (!tr__alive_any(s, target)) return TR_EDEAD;
  tr_pending *p = tr__pending_new(s, TR_P_CB, from, target, timeout_ms);
  if (!p) return TR_ENOMEM;
  p->cb = cb;
  p->ud = ud;
  p->kill_on_timeout = 1;
  int rc = tr__stop_and_wait(s, target, p->req, from);
  if (rc) {
    tr__pending_free(s, p);
    return rc;
  }
  return 0;
}

/* On a linked peer's scheduler: `from` exited (status: its code; method: the
 * linked_exit text; payload: on_exit's values). */
static void op_link_exit(tr_sched *s, tr_env *e) {
  tr_actor *peer = tr__lookup(s, e->to);
  if (peer && link_has(peer, e->from) && !tr__quiet(s)) {
    link_del(peer, e->from);
    if (peer->trap_exit) {
      tr_env *d = tr__env_new(s, "on_exit", 7, TR_ENV_PAYLOAD(e), e->len);
      if (d) {
        d->from = e->from;
        d->to = e->to;
        if (tr__deliver(s, d, 1, NULL)) tr__env_free(s, d);
      }
    } else if (abnormal(e->status)) {
      exitq_push(s, peer->addr, TR_ENV_METHOD(e));
      tr__drain_exits(s);
    }
  }
  tr__env_free(s, e);
}

/* ---- death -------------------------------------------------------------------------- */
void tr__death_notify(tr_sched *s, tr_actor *a, const char *who, int code, const char *msg,
                      const char *tb) {
  tr_host *h = s->h;
  int quiet = tr__quiet(s);
  const char *reason = tr__reason_name(code, a->stop_self);
  /* those waiting for it to stop hear the reason */
  if (a->cold->stopwait) stopwait_answer(s, a, TR_OK, reason);
  /* monitors it held */
  while (a->cold->watching) {
    tr_mon *m = a->cold->watching;
    tr_actor *t = tr_stab_get(&s->actors, TR_ADDR_SERIAL(m->target));
    if (t && t->addr != m->target) t = NULL;
    mon_unlink(s, m, t, a);
    if (tr__foreign(s, m->target) && !tr__closing(h)) /* cleanup, not a notice */
      tr__op(s, m->target, op_mon_del, TR_NOADDR, m->ref, 0, NULL, 0);
    free(m);
  }
  tr_buf b;
  tr_buf_init(&b);
  /* monitors on it */
  while (a->cold->mons) {
    tr_mon *m = a->cold->mons;
    int remote = tr__foreign(s, m->watcher);
    tr_actor *w = remote ? NULL : tr__lookup(s, m->watcher);
    mon_unlink(s, m, a, w);
    if ((w || remote) && !quiet) {
      tr_buf_reset(&b);
      tr_pack_int(&b, (int64_t)m->ref);
      tr_pack_addr(&b, a->addr);
      pack_reason(&b, reason, msg, tb);
      if (remote) tr__op(s, m->watcher, tr__op_mon_fire, a->addr, m->ref, 0, b.data, b.len);
      else send_system(s, m->watcher, a->addr, "on_down", &b);
    }
    free(m);
  }
  /* links */
  char text[256]; /* built only when there is a link to tell */
  if (a->cold->links) snprintf(text, sizeof text, "linked actor %s exited (%s)", who, reason);
  while (a->cold->links) {
    tr_lnk *l = a->cold->links;
    a->cold->links = l->next;
    if (tr__foreign(s, l->peer)) {
      if (!quiet) {
        tr_buf_reset(&b);
        tr_pack_addr(&b, a->addr);
        pack_reason(&b, reason, msg, tb);
        tr_env *x = tr__env_new(s, text, strlen(text), b.data, b.len);
        if (x) {
          x->kind = TR_K_OP;
          x->op = op_link_exit;
          x->to = l->peer;
          x->from = a->addr;
          x->status = (int8_t)code;
          tr__post(s, &h->sched[TR_ADDR_SCHED(l->peer)], x);
        }
      }
      free(l);
      continue;
    }
    tr_actor *peer = tr__lookup(s, l->peer);
    if (peer && !quiet) {
      link_del(peer, a->addr);
      if (peer->trap_exit) {
        tr_buf_reset(&b);
        tr_pack_addr(&b, a->addr);
        pack_reason(&b, reason, msg, tb);
        send_system(s, peer->addr, a->addr, "on_exit", &b);
      } else if (abnormal(code)) {
        exitq_push(s, peer->addr, text);
      }
    }
    free(l);
  }
  tr_buf_free(&b);
}
