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
    else if (target->mons == m) target->mons = m->tnext;
    if (m->tnext) m->tnext->tprev = m->tprev;
  }
  if (watcher) {
    if (m->wprev) m->wprev->wnext = m->wnext;
    else if (watcher->watching == m) watcher->watching = m->wnext;
    if (m->wnext) m->wnext->wprev = m->wprev;
  }
}

int tr_monitor(tr_host *h, tr_addr watcher, tr_addr target, uint64_t *ref) {
  if (!h) return TR_EINVAL;
  tr_actor *w = tr__lookup(h, watcher);
  if (!w) return TR_EDEAD;
  tr_sched *s = w->s;
  uint64_t r = ++s->next_mon;
  if (ref) *ref = r;
  tr_actor *t = tr__lookup(h, target);
  if (!t) { /* already gone: the down message comes at once */
    tr_buf b;
    tr_buf_init(&b);
    tr_pack_int(&b, (int64_t)r);
    tr_pack_addr(&b, target);
    pack_reason(&b, "noproc", NULL, NULL);
    send_system(s, watcher, target, "on_down", &b);
    tr_buf_free(&b);
    return 0;
  }
  tr_mon *m = calloc(1, sizeof *m);
  if (!m) return TR_ENOMEM;
  m->ref = r;
  m->watcher = watcher;
  m->target = target;
  if (tr_map_put(&s->mons, r, m)) {
    free(m);
    return TR_ENOMEM;
  }
  m->tnext = t->mons;
  if (t->mons) t->mons->tprev = m;
  t->mons = m;
  m->wnext = w->watching;
  if (w->watching) w->watching->wprev = m;
  w->watching = m;
  return 0;
}

int tr_demonitor(tr_host *h, uint64_t ref) {
  if (!h) return TR_EINVAL;
  tr_sched *s = &h->sched[0];
  tr_mon *m = tr_map_get(&s->mons, ref);
  if (!m) return TR_ENOTFOUND;
  mon_unlink(s, m, tr__lookup(h, m->target), tr__lookup(h, m->watcher));
  free(m);
  return 0;
}

/* ---- links ------------------------------------------------------------------------- */
static int link_has(tr_actor *a, tr_addr peer) {
  for (tr_lnk *l = a->links; l; l = l->next)
    if (l->peer == peer) return 1;
  return 0;
}

static int link_add(tr_actor *a, tr_addr peer) {
  if (link_has(a, peer)) return 0;
  tr_lnk *l = calloc(1, sizeof *l);
  if (!l) return TR_ENOMEM;
  l->peer = peer;
  l->next = a->links;
  a->links = l;
  return 0;
}

static void link_del(tr_actor *a, tr_addr peer) {
  for (tr_lnk **pp = &a->links; *pp; pp = &(*pp)->next)
    if ((*pp)->peer == peer) {
      tr_lnk *l = *pp;
      *pp = l->next;
      free(l);
      return;
    }
}

int tr_link(tr_host *h, tr_addr a, tr_addr b) {
  if (!h || a == b) return TR_EINVAL;
  tr_actor *x = tr__lookup(h, a), *y = tr__lookup(h, b);
  if (!x || !y) return TR_EDEAD;
  if (link_add(x, b)) return TR_ENOMEM;
  if (link_add(y, a)) {
    link_del(x, b);
    return TR_ENOMEM;
  }
  return 0;
}

int tr_unlink(tr_host *h, tr_addr a, tr_addr b) {
  if (!h) return TR_EINVAL;
  tr_actor *x = tr__lookup(h, a), *y = tr__lookup(h, b);
  if (x) link_del(x, b);
  if (y) link_del(y, a);
  return x ? 0 : TR_EDEAD;
}

int tr_trap_exit(tr_host *h, tr_addr a, int on) {
  if (!h) return TR_EINVAL;
  tr_actor *x = tr__lookup(h, a);
  if (!x) return TR_EDEAD;
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
    tr_actor *a = tr__lookup(s->h, x.addr);
    if (a) {
      if (a->running) { /* dies when its handler returns */
        if (!a->kill_pending) {
          a->kill_pending = 1;
          a->kill_code = TR_ELINKED;
          free(a->kill_msg);
          a->kill_msg = x.msg;
          x.msg = NULL;
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
  tr_stopwait *w = calloc(1, sizeof *w);
  if (!w) return TR_ENOMEM;
  w->req = req;
  w->caller = caller;
  w->next = a->stopwait;
  a->stopwait = w;
  return 0;
}

static void stopwait_answer(tr_sched *s, tr_actor *a, int status, const char *text) {
  tr_stopwait *w = a->stopwait;
  a->stopwait = NULL;
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

int tr_shutdown(tr_host *h, tr_addr from, tr_addr target, int64_t timeout_ms,
                tr_reply_cb cb, void *ud) {
  if (!h || !cb) return TR_EINVAL;
  if (timeout_ms <= 0 && timeout_ms != TR_TIMEOUT_INFINITE && timeout_ms != TR_TIMEOUT_DEFAULT)
    return TR_EINVAL;
  tr_actor *a = tr__lookup(h, target);
  if (!a) return TR_EDEAD;
  tr_sched *s = a->s;
  tr_pending *p = tr__pending_new(s, TR_P_CB, from, target, timeout_ms);
  if (!p) return TR_ENOMEM;
  p->cb = cb;
  p->ud = ud;
  p->kill_on_timeout = 1;
  int rc = tr__stopwait_add(s, a, p->req, from);
  if (rc) {
    tr__pending_free(s, p);
    return rc;
  }
  rc = tr_stop(h, target);
  if (rc) {
    tr__pending_free(s, p);
    return rc;
  }
  return 0;
}

/* ---- death -------------------------------------------------------------------------- */
void tr__death_notify(tr_sched *s, tr_actor *a, const char *who, int code, const char *msg,
                      const char *tb) {
  tr_host *h = s->h;
  const char *reason = tr__reason_name(code, a->stop_self);
  /* those waiting for it to stop hear the reason */
  if (a->stopwait) stopwait_answer(s, a, TR_OK, reason);
  /* monitors it held */
  while (a->watching) {
    tr_mon *m = a->watching;
    mon_unlink(s, m, tr_map_get(&s->actors, TR_ADDR_SERIAL(m->target)), a);
    free(m);
  }
  tr_buf b;
  tr_buf_init(&b);
  /* monitors on it */
  while (a->mons) {
    tr_mon *m = a->mons;
    tr_actor *w = tr__lookup(h, m->watcher);
    mon_unlink(s, m, a, w);
    if (w && !h->closing) {
      tr_buf_reset(&b);
      tr_pack_int(&b, (int64_t)m->ref);
      tr_pack_addr(&b, a->addr);
      pack_reason(&b, reason, msg, tb);
      send_system(s, m->watcher, a->addr, "on_down", &b);
    }
    free(m);
  }
  /* links */
  char text[256];
  snprintf(text, sizeof text, "linked actor %s exited (%s)", who, reason);
  while (a->links) {
    tr_lnk *l = a->links;
    a->links = l->next;
    tr_actor *peer = tr__lookup(h, l->peer);
    if (peer && !h->closing) {
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
