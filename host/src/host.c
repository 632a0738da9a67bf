/* The host: scheduler, actor table, mailboxes, calls, timers, names, death. */
#include "internal.h"
#include "cactor.h"

#include <assert.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tr__pack_vfmt(tr_buf *b, const char *fmt, va_list *ap);

/* ---- errors ------------------------------------------------------------------------ */
const char *tr_errname(int code) {
  switch (code) {
    case TR_OK: return "ok";
    case TR_FAILED: return "failed";
#define X(name, val, str, msg) \
  case val: return str;
    TR_ERRNO_MAP(X)
#undef X
  }
  return "unknown";
}

const char *tr_strerror(int code) {
  switch (code) {
    case TR_OK: return "success";
    case TR_FAILED: return "the handler answered with its own error value";
#define X(name, val, str, msg) \
  case val: return msg;
    TR_ERRNO_MAP(X)
#undef X
  }
  return "unknown error";
}

int tr_errcode(const char *name) {
  if (!name) return 0;
#define X(n, val, str, msg) \
  if (strcmp(name, str) == 0) return val;
  TR_ERRNO_MAP(X)
#undef X
  if (strcmp(name, "failed") == 0) return TR_FAILED;
  return 0;
}

void tr__log(tr_host *h, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (h && h->log) h->log(h->log_ud, line);
  else fprintf(stderr, "troupe: %s\n", line);
}

/* ---- lookups ----------------------------------------------------------------------- */
__thread tr_sched *tr__tls_sched;

int tr__alive_any(tr_sched *s, tr_addr a) {
  if (!tr__foreign(s, a)) return tr__lookup(s, a) != NULL;
  tr_sched *t = &s->h->sched[TR_ADDR_SCHED(a)];
  uv_mutex_lock(&t->actors_lock);
  tr_actor *act = tr_stab_get(&t->actors, TR_ADDR_SERIAL(a));
  int alive = (act && act->addr == a) /* present: alive, or dying right now */
              || tr_map_get(&t->reserved, TR_ADDR_SERIAL(a)); /* about to be */
  uv_mutex_unlock(&t->actors_lock);
  return alive;
}

int tr_alive(tr_host *h, tr_addr a) { return h && tr__alive_any(tr__here(h), a); }

int tr__owned_any(tr_sched *s, tr_addr a) {
  if (!tr__foreign(s, a)) {
    tr_actor *act = tr__lookup(s, a);
    return act && act->owned;
  }
  tr_sched *t = &s->h->sched[TR_ADDR_SCHED(a)];
  uv_mutex_lock(&t->actors_lock);
  tr_actor *act = tr_stab_get(&t->actors, TR_ADDR_SERIAL(a));
  int owned;
  if (act && act->addr == a) {
    owned = act->owned && act->state != TR_S_DEAD;
  } else {
    tr_spawnreq *q = tr_map_get(&t->reserved, TR_ADDR_SERIAL(a));
    owned = q && q->o.owned;
  }
  uv_mutex_unlock(&t->actors_lock);
  return owned;
}

const char *tr__addr_name(tr_host *h, tr_addr a) {
  tr_actor *act = h ? tr__lookup(tr__here(h), a) : NULL;
  if (!act) return NULL;
  if (act->lang == TR_LANG_C) return act->cb->name ? act->cb->name : "C";
  return tr__lua_behaviour_name(act);
}

size_t tr_addr_format(tr_host *h, tr_addr a, char *out, size_t cap) {
  char num[48];
  if (TR_ADDR_SCHED(a) == 0 && TR_ADDR_NODE(a) == 0)
    snprintf(num, sizeof num, "%" PRIu64, TR_ADDR_SERIAL(a));
  else if (TR_ADDR_NODE(a) == 0)
    snprintf(num, sizeof num, "%u.%" PRIu64, TR_ADDR_SCHED(a), TR_ADDR_SERIAL(a));
  else
    snprintf(num, sizeof num, "%u.%u.%" PRIu64, TR_ADDR_NODE(a), TR_ADDR_SCHED(a),
             TR_ADDR_SERIAL(a));
  tr_sched *s = h ? tr__here(h) : NULL;
  tr_actor *act = s ? tr__lookup(s, a) : NULL;
  int n;
  if (!h) n = snprintf(out, cap, "<actor %s>", num);
  else if (!act && tr__foreign(s, a)) { /* another scheduler's: read under its locks */
    tr_sched *t = &h->sched[TR_ADDR_SCHED(a)];
    tr_spawnreq *q;
    uv_mutex_lock(&t->actors_lock);
    tr_actor *f = tr_stab_get(&t->actors, TR_ADDR_SERIAL(a));
    if (f && f->addr == a) {
      const char *beh = f->lang == TR_LANG_C ? (f->cb->name ? f->cb->name : "C")
                                               : tr__lua_behaviour_name(f);
      uv_mutex_lock(&h->names_lock);
      if (f->names) n = snprintf(out, cap, "<actor %s %s \"%s\">", num, beh, f->names->name);
      else n = snprintf(out, cap, "<actor %s %s>", num, beh);
      uv_mutex_unlock(&h->names_lock);
    } else if ((q = tr_map_get(&t->reserved, TR_ADDR_SERIAL(a)))) { /* being made */
      const char *beh = q->lang == TR_LANG_C ? q->b->name : q->behname;
      if (q->name) n = snprintf(out, cap, "<actor %s %s \"%s\">", num, beh ? beh : "Actor", q->name);
      else n = snprintf(out, cap, "<actor %s %s>", num, beh ? beh : "Actor");
    } else {
      n = snprintf(out, cap, "<actor %s dead>", num);
    }
    uv_mutex_unlock(&t->actors_lock);
  } else if (!act) n = snprintf(out, cap, "<actor %s dead>", num);
  else if (act->names)
    n = snprintf(out, cap, "<actor %s %s \"%s\">", num, tr__addr_name(h, a), act->names->name);
  else n = snprintf(out, cap, "<actor %s %s>", num, tr__addr_name(h, a));
  return n < 0 ? 0 : (size_t)n;
}

static const char *fmt_addr(tr_host *h, tr_addr a, char *buf, size_t cap) {
  tr_addr_format(h, a, buf, cap);
  return buf;
}

uint64_t tr__now(tr_sched *s) { return uv_now(s->loop); }
uint64_t tr_now_ms(tr_host *h) { return h ? uv_now(tr__here(h)->loop) : 0; }

/* ---- envelopes --------------------------------------------------------------------- */
static inline __attribute__((always_inline)) tr_env *env_fill(tr_env *e, const char *method,
                                                         size_t mlen, const char *payload,
                                                         size_t len) {
  tr__copy(e->buf, method, mlen);
  e->buf[mlen] = 0;
  if (len) tr__copy(e->buf + mlen + 1, payload, len);
  e->next = NULL;
  e->from = e->to = TR_NOADDR;
  e->req = 0;
  e->kind = TR_K_SEND;
  e->status = 0;
  e->lane = 0;
  e->own = 0;
  e->mlen = (uint16_t)mlen;
  e->len = (uint32_t)len;
  return e;
}

static inline __attribute__((always_inline)) tr_env *env_new(tr_sched *s, const char *method, size_t mlen,
                                                        const char *payload, size_t len) {
  if (mlen > 0xFFFF || len > TR_MAX_PAYLOAD) return NULL;
  tr_env *e = s ? s->pool : NULL;
  size_t need = mlen + 1 + len;
  if (e) { /* (pooled: its buffer is the inline one, see env_free) */
    s->pool = e->next;
    s->pool_n--;
  } else {
    e = malloc(sizeof *e);
    if (!e) return NULL;
    e->buf = e->inl;
    e->cap = 0;
  }
  if (need > TR_ENV_INLINE) {
    e->buf = malloc(need);
    if (!e->buf) {
      free(e); /* (a pooled one too: the pool is only a cache) */
      return NULL;
    }
    e->cap = (uint32_t)need;
  }
  env_fill(e, method, mlen, payload, len);
  /* the Lua encoder's bytes with owned addresses: references for them (an
   * empty payload, as env_scalars asks for, has none) */
  if (len && __builtin_expect(s && payload == s->own_hint, 0)) tr__env_take_hint(s, e);
  return e;
}

/* An envelope that never leaves s and is freed by s (the INIT message of a
 * spawn on s), from s's arena and only as big as its bytes: a million
 * actors spawned in a row hold a million of them until their inits run.
 * Never pooled (tr__env_free returns it to the arena); a larger one, or
 * with the arena off, is an ordinary envelope. */
tr_env *tr__env_new_local(tr_sched *s, const char *method, size_t mlen, const char *payload,
                          size_t len) {
  size_t need = mlen + 1 + len;
  if (mlen > 0xFFFF || len > TR_MAX_PAYLOAD) return NULL;
  tr_env *e = need <= TR_ENV_INLINE ? tr_arena_alloc(&s->arena, offsetof(tr_env, inl) + need)
                                    : NULL;
  if (!e) return env_new(s, method, mlen, payload, len);
  e->buf = e->inl;
  e->cap = 0;
  env_fill(e, method, mlen, payload, len);
  if (__builtin_expect(payload == s->own_hint, 0)) tr__env_take_hint(s, e);
  return e;
}

tr_env *tr__env_new(tr_sched *s, const char *method, size_t mlen, const char *payload,
                    size_t len) {
  return env_new(s, method, mlen, payload, len);
}

static inline __attribute__((always_inline)) void env_free(tr_sched *s, tr_env *e) {
  if (!e) return;
  if (__builtin_expect(e->own, 0)) tr__env_disown(s, e);
  if (e->cap) { /* (a pooled envelope keeps the inline buffer: env_new) */
    free(e->buf);
    e->buf = e->inl;
    e->cap = 0;
  }
  if (s && tr_arena_owns(&s->arena, e)) { /* tr__env_new_local's */
    tr_arena_free(&s->arena, e);
    return;
  }
  if (s && s->pool_n < TR_ENV_POOL_MAX) {
    e->next = s->pool;
    s->pool = e;
    s->pool_n++;
  } else {
    free(e);
  }
}

void tr__env_free(tr_sched *s, tr_env *e) { env_free(s, e); }

/* env_free for an envelope that is not an INIT message, the only kind
 * tr__env_new_local makes (so not the arena's: no range test): a reply, a
 * send or a call. */
static inline __attribute__((always_inline)) void env_free_msg(tr_sched *s, tr_env *e) {
  assert(e->kind != TR_K_INIT && !tr_arena_owns(&s->arena, e));
  if (__builtin_expect(e->own, 0)) tr__env_disown(s, e);
  if (e->cap) {
    free(e->buf);
    e->buf = e->inl;
    e->cap = 0;
  }
  if (s->pool_n < TR_ENV_POOL_MAX) {
    e->next = s->pool;
    s->pool = e;
    s->pool_n++;
  } else {
    free(e);
  }
}

static void q_push(tr_queue *q, tr_env *e) {
  e->next = NULL;
  if (q->tail) q->tail->next = e;
  else q->head = e;
  q->tail = e;
  /* only the owner writes n; other schedulers read a public lane's depth
   * without the lock (deliver_foreign): a relaxed store (a plain one on x86) */
  __atomic_store_n(&q->n, q->n + 1, __ATOMIC_RELAXED);
}

static tr_env *q_pop(tr_queue *q) {
  tr_env *e = q->head;
  if (!e) return NULL;
  q->head = e->next;
  if (!q->head) q->tail = NULL;
  __atomic_store_n(&q->n, q->n - 1, __ATOMIC_RELAXED);
  e->next = NULL;
  return e;
}

/* ---- timers heap ------------------------------------------------------------------ */
static int tless(const tr_tentry *a, const tr_tentry *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_swap(tr_sched *s, uint32_t i, uint32_t j) {
  tr_tentry *t = s->heap[i];
  s->heap[i] = s->heap[j];
  s->heap[j] = t;
  s->heap[i]->idx = i;
  s->heap[j]->idx = j;
}

static void heap_up(tr_sched *s, uint32_t i) {
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (!tless(s->heap[i], s->heap[p])) break;
    heap_swap(s, i, p);
    i = p;
  }
}

static void heap_down(tr_sched *s, uint32_t i) {
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < s->heap_n && tless(s->heap[l], s->heap[m])) m = l;
    if (r < s->heap_n && tless(s->heap[r], s->heap[m])) m = r;
    if (m == i) break;
    heap_swap(s, i, m);
    i = m;
  }
}

static void on_timer(uv_timer_t *t);
static void sched_settle(tr_sched *s, int handled);

/* The uv timer is re-armed only when the earliest deadline moves earlier;
 * when it fires early it re-arms for the new minimum. While the heap is empty
 * it is unref'd, so an armed but stale timer never keeps the loop alive. This
 * keeps uv_timer_start/stop off the per-call path. */
/* The FIFO's first live entry: ids of calls answered since (no pending
 * call with that id, or its entry left the FIFO) are dropped on the way. */
static tr_tentry *fifo_first(tr_sched *s) {
  while (s->fifo_head < s->fifo_tail) {
    tr_pending *p = tr__pending_get(s, s->fifo[s->fifo_head]);
    if (p && p->te.idx == TR_IN_FIFO) return &p->te;
    s->fifo_head++;
  }
  return NULL;
}

static tr_tentry *timer_first(tr_sched *s) {
  tr_tentry *h = s->heap_n ? s->heap[0] : NULL, *f = s->fifo_live ? fifo_first(s) : NULL;
  if (!h) return f;
  if (!f) return h;
  return tless(f, h) ? f : h;
}

static void timer_arm(tr_sched *s) {
  s->timer_idle = 0;
  tr_tentry *first = timer_first(s);
  if (!first) {
    if (s->timer_ref) {
      uv_unref((uv_handle_t *)&s->timer);
      s->timer_ref = 0;
      /* armed_due != 0 only while ref'd (fifo_add tests one of them): the
       * next deadline starts the timer again, the stale firing finds
       * nothing */
      s->armed_due = 0;
    }
    return;
  }
  if (!s->timer_ref) {
    uv_ref((uv_handle_t *)&s->timer);
    s->timer_ref = 1;
  }
  uint64_t due = first->due;
  if (s->armed_due && s->armed_due <= due) return;
  uint64_t now = uv_now(s->loop);
  s->armed_due = due;
  uv_timer_start(&s->timer, on_timer, due > now ? due - now : 0, 0);
}

static int heap_add(tr_sched *s, tr_tentry *t, uint64_t due) {
  if (s->heap_n == s->heap_cap) {
    uint32_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
    tr_tentry **nh = realloc(s->heap, cap * sizeof *nh);
    if (!nh) return TR_ENOMEM;
    s->heap = nh;
    s->heap_cap = cap;
  }
  t->due = due;
  t->seq = ++s->tseq;
  t->idx = s->heap_n;
  s->heap[s->heap_n++] = t;
  heap_up(s, t->idx);
  if (t->idx == 0) timer_arm(s);
  return 0;
}

/* Room for one more id at the FIFO's tail: the stale ids go first; the
 * array grows when more than half of it is live. Amortised O(1) per call;
 * at most twice the live ids plus the stale ones since the last pass. */
static int fifo_room(tr_sched *s) {
  uint32_t n = 0;
  for (uint32_t i = s->fifo_head; i < s->fifo_tail; i++) {
    tr_pending *p = tr__pending_get(s, s->fifo[i]);
    if (p && p->te.idx == TR_IN_FIFO) s->fifo[n++] = s->fifo[i];
  }
  s->fifo_head = 0;
  s->fifo_tail = n;
  if (n < s->fifo_cap / 2) return 0;
  uint32_t cap = s->fifo_cap ? s->fifo_cap * 2 : 64;
  uint64_t *nf = realloc(s->fifo, (size_t)cap * sizeof *nf);
  if (!nf) return n < s->fifo_cap ? 0 : TR_ENOMEM;
  s->fifo = nf;
  s->fifo_cap = cap;
  return 0;
}

/* Appends the call `req` (t its entry) when due is not before the FIFO's
 * last deadline, else uses the heap. */
static inline __attribute__((always_inline)) int fifo_add(tr_sched *s, tr_tentry *t, uint64_t req,
                                                      uint64_t due) {
  if (due < s->fifo_last || (s->fifo_tail == s->fifo_cap && fifo_room(s)))
    return heap_add(s, t, due);
  t->due = due;
  t->seq = ++s->tseq;
  t->idx = TR_IN_FIFO;
  s->fifo[s->fifo_tail++] = req;
  s->fifo_last = due;
  /* the first deadline: unless the timer is ref'd and fires no later (the
   * usual case: it stayed ref'd since the previous call, see tr__timer_del) */
  if (s->fifo_live++ == 0 && !(s->armed_due - 1 < due)) /* (armed, ref'd, no later) */
    timer_arm(s);
  return 0;
}

static void heap_del(tr_sched *s, tr_tentry *t);
static inline __attribute__((always_inline)) void timer_del(tr_sched *s, tr_tentry *t) {
  if (!t || t->idx == UINT32_MAX) return;
  if (t->idx == TR_IN_FIFO) { /* its id stays behind, stale (fifo_first) */
    t->idx = UINT32_MAX;
    if (--s->fifo_live == 0) { /* none left: start again at the front */
      s->fifo_head = s->fifo_tail = 0;
      s->fifo_last = 0;
      if (s->heap_n == 0) s->timer_idle = 1;
    }
    return;
  }
  heap_del(s, t);
}

void tr__timer_del(tr_sched *s, tr_tentry *t) { timer_del(s, t); }

static void heap_del(tr_sched *s, tr_tentry *t) {
  uint32_t i = t->idx;
  t->idx = UINT32_MAX;
  s->heap_n--;
  if (i != s->heap_n) {
    s->heap[i] = s->heap[s->heap_n];
    s->heap[i]->idx = i;
    heap_up(s, i);
    heap_down(s, s->heap[i]->idx);
  }
  if (s->heap_n == 0 && !s->fifo_live) s->timer_idle = 1;
}

tr_tentry *tr__timer_add(tr_sched *s, uint8_t kind, void *p, int64_t delay_ms) {
  tr_tentry *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->kind = kind;
  t->p = p;
  if (delay_ms < 0) delay_ms = 0;
  uv_update_time(s->loop);
  if (heap_add(s, t, uv_now(s->loop) + (uint64_t)delay_ms)) {
    free(t);
    return NULL;
  }
  return t;
}

/* ---- scheduling -------------------------------------------------------------------- */
static void on_idle(uv_idle_t *i);

/* idle_on: the idle handle is started (kick runs once or twice per message) */
static inline void kick(tr_sched *s) {
  if (!s->idle_on) {
    s->idle_on = 1;
    uv_idle_start(&s->idle, on_idle);
  }
}

static int ready(const tr_actor *a) {
  if (a->state == TR_S_DEAD || a->running) return 0;
  if (a->wake || a->wait == TR_W_YIELD) return 1;
  if (a->wait != TR_W_NONE) return 0;
  return a->priv.n || a->pub.n || a->init_due;
}

static inline __attribute__((always_inline)) void runq_push(tr_sched *s, tr_actor *a) {
  a->in_runq = 1;
  a->runq_next = NULL;
  if (s->runq_tail) s->runq_tail->runq_next = a;
  else s->runq_head = a;
  s->runq_tail = a;
  kick(s);
}

static inline __attribute__((always_inline)) void schedule(tr_sched *s, tr_actor *a) {
  if (!a->in_runq && ready(a)) runq_push(s, a);
}

void tr__schedule(tr_sched *s, tr_actor *a) { schedule(s, a); }

/* Actor records come from their scheduler's arena (a page fault per 4 KiB of
 * them with malloc is most of a spawn's time in a VM), else from malloc. */
static tr_actor *actor_alloc(tr_sched *s) {
  tr_actor *a = tr_arena_alloc(&s->arena, sizeof *a);
  if (!a) a = calloc(1, sizeof *a);
  else memset(a, 0, sizeof *a);
  if (a) a->cold = (tr_actor_cold *)&tr__cold_none;
  return a;
}

/* Read by every actor that has no cold part of its own: never written (it
 * is in read-only memory, so a write through an actor's `cold` that did
 * not go through tr__cold faults at once). */
const tr_actor_cold tr__cold_none = {.env_ref = LUA_NOREF};

tr_actor_cold *tr__cold_make(tr_actor *a) {
  tr_actor_cold *c = tr_arena_alloc(&a->s->arena, sizeof *c);
  if (!c) c = malloc(sizeof *c);
  if (!c) return NULL;
  *c = tr__cold_none;
  a->cold = c;
  return c;
}

static void actor_mem_free(tr_actor *a) {
  tr_arena *ar = &a->s->arena;
  if (a->s->dc_actor == a) a->s->dc_actor = NULL;
  if (a->cold != &tr__cold_none) {
    if (tr_arena_owns(ar, a->cold)) tr_arena_free(ar, a->cold);
    else free(a->cold);
  }
  if (tr_arena_owns(ar, a)) tr_arena_free(ar, a);
  else free(a);
}

static void actor_free_if_done(tr_sched *s, tr_actor *a) {
  (void)s;
  if (a->state == TR_S_DEAD && !a->in_runq && !a->running) {
    free(a->cold->kill_msg);
    free(a->cold->interrupt);
    actor_mem_free(a);
  }
}

/* ---- delivery ------------------------------------------------------------------------ */
static void room_made(tr_sched *s, tr_actor *a);

/* To another scheduler's actor: its owner queues it (and answers a call to
 * an actor that died meanwhile). The public messages on their way are
 * counted on the actor (`inflight`), so that a full mailbox there pushes
 * back as one here does: TR_EFULL when its depth as recently seen (the
 * owner's count plus what is on its way) has reached the bound. The
 * private lane never refuses. */
/* A message from a traced actor is on its way: the `->` line. */
static void trace_out_hook(tr_sched *s, const tr_env *e, tr__trace_fn tf) {
  if (e->from != e->to) {
    tr_actor *fa = tr__lookup(s, e->from);
    if (fa && fa->traced) tf(s->h, s->h->trace_ud, TR_EV_OUT, fa, e, 0, TR_ENV_PAYLOAD(e), e->len);
  }
}
/* (the test inline, the rest out of line: every message pays the test) */
static inline __attribute__((always_inline)) void trace_out(tr_sched *s, const tr_env *e) {
  tr__trace_fn tf = tr__tracer(s->h);
  if (__builtin_expect(tf != NULL, 0)) trace_out_hook(s, e, tf);
}

/* May a message for `to` (an actor of scheduler t, asked from any thread)
 * be posted to t's inbox? TR_EDEAD if it is gone, TR_EFULL if its public
 * lane is full as recently seen; else 0, and *counted says whether it was
 * counted on its way (then its owner queues it whatever the depth is when
 * it arrives). An actor whose spawn is still on its way is not counted. */
static int admit_foreign(tr_sched *t, tr_addr to, int private_lane, int *counted) {
  uint64_t serial = TR_ADDR_SERIAL(to);
  int rc = 0;
  *counted = 0;
  uv_mutex_lock(&t->actors_lock);
  tr_actor *f = tr_stab_get(&t->actors, serial);
  if (f && f->addr == to) {
    if (!private_lane) {
      /* the owner changes the depth without the lock: a recent value */
      uint32_t depth = __atomic_load_n(&f->pub.n, __ATOMIC_RELAXED) +
                       __atomic_load_n(&f->inflight, __ATOMIC_RELAXED);
      if (depth >= f->cap) rc = TR_EFULL;
      else {
        __atomic_add_fetch(&f->inflight, 1, __ATOMIC_RELAXED);
        *counted = 1;
      }
    }
  } else if (!tr_map_get(&t->reserved, serial)) {
    rc = TR_EDEAD;
  }
  uv_mutex_unlock(&t->actors_lock);
  return rc;
}

/* Undo admit_foreign's count for a message that will not be posted. */
static void uncount_inflight(tr_sched *t, tr_addr to) {
  uv_mutex_lock(&t->actors_lock);
  tr_actor *f = tr_stab_get(&t->actors, TR_ADDR_SERIAL(to));
  if (f && f->addr == to) __atomic_sub_fetch(&f->inflight, 1, __ATOMIC_RELAXED);
  uv_mutex_unlock(&t->actors_lock);
}

static int deliver_foreign(tr_sched *s, tr_env *e, int private_lane) {
  tr_sched *t = &s->h->sched[TR_ADDR_SCHED(e->to)];
  int counted, rc = admit_foreign(t, e->to, private_lane, &counted);
  if (rc) return rc;
  e->lane = private_lane ? 1 : counted ? 3 : 0;
  trace_out(s, e); /* (before the post: then e is the owner's) */
  tr__post(s, t, e);
  return 0;
}

int tr__deliver_admit(tr_sched *s, tr_env *e) {
  tr_sched *t = &s->h->sched[TR_ADDR_SCHED(e->to)];
  if (!tr__alive_any(s, e->to)) return TR_EDEAD;
  e->lane = 4;
  trace_out(s, e);
  tr__post(s, t, e);
  return 0;
}

/* tr__lookup for a delivery: a client sends to or calls the same actor again
 * and again, so the last one found is kept (until its record is freed). */
static inline __attribute__((always_inline)) tr_actor *deliver_lookup(tr_sched *s, tr_addr to) {
  tr_actor *a = s->dc_actor;
  if (a && to == s->dc_addr) return a->state == TR_S_DEAD ? NULL : a;
  a = tr__lookup(s, to);
  if (a) {
    s->dc_addr = to;
    s->dc_actor = a;
  }
  return a;
}

static inline __attribute__((always_inline)) int deliver(tr_sched *s, tr_env *e, int private_lane, tr_actor **full) {
  tr_actor *a = deliver_lookup(s, e->to);
  if (!a) {
    if (!tr__foreign(s, e->to)) return TR_EDEAD;
    return deliver_foreign(s, e, private_lane);
  }
  /* what is on its way from other threads counts too: it will be queued
   * whatever the depth when it comes */
  if (!private_lane && a->pub.n + __atomic_load_n(&a->inflight, __ATOMIC_RELAXED) >= a->cap) {
    if (full) *full = a;
    return TR_EFULL;
  }
  q_push(private_lane ? &a->priv : &a->pub, e);
  s->n_msgs++;
  trace_out(s, e);
  /* ready() with a message just queued: alive (looked up), not waiting,
   * so runnable unless it runs now (a send to itself) */
  if (a->wait == TR_W_NONE && !a->in_runq && !a->running) runq_push(s, a);
  return 0;
}

int tr__deliver(tr_sched *s, tr_env *e, int private_lane, tr_actor **full) {
  return deliver(s, e, private_lane, full);
}

int tr__enqueue_room_wait(tr_sched *s, tr_actor *target, tr_addr sender, tr_env *e) {
  (void)s;
  tr_actor_cold *c = tr__cold(target);
  tr_roomwait *w = c ? calloc(1, sizeof *w) : NULL;
  if (!w) return TR_ENOMEM;
  w->sender = sender;
  w->env = e;
  if (c->room_tail) c->room_tail->next = w;
  else c->room_head = w;
  c->room_tail = w;
  return 0;
}

/* tr_notify_room has no `from`: the C actor whose code runs now asks (a
 * room callback's asker, a reply callback's caller, the C actor whose
 * handler runs), or main code (NULL). */
static tr_actor *c_asker(tr_sched *s) {
  tr_actor *a;
  if (s->room_cb_depth) a = s->room_asker == TR_NOADDR ? NULL : tr__lookup(s, s->room_asker);
  else if (!(a = s->cb_actor) && (a = s->current) && !a->running) a = NULL;
  return a && a->lang == TR_LANG_C && a->state != TR_S_DEAD ? a : NULL;
}

static void asks_unlink(tr_roomwait *w) {
  if (!w->asker) return;
  tr_actor_cold *c = w->asker->cold;
  if (w->aprev) w->aprev->anext = w->anext;
  else c->asks = w->anext;
  if (w->anext) w->anext->aprev = w->aprev;
  w->aprev = w->anext = NULL;
  w->asker = NULL;
}

/* A tr_notify_room callback of this scheduler: code in it asks on behalf of
 * `asker` (TR_NOADDR: nobody). */
static void room_cb_call(tr_sched *s, tr_addr asker, tr_room_cb cb, tr_addr to, int status,
                         void *ud) {
  tr_addr prev = s->room_asker;
  s->room_asker = asker;
  s->room_cb_depth++;
  cb(s->h, to, status, ud);
  s->room_cb_depth--;
  s->room_asker = prev;
}

/* w's callback, with its status (w leaves its asker's list first). */
static void room_cb_run(tr_sched *s, tr_roomwait *w, tr_addr to, int status) {
  tr_addr asker = w->asker ? w->asker->addr : TR_NOADDR;
  asks_unlink(w);
  room_cb_call(s, asker, w->cb, to, status, w->ud);
}

/* A message left the public lane: let one waiting sender in. */
static void room_made(tr_sched *s, tr_actor *a) {
  tr_actor_cold *c = a->cold; /* (its own: it has room waiters) */
  while (c->room_head && a->pub.n < a->cap) {
    tr_roomwait *w = c->room_head;
    if (w->cancelled) { /* its asker died (and heard so) */
      c->room_head = w->next;
      if (!c->room_head) c->room_tail = NULL;
      free(w);
      continue;
    }
    /* another scheduler's asker tries its send again: room for it counts
     * what is on its way too, as that send will */
    if (!w->env && !w->cb &&
        a->pub.n + __atomic_load_n(&a->inflight, __ATOMIC_RELAXED) >= a->cap)
      break;
    c->room_head = w->next;
    if (!c->room_head) c->room_tail = NULL;
    if (w->env && tr__foreign(s, w->sender)) { /* another scheduler's sender: admit */
      if (w->env->kind == TR_K_CALL) { /* its caller now waits for the answer */
        q_push(&a->pub, w->env);
        s->n_msgs++;
      } else { /* the send went through: tell it */
        uint64_t req = w->env->req;
        w->env->req = 0;
        q_push(&a->pub, w->env);
        s->n_msgs++;
        tr__reply(s, a->addr, w->sender, req, TR_OK, NULL, 0);
      }
    } else if (w->env) {
      tr_actor *sender = tr__lookup(s, w->sender);
      int is_call = w->env->kind == TR_K_CALL;
      /* a call that gave up meanwhile (timeout) no longer waits for room */
      /* ...and a sender interrupted meanwhile may now wait for room elsewhere */
      if (sender && sender->wait == TR_W_ROOM && sender->wait_target == a->addr &&
          (!is_call || (sender->wait_req == w->env->req &&
                        tr__pending_get(s, w->env->req)))) {
        q_push(&a->pub, w->env);
        s->n_msgs++;
        if (is_call) {
          tr__set_wait(sender, TR_W_CALL); /* in the mailbox: now wait for the answer */
        } else {
          tr__set_wait(sender, TR_W_YIELD); /* resume: the send went through */
          tr__set_wait_target(sender, TR_NOADDR);
          tr__schedule(s, sender);
        }
      } else {
        tr__env_free(s, w->env); /* the sender died meanwhile */
      }
    } else if (w->cb) {
      room_cb_run(s, w, a->addr, 0);
    } else { /* another scheduler's asker (tr__room_wait) */
      tr__reply(s, a->addr, w->sender, w->req, TR_OK, NULL, 0);
    }
    free(w);
  }
}

/* tr__room_wait, on the owner of e->to: e->from asks, e->req answers. */
static void op_room_wait(tr_sched *s, tr_env *e) {
  tr_actor *a = tr__lookup(s, e->to);
  tr_addr to = e->to, caller = e->from;
  uint64_t req = e->req;
  tr__env_free(s, e);
  tr_roomwait *w = NULL;
  tr_actor_cold *c = NULL;
  int status = TR_OK;
  if (!a) status = TR_EDEAD;
  else if (a->pub.n + __atomic_load_n(&a->inflight, __ATOMIC_RELAXED) >= a->cap &&
           (!(c = tr__cold(a)) || !(w = calloc(1, sizeof *w))))
    status = TR_ENOMEM;
  if (!w) {
    tr__reply(s, to, caller, req, status, NULL, 0);
    return;
  }
  w->sender = caller;
  w->req = req;
  if (c->room_tail) c->room_tail->next = w;
  else c->room_head = w;
  c->room_tail = w;
}

int tr__room_wait(tr_sched *s, tr_addr to, tr_addr caller, uint64_t req) {
  return tr__op(s, to, op_room_wait, caller, req, 0, NULL, 0);
}

int tr__room_wait_blocking(tr_sched *s, tr_addr to) {
  if (s->in_callback) return TR_EFULL;
  tr_pending *p = tr__pending_new(s, TR_P_BLOCK, TR_NOADDR, to, TR_TIMEOUT_INFINITE);
  if (!p) return TR_ENOMEM;
  int rc = tr__room_wait(s, to, TR_NOADDR, p->req);
  if (rc == 0) rc = tr__block_until(s, &p->done);
  if (rc == 0) rc = p->result ? p->result->status : TR_ESTOPPED; /* none: the host is freed */
  else if (rc == TR_ESTOPPED && !__atomic_load_n(&s->h->exiting, __ATOMIC_ACQUIRE))
    rc = TR_EFULL; /* nothing left to run makes room (as for a mailbox of s) */
  /* given up: a late answer finds nothing */
  tr__pending_free(s, p);
  return rc;
}

/* tr_notify_room on another scheduler's actor: a pending call of the asking
 * scheduler (no timeout) that the owner answers (tr__room_wait); its
 * callback calls the user's, on the asker's thread. */
typedef struct tr_roomask {
  tr_room_cb cb;
  void *ud;
  tr_addr to;
} tr_roomask;

static void room_answer(tr_host *h, int status, const tr_msg *m, void *ud) {
  (void)m;
  tr_roomask r = *(tr_roomask *)ud;
  free(ud);
  r.cb(h, r.to, status, r.ud);
}

int tr_notify_room(tr_host *h, tr_addr to, tr_room_cb cb, void *ud) {
  if (!h || !cb) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  tr_actor *a = tr__lookup(s, to), *asker = c_asker(s);
  if (!a) {
    if (!tr__foreign(s, to) || !tr__alive_any(s, to)) return TR_EDEAD;
    tr_roomask *r = malloc(sizeof *r);
    /* the asker's pending call: if it dies first, its callback hears
     * TR_EDEAD then, as for its other calls */
    tr_pending *p = r ? tr__pending_new(s, TR_P_CB, asker ? asker->addr : TR_NOADDR, to,
                                        TR_TIMEOUT_INFINITE)
                      : NULL;
    if (!p) {
      free(r);
      return TR_ENOMEM;
    }
    r->cb = cb;
    r->ud = ud;
    r->to = to;
    p->cb = room_answer;
    p->ud = r;
    int rc = tr__room_wait(s, to, TR_NOADDR, p->req);
    if (rc) {
      tr__pending_free(s, p);
      free(r);
    }
    return rc;
  }
  tr_actor_cold *c = tr__cold(a), *ac = asker ? tr__cold(asker) : NULL;
  tr_roomwait *w = c && (!asker || ac) ? calloc(1, sizeof *w) : NULL;
  if (!w) return TR_ENOMEM;
  w->cb = cb;
  w->ud = ud;
  w->to = to;
  if (asker) {
    w->asker = asker;
    w->anext = ac->asks;
    if (ac->asks) ac->asks->aprev = w;
    ac->asks = w;
  }
  if (c->room_tail) c->room_tail->next = w;
  else c->room_head = w;
  c->room_tail = w;
  if (a->pub.n < a->cap) room_made(a->s, a);
  return 0;
}

/* ---- pending calls ------------------------------------------------------------------- */
/* A free slot for a new pending call (its index), or -1 (no memory, or
 * 2^TR_REQ_IDX_BITS calls pending at once on this scheduler). */
static int64_t pslot_grow(tr_sched *s);
static inline __attribute__((always_inline)) int64_t pslot_take(tr_sched *s) {
  if (s->pfree) {
    uint32_t i = s->pfree - 1;
    s->pfree = s->pslots[i].next;
    return i;
  }
  return pslot_grow(s);
}

static int64_t pslot_grow(tr_sched *s) {
  if (s->pslots_n == s->pslots_cap) {
    uint64_t cap = s->pslots_cap ? (uint64_t)s->pslots_cap * 2 : 64;
    if (cap > TR_REQ_IDX_MASK + 1) cap = TR_REQ_IDX_MASK + 1;
    if (cap == s->pslots_n) return -1;
    tr_pslot *ns = realloc(s->pslots, cap * sizeof *ns);
    if (!ns) return -1;
    s->pslots = ns;
    s->pslots_cap = (uint32_t)cap;
  }
  s->pslots[s->pslots_n].gen = 0;
  return s->pslots_n++;
}

static inline __attribute__((always_inline)) void pslot_put(tr_sched *s, uint32_t i) {
  s->pslots[i].p = NULL;
  s->pslots[i].next = s->pfree;
  s->pfree = i + 1;
}

static inline __attribute__((always_inline)) tr_pending *pending_new(tr_sched *s, uint8_t kind, tr_addr caller,
                                                                tr_addr target, int64_t timeout_ms,
                                                                tr_reply_cb cb, void *ud) {
  int64_t slot = pslot_take(s);
  if (slot < 0) return NULL;
  tr_pending *p = s->ppool;
  if (p) {
    s->ppool = p->next;
    s->ppool_n--;
  } else {
    p = malloc(sizeof *p);
    if (!p) {
      pslot_put(s, (uint32_t)slot);
      return NULL;
    }
    /* what an entry keeps through the pool (te.due and te.seq mean
     * something only while te.idx says it is in the heap or the FIFO) */
    p->te.actor = TR_NOADDR;
    p->te.kind = TR_T_TIMEOUT;
    p->te.p = p;
  }
  /* every other field (a memset of the whole entry costs more) */
  p->cb = cb;
  p->ud = ud;
  p->result = NULL;
  p->done = 0;
  p->kill_on_timeout = 0;
  p->prev = p->next = p->done_next = NULL;
  p->owner = NULL;
  tr_pslot *sl = &s->pslots[slot];
  if (++sl->gen == 0) sl->gen = 1; /* (wrapped: ids are never 0) */
  sl->p = p;
  p->te.idx = UINT32_MAX;
  p->req = ((uint64_t)s->index << 56) | ((uint64_t)sl->gen << TR_REQ_IDX_BITS) | (uint64_t)slot;
  p->kind = kind;
  p->caller = caller;
  p->target = target;
  /* inside a callback the loop clock is fresh; from main code it may be as
   * old as the last loop run (a long computation would eat the timeout).
   * (loop->time is what uv_now returns, without a call through the PLT) */
  if (timeout_ms == TR_TIMEOUT_DEFAULT || timeout_ms == 0) { /* call_timeout > 0 */
    if (!s->in_callback) uv_update_time(s->loop);
    if (fifo_add(s, &p->te, p->req, s->loop->time + (uint64_t)s->h->call_timeout)) {
      pslot_put(s, (uint32_t)slot);
      free(p);
      return NULL;
    }
  } else if (timeout_ms != TR_TIMEOUT_INFINITE) {
    if (!s->in_callback) uv_update_time(s->loop);
    if (timeout_ms < 0) timeout_ms = 0;
    if (heap_add(s, &p->te, s->loop->time + (uint64_t)timeout_ms)) {
      pslot_put(s, (uint32_t)slot);
      free(p);
      return NULL;
    }
  }
  /* a C callback calling again (the usual request/reply loop) is its own
   * caller: no lookup */
  tr_actor *a = s->cb_actor && s->cb_actor->addr == caller && s->cb_actor->state != TR_S_DEAD
                    ? s->cb_actor
                    : tr__lookup(s, caller);
  if (a) {
    p->next = a->calls;
    if (a->calls) a->calls->prev = p;
    a->calls = p;
    p->owner = a;
  }
  s->n_calls++;
  return p;
}

tr_pending *tr__pending_new(tr_sched *s, uint8_t kind, tr_addr caller, tr_addr target,
                            int64_t timeout_ms) {
  return pending_new(s, kind, caller, target, timeout_ms, NULL, NULL);
}

/* Detach p from every index (its slot, the timeouts, the caller's list). */
static inline __attribute__((always_inline)) void pending_detach(tr_sched *s, tr_pending *p) {
  pslot_put(s, (uint32_t)(p->req & TR_REQ_IDX_MASK));
  timer_del(s, &p->te);
  tr_actor *a = p->owner;
  if (a) {
    if (p->prev) p->prev->next = p->next;
    else if (a->calls == p) a->calls = p->next;
    if (p->next) p->next->prev = p->prev;
    p->owner = NULL;
  }
  p->prev = p->next = NULL;
}

static inline __attribute__((always_inline)) void pending_release(tr_sched *s, tr_pending *p) {
  if (s->ppool_n < TR_ENV_POOL_MAX) {
    p->next = s->ppool;
    s->ppool = p;
    s->ppool_n++;
  } else {
    free(p);
  }
}

void tr__pending_free(tr_sched *s, tr_pending *p) {
  if (!p) return;
  if (tr__pending_get(s, p->req) == p) pending_detach(s, p);
  tr__env_free(s, p->result);
  p->result = NULL;
  pending_release(s, p);
}

/* A reply (or a system error) arrived for p: hand it to whoever waits. */
static inline __attribute__((always_inline)) void complete(tr_sched *s, tr_pending *p, tr_env *e) {
  tr_actor *owner = p->owner;
  pending_detach(s, p);
  switch (p->kind) {
    case TR_P_LUA: {
      tr_actor *a = tr__lookup(s, p->caller);
      /* W_ROOM: the call timed out while its message waited for room */
      if (a && (a->wait == TR_W_CALL || a->wait == TR_W_ROOM) && a->wait_req == p->req) {
        a->wake = e;
        tr__set_wait(a, TR_W_NONE);
        tr__set_wait_target(a, TR_NOADDR);
        tr__schedule(s, a);
      } else {
        tr__env_free(s, e);
      }
      pending_release(s, p);
      break;
    }
    case TR_P_CB:
      p->result = e;
      p->owner = owner; /* no longer in its list: the actor the callback runs for */
      p->done_next = NULL;
      if (s->done_tail) s->done_tail->done_next = p;
      else s->done_head = p;
      s->done_tail = p;
      kick(s);
      break;
    case TR_P_BLOCK:
      p->result = e;
      p->done = 1;
      s->break_idle = 1;
      break;
  }
}

/* tr__msg_try_one for the C paths (a C handler's arguments, an answer
 * before its C callback): the same result, with one dispatch on the first
 * byte for an integer, the usual payload there, instead of the range tests
 * that come before tr__scalar_next's switch; anything else goes there. */
static inline __attribute__((always_inline)) int msg_try_one_c(tr_msg *m) {
  const unsigned char *p = (const unsigned char *)m->data;
  size_t n = m->len, off = 0;
  msgpack_object *o = &m->v_inl[0];
  int ok;
  if (!n) return 0;
  switch (p[0]) {
    case 0x00 ... 0x7f:
      o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
      o->via.u64 = p[0];
      off = 1;
      ok = 1;
      break;
    case 0xcc: ok = tr__scalar_uint(p, n, &off, o, 1); break;
    case 0xcd: ok = tr__scalar_uint(p, n, &off, o, 2); break;
    case 0xce: ok = tr__scalar_uint(p, n, &off, o, 4); break;
    case 0xcf: ok = tr__scalar_uint(p, n, &off, o, 8); break;
    case 0xd0: ok = tr__scalar_int(p, n, &off, o, 1); break;
    case 0xd1: ok = tr__scalar_int(p, n, &off, o, 2); break;
    case 0xd2: ok = tr__scalar_int(p, n, &off, o, 4); break;
    case 0xd3: ok = tr__scalar_int(p, n, &off, o, 8); break;
    default: return tr__msg_try_one(m);
  }
  if (ok && off == n) {
    m->n = 1;
    return m->parsed = 1;
  }
  return 0; /* not parsed (m->v[0] may hold anything) */
}

static inline __attribute__((always_inline)) void done_deliver(tr_sched *s, tr_pending *p) {
  tr_msg m;
  tr__msg_init(&m, TR_ENV_PAYLOAD(p->result), p->result->len);
  /* a reply of one scalar (the usual) is read here, inline: the callback's
   * reader then finds it parsed; any other stays for the first reader */
  msg_try_one_c(&m);
  /* not restored after a nested delivery (a death inside a callback
   * delivers the dead actor's answers): the outer one may have died there */
  s->cb_actor = p->owner;
  p->owner = NULL;
  p->cb(s->h, p->result->status, &m, p->ud);
  s->cb_actor = NULL;
  tr__msg_done(&m);
  env_free_msg(s, p->result);
  p->result = NULL;
  pending_release(s, p);
}

static inline __attribute__((always_inline)) void run_done_inl(tr_sched *s) {
  while (s->done_head) {
    tr_pending *p = s->done_head;
    s->done_head = p->done_next;
    if (!s->done_head) s->done_tail = NULL;
    done_deliver(s, p);
  }
}

static void run_done_all(tr_sched *s) { run_done_inl(s); }

static inline void run_done(tr_sched *s) {
  if (s->done_head) run_done_all(s);
}

/* Answers already queued for `caller`'s C callbacks: take them out of the
 * completion queue and deliver them now (the caller is dying and its state,
 * which a callback's `ud` may point into, is about to go). */
static void done_flush_caller(tr_sched *s, tr_addr caller) {
  tr_pending *mine = NULL, **tail = &mine, *prev = NULL;
  for (tr_pending *p = s->done_head, *next; p; p = next) {
    next = p->done_next;
    if (p->caller != caller) {
      prev = p;
      continue;
    }
    if (prev) prev->done_next = next;
    else s->done_head = next;
    if (s->done_tail == p) s->done_tail = prev;
    p->done_next = NULL;
    *tail = p;
    tail = &p->done_next;
  }
  while (mine) { /* the list is private: callbacks may touch the queue */
    tr_pending *p = mine;
    mine = p->done_next;
    done_deliver(s, p);
  }
}

/* Where the answer to `req` goes: 1 with *p its pending call here, or with
 * *p NULL for a caller on another scheduler; 0 for nowhere (a late reply:
 * the caller gave up or died; or a bad id). */
static inline __attribute__((always_inline)) int reply_dest(tr_sched *s, tr_addr from, uint64_t req, int status,
                                                     const char *payload, size_t len,
                                                     tr_pending **p) {
  unsigned ci = (unsigned)(req >> 56);
  *p = NULL;
  if (ci != s->index && ci >= s->h->nsched) return 0; /* (this one's: the usual) */
  tr__trace_fn tf = tr__tracer(s->h);
  if (tf) { /* an answer to a caller on any scheduler */
    tr_actor *fa = tr__lookup(s, from);
    if (fa && fa->traced) tf(s->h, s->h->trace_ud, TR_EV_REPLY, fa, NULL, status, payload, len);
  }
  if (ci != s->index) return 1;
  *p = tr__pending_get(s, req);
  return *p != NULL;
}

/* Hand the reply envelope e to its caller's pending call p, or to the
 * caller's scheduler. */
static inline __attribute__((always_inline)) void reply_send(tr_sched *s, tr_pending *p, tr_env *e) {
  if (p) complete(s, p, e);
  else tr__post(s, &s->h->sched[e->req >> 56], e); /* the caller waits on another scheduler */
}

void tr__reply(tr_sched *s, tr_addr from, tr_addr caller, uint64_t req, int status,
               const char *payload, size_t len) {
  tr_pending *p;
  if (!reply_dest(s, from, req, status, payload, len, &p)) return;
  tr_env *e = tr__env_new(s, NULL, 0, payload, len);
  if (!e) { /* no memory for the answer: the caller still hears once */
    e = tr__env_new(s, NULL, 0, NULL, 0);
    if (!e) return;
    status = TR_ENOMEM;
  }
  e->kind = TR_K_REPLY;
  e->from = from;
  e->to = caller;
  e->req = req;
  e->status = (int8_t)status;
  reply_send(s, p, e);
}

/* hint: the payload may be the Lua encoder's bytes (tr_sched.own_hint); a C
 * handler's reply buffer never is */
static inline __attribute__((always_inline)) void reply_in(tr_sched *s, tr_env *e, tr_addr from,
                                                          int status, const char *payload,
                                                          size_t len, int hint) {
  if (len + 1 > (e->cap ? e->cap : TR_ENV_INLINE)) { /* too big for it: a new one */
    tr__reply(s, from, e->from, e->req, status, payload, len);
    tr__env_free(s, e);
    return;
  }
  tr_pending *p;
  if (!reply_dest(s, from, e->req, status, payload, len, &p)) {
    tr__env_free(s, e);
    return;
  }
  if (e->own) tr__env_disown(s, e); /* the call's arguments go */
  e->buf[0] = 0; /* no method */
  if (len) tr__copy(e->buf + 1, payload, len);
  e->mlen = 0;
  e->len = (uint32_t)len;
  e->to = e->from; /* the caller */
  e->from = from;
  e->next = NULL;
  e->kind = TR_K_REPLY;
  e->status = (int8_t)status;
  e->lane = 0;
  if (hint && payload == s->own_hint) tr__env_take_hint(s, e);
  reply_send(s, p, e);
}

void tr__reply_in(tr_sched *s, tr_env *e, tr_addr from, int status, const char *payload,
                  size_t len) {
  reply_in(s, e, from, status, payload, len, 1);
}

void tr__reply_error(tr_sched *s, tr_addr from, tr_addr caller, uint64_t req, int code,
                     const char *msg, const char *traceback) {
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, msg ? msg : tr_strerror(code));
  if (traceback) tr_pack_str(&b, traceback);
  tr__reply(s, from, caller, req, code, b.data, b.len);
  tr_buf_free(&b);
}

/* ---- owed replies (deferred tokens) ------------------------------------------------------ */
tr_owed *tr__owe(tr_sched *s, tr_actor *a, uint64_t req, tr_addr caller) {
  tr_actor_cold *c = tr__cold(a);
  tr_owed *o = c ? calloc(1, sizeof *o) : NULL;
  if (!o) return NULL;
  o->req = req;
  o->caller = caller;
  o->owner = a;
  if (tr_map_put(&s->owed, req, o)) {
    free(o);
    return NULL;
  }
  o->next = c->owed;
  if (c->owed) c->owed->prev = o;
  c->owed = o;
  return o;
}

static void owed_unlink(tr_sched *s, tr_owed *o) {
  tr_map_del(&s->owed, o->req);
  if (o->prev) o->prev->next = o->next;
  else o->owner->cold->owed = o->next;
  if (o->next) o->next->prev = o->prev;
}

int tr__settle(tr_sched *s, uint64_t req, tr_addr caller, int status, const char *payload,
               size_t len) {
  tr_owed *o = tr_map_get(&s->owed, req);
  if (!o || o->caller != caller) return TR_EALREADY;
  tr_addr from = o->owner->addr;
  owed_unlink(s, o);
  free(o);
  tr__reply(s, from, caller, req, status, payload, len);
  return 0;
}

static void op_settle(tr_sched *s, tr_env *e) {
  tr__settle(s, e->req, e->from, e->status, TR_ENV_PAYLOAD(e), e->len);
  tr__env_free(s, e);
}

/* The owed reply lives on the owner's scheduler: answered from another
 * thread, it is settled there (a second answer is then dropped quietly). */
static int token_settle(tr_host *h, const tr_token *t, int status, const tr_buf *v) {
  if (!h || !t) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  if (tr__foreign(s, t->owner))
    return tr__op(s, t->owner, op_settle, t->caller, t->req, status, v ? v->data : NULL,
                  v ? v->len : 0);
  return tr__settle(s, t->req, t->caller, status, v ? v->data : NULL, v ? v->len : 0);
}

int tr_token_reply(tr_host *h, const tr_token *t, const tr_buf *values) {
  return token_settle(h, t, TR_OK, values);
}

int tr_token_fail(tr_host *h, const tr_token *t, const tr_buf *value) {
  return token_settle(h, t, TR_FAILED, value);
}

/* ---- timers of actors -------------------------------------------------------------------- */
/* Timer ids name their scheduler in the top byte (as request ids do). */
static int timer_add(tr_sched *s, tr_actor *a, tr_timer_id id, int64_t delay_ms,
                     int64_t interval_ms, const char *method, size_t mlen, const char *args,
                     size_t len) {
  tr_actor_cold *c = tr__cold(a);
  tr_timer *t = c ? calloc(1, sizeof *t) : NULL;
  if (!t) return TR_ENOMEM;
  t->tmpl = tr__env_new(s, method, mlen, args, len);
  if (!t->tmpl) {
    free(t);
    return TR_ENOMEM;
  }
  t->tmpl->from = a->addr;
  t->tmpl->to = a->addr;
  t->id = id;
  t->actor = a->addr;
  t->interval = interval_ms;
  t->te.kind = TR_T_ACTOR;
  t->te.p = t;
  uv_update_time(s->loop);
  if (tr_map_put(&s->timers, t->id, t) ||
      heap_add(s, &t->te, uv_now(s->loop) + (uint64_t)delay_ms)) {
    tr_map_del(&s->timers, t->id);
    tr__env_free(s, t->tmpl);
    free(t);
    return TR_ENOMEM;
  }
  t->next = c->timers;
  if (c->timers) c->timers->prev = t;
  c->timers = t;
  return 0;
}

static void op_timer_add(tr_sched *s, tr_env *e) { /* payload: delay, interval, args */
  tr_actor *a = tr__lookup(s, e->to);
  const char *p = TR_ENV_PAYLOAD(e);
  int64_t d[2];
  memcpy(d, p, sizeof d);
  if (a)
    timer_add(s, a, e->req, d[0], d[1], TR_ENV_METHOD(e), e->mlen, p + sizeof d,
              e->len - sizeof d);
  tr__env_free(s, e);
}

int tr_send_after(tr_host *h, tr_addr self, int64_t delay_ms, int64_t interval_ms,
                  const char *method, const tr_buf *args, tr_timer_id *out) {
  if (!method) return TR_EINVAL;
  return tr__send_after_n(h, self, delay_ms, interval_ms, method, strlen(method), args, out);
}

/* tr_send_after for a method name of mlen bytes (Lua's may hold a zero byte). */
int tr__send_after_n(tr_host *h, tr_addr self, int64_t delay_ms, int64_t interval_ms,
                     const char *method, size_t mlen, const tr_buf *args, tr_timer_id *out) {
  if (!h || !method || !mlen || delay_ms < 0 || interval_ms < 0) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  tr_actor *a = tr__lookup(s, self);
  size_t len = args ? args->len : 0;
  if (len > TR_MAX_PAYLOAD) return TR_EBADVALUE;
  if (!a) { /* another scheduler's actor: its timer lives there */
    if (!tr__alive_any(s, self)) return TR_EDEAD;
    tr_sched *t = &h->sched[TR_ADDR_SCHED(self)];
    int64_t d[2] = {delay_ms, interval_ms};
    char *buf = malloc(sizeof d + len);
    if (!buf) return TR_ENOMEM;
    memcpy(buf, d, sizeof d);
    if (len) memcpy(buf + sizeof d, args->data, len);
    tr_env *e = tr__env_new(s, method, mlen, buf, sizeof d + len);
    free(buf);
    if (!e) return TR_ENOMEM;
    e->kind = TR_K_OP;
    e->op = op_timer_add;
    e->to = self;
    e->req = ((uint64_t)t->index << 56) | __atomic_add_fetch(&t->next_timer, 1, __ATOMIC_RELAXED);
    if (out) *out = e->req;
    tr__post(s, t, e);
    return 0;
  }
  tr_timer_id id =
      ((uint64_t)s->index << 56) | __atomic_add_fetch(&s->next_timer, 1, __ATOMIC_RELAXED);
  int rc = timer_add(s, a, id, delay_ms, interval_ms, method, mlen,
                     args ? args->data : NULL, len);
  if (rc == 0 && out) *out = id;
  return rc;
}

int tr_send_at(tr_host *h, tr_addr self, uint64_t at_ms, const char *method,
               const tr_buf *args, tr_timer_id *out) {
  if (!h) return TR_EINVAL;
  uv_loop_t *loop = tr__here(h)->loop;
  uv_update_time(loop);
  uint64_t now = uv_now(loop);
  uint64_t delay = at_ms > now ? at_ms - now : 0;
  if (delay > (uint64_t)INT64_MAX) delay = (uint64_t)INT64_MAX; /* "never", in effect */
  return tr_send_after(h, self, (int64_t)delay, 0, method, args, out);
}

static void timer_free(tr_sched *s, tr_timer *t) {
  tr_map_del(&s->timers, t->id);
  tr__timer_del(s, &t->te);
  tr_actor *a = tr_stab_get(&s->actors, TR_ADDR_SERIAL(t->actor));
  if (a && a->addr == t->actor) {
    if (t->prev) t->prev->next = t->next;
    else if (a->cold->timers == t) a->cold->timers = t->next;
    if (t->next) t->next->prev = t->prev;
  }
  tr__env_free(s, t->tmpl);
  free(t);
}

static void op_timer_cancel(tr_sched *s, tr_env *e) {
  tr_timer *t = tr_map_get(&s->timers, e->req);
  tr__env_free(s, e);
  if (t) timer_free(s, t);
}

int tr_cancel_timer(tr_host *h, tr_timer_id id) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  if ((id >> 56) != s->index) { /* another scheduler's timer */
    if ((id >> 56) >= h->nsched) return TR_ENOTFOUND;
    return tr__op(s, ((tr_addr)(id >> 56) << 48) | 1, op_timer_cancel, TR_NOADDR, id, 0, NULL,
                  0);
  }
  tr_timer *t = tr_map_get(&s->timers, id);
  if (!t) return TR_ENOTFOUND;
  timer_free(s, t);
  return 0;
}

static void on_timer(uv_timer_t *ut) {
  tr_sched *s = ut->data;
  s->in_callback++;
  s->armed_due = 0;
  uv_update_time(s->loop);
  uint64_t now = uv_now(s->loop);
  tr_tentry *t;
  while ((t = timer_first(s)) && t->due <= now) {
    tr__timer_del(s, t);
    switch (t->kind) {
      case TR_T_TIMEOUT: {
        tr_pending *p = t->p;
        if (p->kill_on_timeout && tr__alive_any(s, p->target)) {
          uint64_t req = p->req; /* the death may answer p and free it */
          tr_kill(s->h, p->target); /* its death answers p with "killed" */
          if (tr__pending_get(s, req) != p) break;
          if (tr__foreign(s, p->target)) {
            /* the kill and its answer cross schedulers: wait for the
             * answer, with a last timeout should it never come */
            p->kill_on_timeout = 0;
            heap_add(s, &p->te, now + 1000);
          } else if (tr__alive_any(s, p->target)) {
            heap_add(s, &p->te, now + 1); /* it was running: look again */
          }
          break;
        }
        char who[96], msg[192];
        snprintf(msg, sizeof msg, "call to %s timed out",
                 fmt_addr(s->h, p->target, who, sizeof who));
        tr_buf b;
        tr_buf_init(&b);
        tr_pack_str(&b, msg);
        tr_env *e = tr__env_new(s, NULL, 0, b.data, b.len);
        tr_buf_free(&b);
        if (!e) { /* nothing better to do than to drop the call quietly */
          tr__pending_free(s, p);
          break;
        }
        e->kind = TR_K_REPLY;
        e->status = TR_ETIMEOUT;
        e->req = p->req;
        e->from = p->target;
        complete(s, p, e);
        break;
      }
      case TR_T_ACTOR: {
        tr_timer *tm = t->p;
        tr_env *e = tr__env_new(s, TR_ENV_METHOD(tm->tmpl), tm->tmpl->mlen,
                                TR_ENV_PAYLOAD(tm->tmpl), tm->tmpl->len);
        int rc = TR_ENOMEM;
        if (e && tm->tmpl->own) tr__env_own(s, e); /* each copy holds its own */
        if (e) {
          e->from = e->to = tm->actor;
          rc = tr__deliver(s, e, 1, NULL);
          if (rc) tr__env_free(s, e);
        }
        if (rc == TR_EDEAD || tm->interval == 0) {
          timer_free(s, tm);
        } else { /* the next tick; ticks missed while the loop was busy are skipped */
          uint64_t next = t->due + (uint64_t)tm->interval;
          if (next <= now) next = now + (uint64_t)tm->interval;
          heap_add(s, &tm->te, next);
        }
        break;
      }
      case TR_T_SLEEP: {
        tr_actor *a = tr__lookup(s, t->actor);
        if (a && a->wait == TR_W_SLEEP && a->wait_req == (uint64_t)(uintptr_t)t) {
          tr__set_wait(a, TR_W_YIELD);
          tr__schedule(s, a);
        }
        free(t);
        break;
      }
      case TR_T_FLAG:
        *(volatile int *)t->p = 1;
        free(t);
        break;
    }
  }
  timer_arm(s);
  s->in_callback--;
  sched_settle(s, 0);
}

/* ---- calls --------------------------------------------------------------------------------- */
static inline __attribute__((always_inline)) int call_start(tr_sched *s, tr_addr from, tr_addr to, const char *method,
                                                     size_t mlen, const char *payload, size_t len,
                                                     int64_t timeout_ms, uint8_t kind,
                                                     tr_reply_cb cb, void *ud, tr_pending **out) {
  if (!s) __builtin_unreachable(); /* (tr__here's: no test of it in env_new) */
  tr_env *e = env_new(s, method, mlen, payload, len);
  if (!e) return len > TR_MAX_PAYLOAD ? TR_EBADVALUE : TR_ENOMEM;
  tr_pending *p = pending_new(s, kind, from, to, timeout_ms, cb, ud);
  if (!p) {
    tr__env_free(s, e);
    return TR_ENOMEM;
  }
  e->kind = TR_K_CALL;
  e->from = from;
  e->to = to;
  e->req = p->req;
  int rc = deliver(s, e, 0, NULL);
  if (rc) {
    tr__env_free(s, e);
    tr__pending_free(s, p);
    return rc;
  }
  *out = p;
  return 0;
}

int tr__call_start(tr_sched *s, tr_addr from, tr_addr to, const char *method, size_t mlen,
                   const char *payload, size_t len, int64_t timeout_ms, uint8_t kind,
                   tr_pending **out) {
  return call_start(s, from, to, method, mlen, payload, len, timeout_ms, kind, NULL, NULL, out);
}

int tr_call(tr_host *h, tr_addr from, tr_addr to, const char *method, const tr_buf *args,
            int64_t timeout_ms, tr_reply_cb cb, void *ud) {
  if (!h || !method || !*method || !cb) return TR_EINVAL;
  /* negative: only TR_TIMEOUT_DEFAULT (-1) and TR_TIMEOUT_INFINITE (-2) */
  _Static_assert(TR_TIMEOUT_INFINITE == -2 && TR_TIMEOUT_DEFAULT == -1, "one compare");
  if (timeout_ms < TR_TIMEOUT_INFINITE) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  tr_pending *p;
  return call_start(s, from, to, method, strlen(method), args ? args->data : NULL,
                    args ? args->len : 0, timeout_ms, TR_P_CB, cb, ud, &p);
}

int tr_call_fmt(tr_host *h, tr_addr from, tr_addr to, const char *method, tr_reply_cb cb,
                void *ud, const char *fmt, ...) {
  tr_buf b;
  tr_buf_init(&b);
  int rc = 0;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    rc = tr__pack_vfmt(&b, fmt, &ap);
    va_end(ap);
  }
  if (rc == 0) rc = tr_call(h, from, to, method, &b, TR_TIMEOUT_DEFAULT, cb, ud);
  tr_buf_free(&b);
  return rc;
}

int tr_send(tr_host *h, tr_addr from, tr_addr to, const char *method, const tr_buf *args) {
  if (!h || !method || !*method) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  size_t len = args ? args->len : 0;
  if (len > TR_MAX_PAYLOAD) return TR_EBADVALUE;
  tr_env *e = tr__env_new(s, method, strlen(method), args ? args->data : NULL, len);
  if (!e) return TR_ENOMEM;
  e->from = from;
  e->to = to;
  int rc = tr__deliver(s, e, 0, NULL);
  if (rc) tr__env_free(s, e);
  else if (s->current && s->current->addr == from) /* a handler's send: count it */
    s->current->n_out++;
  return rc;
}

int tr_send_fmt(tr_host *h, tr_addr from, tr_addr to, const char *method, const char *fmt,
                ...) {
  tr_buf b;
  tr_buf_init(&b);
  int rc = 0;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    rc = tr__pack_vfmt(&b, fmt, &ap);
    va_end(ap);
  }
  if (rc == 0) rc = tr_send(h, from, to, method, &b);
  tr_buf_free(&b);
  return rc;
}

/* ---- crossing schedulers ------------------------------------------------------------------------ */
/* tr_host_run on the first scheduler must not return while another has work:
 * h->work counts the other schedulers that are busy plus the envelopes posted
 * to them and not yet handled, and h->quiesce (on the first loop) is ref'd
 * exactly while it is > 0. Only the first scheduler's thread touches the
 * handle; others wake it when the count crosses zero. */
static void quiesce_update(tr_host *h) {
  if (!h->quiesce_open) return;
  if (__atomic_load_n(&h->work, __ATOMIC_SEQ_CST) > 0) uv_ref((uv_handle_t *)&h->quiesce);
  else uv_unref((uv_handle_t *)&h->quiesce);
}

static void on_quiesce(uv_async_t *a) { quiesce_update(a->data); }

/* The count reaching zero from another thread needs a wake-up only while the
 * first loop may be blocked in poll (s0_polling; it re-reads the count before
 * it polls, so with both sides sequentially consistent one sees the other).
 * That keeps an eventfd write off each request across schedulers. */
static void work_add(tr_host *h, int d, const tr_sched *on) {
  int old = __atomic_fetch_add(&h->work, d, __ATOMIC_SEQ_CST);
  if ((old > 0) == (old + d > 0) || tr__closing(h)) return;
  if (on && on->index == 0) quiesce_update(h);
  else if (old + d > 0 || __atomic_load_n(&h->s0_polling, __ATOMIC_SEQ_CST))
    uv_async_send(&h->quiesce);
}

static void on_polled(uv_check_t *c) {
  tr_host *h = c->data;
  __atomic_store_n(&h->s0_polling, 0, __ATOMIC_SEQ_CST);
}

/* A scheduler other than the first says whether it still has work. */
static void sched_settle(tr_sched *s, int handled) {
  if (s->index == 0) return;
  int busy = s->runq_head || s->done_head || s->heap_n || s->fifo_live;
  if (busy != s->busy) {
    s->busy = busy;
    work_add(s->h, busy ? 1 : -1, s);
  }
  if (handled) work_add(s->h, -handled, s);
}

/* A wake-up through the inbox's uv_async_t costs ~20 us (epoll, eventfd):
 * a scheduler that sent or got mail from another thread in the last
 * TR_SPIN_NS polls its inbox that long before its loop blocks, so request and
 * reply across schedulers cost a few us instead. */
#define TR_SPIN_NS 50000

void tr__post(tr_sched *from, tr_sched *t, tr_env *e) {
  e->next = NULL;
  if (from) from->spin_until = uv_hrtime() + TR_SPIN_NS; /* an answer may come */
  if (t->index) work_add(t->h, 1, from);
  uv_mutex_lock(&t->inbox_lock);
  int wake = t->inbox_head == NULL; /* else a wake-up is already on its way */
  if (t->inbox_tail) t->inbox_tail->next = e;
  else __atomic_store_n(&t->inbox_head, e, __ATOMIC_SEQ_CST); /* on_prepare reads it unlocked */
  t->inbox_tail = e;
  uv_mutex_unlock(&t->inbox_lock);
  /* a spinning scheduler looks at its inbox once more after it stops
   * spinning: with both sides sequentially consistent, one of them sees the
   * other (the poster the flag, or the scheduler the envelope) */
  if (wake && !__atomic_load_n(&t->spinning, __ATOMIC_SEQ_CST)) uv_async_send(&t->async);
}

int tr__op(tr_sched *s, tr_addr target, tr_opfn fn, tr_addr a2, uint64_t n, int code,
           const char *text, size_t len) {
  unsigned ti = TR_ADDR_SCHED(target);
  if (TR_ADDR_NODE(target) != 0 || ti >= s->h->nsched) return TR_EDEAD;
  tr_env *e = tr__env_new(s, NULL, 0, text, text ? len : 0);
  if (!e) return TR_ENOMEM;
  e->kind = TR_K_OP;
  e->op = fn;
  e->to = target;
  e->from = a2;
  e->req = n;
  e->status = (int8_t)code;
  if (ti == s->index) fn(s, e);
  else tr__post(s, &s->h->sched[ti], e);
  return 0;
}

/* ---- running a function on another scheduler and waiting (tooling) ---- */
typedef struct tr_sync {
  void (*fn)(tr_sched *s, void *ud);
  void *ud;
  uv_mutex_t m;
  uv_cond_t c;
  int state; /* 0 queued, 1 running, 2 done, 3 abandoned by the caller */
} tr_sync;

static void sync_free(tr_sync *y) {
  uv_cond_destroy(&y->c);
  uv_mutex_destroy(&y->m);
  free(y);
}

static void op_sync(tr_sched *s, tr_env *e) {
  tr_sync *y = (tr_sync *)(uintptr_t)e->req;
  tr__env_free(s, e);
  uv_mutex_lock(&y->m);
  if (y->state == 3) { /* the caller gave up: nobody waits */
    uv_mutex_unlock(&y->m);
    sync_free(y);
    return;
  }
  y->state = 1;
  uv_mutex_unlock(&y->m);
  y->fn(s, y->ud);
  uv_mutex_lock(&y->m);
  y->state = 2;
  uv_cond_signal(&y->c);
  uv_mutex_unlock(&y->m);
}

int tr__sched_sync(tr_sched *s, tr_sched *t, void (*fn)(tr_sched *, void *), void *ud,
                   unsigned timeout_ms) {
  if (t == s) {
    fn(t, ud);
    return 0;
  }
  tr_sync *y = calloc(1, sizeof *y);
  if (!y) return TR_ENOMEM;
  if (uv_mutex_init(&y->m)) {
    free(y);
    return TR_ENOMEM;
  }
  if (uv_cond_init(&y->c)) {
    uv_mutex_destroy(&y->m);
    free(y);
    return TR_ENOMEM;
  }
  y->fn = fn;
  y->ud = ud;
  tr_env *e = tr__env_new(s, NULL, 0, NULL, 0);
  if (!e) {
    sync_free(y);
    return TR_ENOMEM;
  }
  e->kind = TR_K_OP;
  e->op = op_sync;
  e->req = (uint64_t)(uintptr_t)y;
  tr__post(s, t, e);
  uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  int rc = 0;
  uv_mutex_lock(&y->m);
  while (y->state != 2) {
    uint64_t now = uv_hrtime();
    if (y->state == 0 && now >= deadline) { /* not started: leave it to free itself */
      y->state = 3;
      rc = TR_ETIMEOUT;
      break;
    }
    if (y->state == 1) uv_cond_wait(&y->c, &y->m); /* started: it touches ud, wait */
    else uv_cond_timedwait(&y->c, &y->m, deadline - now);
  }
  uv_mutex_unlock(&y->m);
  if (rc == 0) sync_free(y);
  return rc;
}

/* From any thread: the envelope is built with malloc (the pool belongs to the
 * loop thread) and handed over through the inbox. */
int tr_send_async(tr_host *h, tr_addr to, const char *method, const tr_buf *args) {
  if (!h || !method || !*method) return TR_EINVAL;
  tr_sched *s = tr__sched_of(h, to);
  if (!s) return TR_EDEAD;
  size_t len = args ? args->len : 0;
  if (len > TR_MAX_PAYLOAD) return TR_EBADVALUE;
  uv_mutex_lock(&s->inbox_lock);
  int closing = __atomic_load_n(&h->closing, __ATOMIC_ACQUIRE);
  uv_mutex_unlock(&s->inbox_lock);
  if (closing) return TR_ESTOPPED;
  /* admitted as a send from another scheduler is: refused now (dead, full)
   * rather than dropped on arrival */
  int counted, rc = admit_foreign(s, to, 0, &counted);
  if (rc) return rc;
  tr_env *e = tr__env_new(NULL, method, strlen(method), args ? args->data : NULL, len);
  if (!e) {
    if (counted) uncount_inflight(s, to);
    return TR_ENOMEM;
  }
  e->to = to;
  /* counted: queued whatever the depth when it arrives; else (its spawn is
   * on its way) dropped and logged if the mailbox is full then */
  e->lane = counted ? 3 : 2;
  tr_sched *me = tr__tls_sched;
  tr__post(me && me >= h->sched && me < h->sched + h->nsched ? me : NULL, s, e);
  return 0;
}

/* One envelope from another thread, on its target's scheduler. */
static void inbox_one(tr_sched *s, tr_env *e) {
  if (e->kind == TR_K_OP) {
    e->op(s, e); /* frees e */
    return;
  }
  if (e->kind == TR_K_REPLY) {
    tr_pending *p = tr__pending_get(s, e->req);
    if (p) complete(s, p, e);
    else tr__env_free(s, e); /* late: the caller gave up or died */
    return;
  }
  tr_actor *a = tr__lookup(s, e->to);
  if (e->lane == 4) { /* a send or call that waits to be admitted (tr__deliver_admit) */
    uint64_t req = e->req;
    tr_addr sender = e->from;
    int is_call = e->kind == TR_K_CALL; /* answered as a call; a send is told */
    if (!a) {
      char who[96], text[160];
      snprintf(text, sizeof text, "%s is not alive", fmt_addr(s->h, e->to, who, sizeof who));
      tr__reply_error(s, e->to, sender, req, TR_EDEAD, text, NULL);
      tr__env_free(s, e);
    } else if (a->pub.n < a->cap || tr__enqueue_room_wait(s, a, sender, e)) {
      /* room, or no memory to wait: queue (past the bound then) */
      if (!is_call) e->req = 0;
      q_push(&a->pub, e);
      s->n_msgs++;
      if (a->wait == TR_W_NONE) tr__schedule(s, a);
      if (!is_call) tr__reply(s, a->addr, sender, req, TR_OK, NULL, 0);
    }
    return;
  }
  int full = a && e->lane == 2 && a->pub.n >= a->cap;
  if (!a || full) {
    char who[96], text[160];
    fmt_addr(s->h, e->to, who, sizeof who);
    if (e->kind == TR_K_CALL && e->req) {
      snprintf(text, sizeof text, "%s is not alive", who);
      tr__reply_error(s, e->to, e->from, e->req, TR_EDEAD, text, NULL);
    } else if (e->from == TR_NOADDR) { /* tr_send_async: nobody else would know */
      tr__log(s->h, "async message '%s' to %s dropped: %s", TR_ENV_METHOD(e), who,
              tr_errname(a ? TR_EFULL : TR_EDEAD));
    }
    tr__env_free(s, e);
    return;
  }
  q_push(e->lane == 1 ? &a->priv : &a->pub, e);
  /* counted in the mailbox before it leaves the count on its way: a sender
   * never sees the sum low */
  if (e->lane == 3) __atomic_sub_fetch(&a->inflight, 1, __ATOMIC_RELAXED);
  s->n_msgs++;
  if (a->wait == TR_W_NONE) tr__schedule(s, a);
}

static int inbox_run(tr_sched *s) {
  uv_mutex_lock(&s->inbox_lock);
  tr_env *e = s->inbox_head;
  __atomic_store_n(&s->inbox_head, NULL, __ATOMIC_RELAXED);
  s->inbox_tail = NULL;
  uv_mutex_unlock(&s->inbox_lock);
  int n = 0;
  while (e) {
    tr_env *next = e->next;
    e->next = NULL;
    inbox_one(s, e);
    n++;
    e = next;
  }
  return n;
}

static void on_async(uv_async_t *as) {
  tr_sched *s = as->data;
  s->in_callback++;
  int n = inbox_run(s);
  s->in_callback--;
  if (n) s->spin_until = uv_hrtime() + TR_SPIN_NS;
  sched_settle(s, n);
}

static void before_poll(tr_sched *s) {
  if (s->index != 0) return;
  __atomic_store_n(&s->h->s0_polling, 1, __ATOMIC_SEQ_CST);
  quiesce_update(s->h);
}

static void on_prepare(uv_prepare_t *p) {
  tr_sched *s = p->data;
  /* no deadline left: the timer must not keep the loop alive. Done here,
   * before every poll (libuv computes the poll timeout after the prepare
   * handles), rather than whenever the last deadline leaves: a round trip
   * would otherwise unref and ref the timer each time */
  if (s->timer_idle) timer_arm(s);
  if (s->runq_head || s->done_head || !s->spin_until) { /* it will not block, or not spin */
    before_poll(s);
    return;
  }
  uint64_t now = uv_hrtime();
  __atomic_store_n(&s->spinning, 1, __ATOMIC_SEQ_CST);
  int found = 0;
  while (now < s->spin_until) {
    if (__atomic_load_n(&s->inbox_head, __ATOMIC_SEQ_CST)) { /* a hint; taken under the lock */
      found = 1;
      break;
    }
    for (int i = 0; i < 64; i++) __asm__ __volatile__("" ::: "memory");
    now = uv_hrtime();
  }
  __atomic_store_n(&s->spinning, 0, __ATOMIC_SEQ_CST);
  if (!found && !__atomic_load_n(&s->inbox_head, __ATOMIC_SEQ_CST)) {
    s->spin_until = 0;
    before_poll(s);
    return;
  }
  s->in_callback++;
  int n = inbox_run(s);
  s->in_callback--;
  s->spin_until = uv_hrtime() + TR_SPIN_NS;
  kick(s); /* whatever it brought runs before the loop polls, which must not block */
  sched_settle(s, n);
  before_poll(s);
}

/* ---- deadlock detection ----------------------------------------------------------------------- */
/* `caller` (a Lua actor about to suspend on `target`) closes a cycle if target
 * is, through a chain of suspended actors, waiting on caller. */
/* What `a` waits on (a call or room), or TR_NOADDR. Another scheduler's
 * actor is read under its lock; its owner writes these fields without it,
 * so that reading is a recent one, checked at the end (see below). */
static tr_addr waits_on(tr_sched *s, tr_addr a, int *remote) {
  tr_actor *act = tr__lookup(s, a);
  if (act) return act->wait == TR_W_CALL || act->wait == TR_W_ROOM ? act->wait_target : TR_NOADDR;
  if (!tr__foreign(s, a)) return TR_NOADDR;
  *remote = 1;
  tr_sched *t = &s->h->sched[TR_ADDR_SCHED(a)];
  tr_addr next = TR_NOADDR;
  uv_mutex_lock(&t->actors_lock);
  tr_actor *f = tr_stab_get(&t->actors, TR_ADDR_SERIAL(a));
  if (f && f->addr == a) {
    uint8_t w = __atomic_load_n(&f->wait, __ATOMIC_RELAXED);
    if (w == TR_W_CALL || w == TR_W_ROOM) next = __atomic_load_n(&f->wait_target, __ATOMIC_RELAXED);
  }
  uv_mutex_unlock(&t->actors_lock);
  return next;
}

/* `me` holds a call from `from` that it has not answered: being handled,
 * queued, or owed. */
static int holds_call_from(tr_actor *me, tr_addr from) {
  if (me->cur && me->cur->kind == TR_K_CALL && me->cur->req && me->cur->from == from) return 1;
  for (tr_owed *o = me->cold->owed; o; o = o->next)
    if (o->caller == from) return 1;
  tr_queue *qs[2] = {&me->priv, &me->pub};
  for (int i = 0; i < 2; i++)
    for (tr_env *e = qs[i]->head; e; e = e->next)
      if (e->kind == TR_K_CALL && e->from == from) return 1;
  return 0;
}

int tr__check_deadlock(tr_sched *s, tr_actor *caller, tr_addr target, char *why, size_t cap) {
  tr_addr chain[64];
  int n = 0, remote = 0;
  chain[n++] = caller->addr;
  tr_addr cur = target;
  int found = 0;
  while (n < 63) {
    chain[n++] = cur;
    if (cur == caller->addr) {
      found = 1;
      break;
    }
    cur = waits_on(s, cur, &remote);
    if (cur == TR_NOADDR) break;
  }
  /* a chain through another scheduler was read while it ran: the cycle is
   * real only if the caller really holds the last link's call */
  if (found && remote && !holds_call_from(caller, chain[n - 2])) found = 0;
  if (!found) return 0;
  size_t pos = 0;
  pos += (size_t)snprintf(why + pos, cap - pos, "call cycle: ");
  for (int i = 0; i < n && pos < cap; i++) {
    char who[96];
    pos += (size_t)snprintf(why + pos, cap - pos, "%s%s", i ? " -> " : "",
                            fmt_addr(s->h, chain[i], who, sizeof who));
  }
  return 1;
}

/* ---- blocking from outside the loop (the main script) ------------------------------------------ */
int tr__block_until(tr_sched *s, volatile int *flag) {
  if (s->in_callback) return TR_EINVAL;
  while (!*flag) {
    if (__atomic_load_n(&s->h->exiting, __ATOMIC_ACQUIRE)) return TR_ESTOPPED;
    int alive = uv_run(s->loop, UV_RUN_ONCE);
    if (!*flag && !alive && !s->runq_head && !s->done_head) return TR_ESTOPPED;
  }
  return 0;
}

/* ---- the run loop ----------------------------------------------------------------------------- */
static void stop_message(tr_sched *s, tr_actor *a);

/* A message to a C actor: the usual case, a call or send for a handler it
 * has, here, inlined into the run loop with the answer made of the call
 * envelope; init and methods without a handler in cactor.c. */
static inline __attribute__((always_inline)) void c_deliver(tr_sched *s, tr_actor *a, tr_env *e) {
  if (__builtin_expect(e->kind == TR_K_INIT, 0)) {
    tr__c_init(s, a, e);
    return;
  }
  tr_handler_fn fn = tr__c_method(a, e);
  if (__builtin_expect(!fn, 0)) {
    tr__c_no_handler(s, a, e);
    return;
  }
  tr_ctx c;
  tr_msg m;
  tr__ctx_init(&c, s, a, e);
  tr__msg_init(&m, TR_ENV_PAYLOAD(e), e->len);
  a->cur = e;
  int rc;
  /* (tr__msg_parse_one: m is fresh, not parsed) */
  if (__builtin_expect(!msg_try_one_c(&m) && tr__msg_parse(&m) < 0, 0))
    rc = tr_ctx_error(&c, TR_EBADVALUE, "corrupt payload for '%s'", TR_ENV_METHOD(e));
  else
    rc = fn(&c, &m);
  a->cur = NULL;
  if (e->kind == TR_K_CALL && e->req && a->state != TR_S_DEAD) {
    if (rc == TR_OK || rc == TR_FAILED) {
      reply_in(s, e, a->addr, rc == TR_OK && !c.fail ? TR_OK : TR_FAILED, c.out.data, c.out.len,
               0);
      e = NULL; /* it became the reply */
    } else {
      tr__reply_error(s, a->addr, e->from, e->req, rc, c.err_set ? c.err : tr_strerror(rc), NULL);
    }
  } else if (e->kind == TR_K_SEND && rc < 0) {
    tr__c_send_failed(s, a, e, rc, &c);
  }
  if (e) env_free_msg(s, e);
  tr__msg_done(&m);
  tr__ctx_done(&c);
}

static inline __attribute__((always_inline)) void dispatch(tr_sched *s, tr_actor *a, tr_env *e) {
  a->n_in++;
  if (a->traced && tr__tracer(s->h))
    tr__tracer(s->h)(s->h, s->h->trace_ud, TR_EV_IN, a, e, 0, TR_ENV_PAYLOAD(e), e->len);
  if (e->kind == TR_K_STOP) {
    a->stop_pending = 0;
    if (e->from == a->addr) a->stop_self = 1;
    if (a->lang == TR_LANG_LUA && a->started && !tr__quiet(s)) {
      tr__lua_deliver(s, a, e); /* the stop hooks run in a coroutine: they may wait */
      return;
    }
    tr__env_free(s, e);
    stop_message(s, a);
    return;
  }
  if (a->lang == TR_LANG_C) c_deliver(s, a, e);
  else tr__lua_deliver(s, a, e);
}

/* The message a Lua actor's runner takes next: the head of its mailbox if
 * that is a plain message (a send or a call) and the turn may go on; NULL
 * hands the turn back to actor_turn (the budget is spent, the actor waits,
 * is dying or has a kill pending, or the next message is init or stop,
 * which take the general path). Does for each message what actor_turn and
 * dispatch do. */
tr_env *tr__runner_next(tr_sched *s, tr_actor *a) {
  if (s->turn_left <= 0 || a->kill_pending || a->state == TR_S_DEAD ||
      a->wait != TR_W_NONE || a->wake)
    return NULL;
  tr_queue *q = a->priv.head ? &a->priv : &a->pub;
  tr_env *e = q->head;
  if (!e || e->kind > TR_K_CALL) return NULL;
  q_pop(q);
  if (q == &a->pub && a->cold->room_head) room_made(s, a);
  s->turn_left--;
  a->n_in++;
  if (a->traced && tr__tracer(s->h))
    tr__tracer(s->h)(s->h, s->h->trace_ud, TR_EV_IN, a, e, 0, TR_ENV_PAYLOAD(e), e->len);
  return e;
}

/* A Lua actor with a backlog whose next message is a plain one runs them in
 * a runner. One message alone costs less in a coroutine of its own (the
 * runner's set-up is paid back from the second message on); an actor with a
 * CPU limit keeps one coroutine per message, which is what its limit
 * times. */
static inline int runner_takes(tr_actor *a) {
  if (a->priv.n + a->pub.n < 2 || a->lang != TR_LANG_LUA || a->cold->cpu_limit_ms) return 0;
  tr_env *e = a->priv.head ? a->priv.head : a->pub.head;
  return e->kind <= TR_K_CALL;
}

/* The INIT envelope of an actor whose init arguments wait in its record
 * (init_due), made at its first turn and put first in its private lane,
 * where spawning would have put it: it lives only while init runs. -1: no
 * memory for it. */
static int init_envelope(tr_sched *s, tr_actor *a) {
  tr_env *e = tr__env_new_local(s, NULL, 0, a->init_args, a->init_len);
  a->init_due = 0;
  a->init_len = 0;
  a->wait_req = 0; /* the wait's fields again */
  tr__set_wait_target(a, TR_NOADDR);
  a->wait_since = 0;
  if (!e) return -1;
  e->kind = TR_K_INIT;
  e->to = a->addr;
  e->next = a->priv.head;
  a->priv.head = e;
  if (!a->priv.tail) a->priv.tail = e;
  a->priv.n++;
  return 0;
}

static inline __attribute__((always_inline)) void actor_turn(tr_sched *s, tr_actor *a) {
  int drained = 0; /* left because both lanes were empty: not ready */
  s->current = a;
  /* up to TR_BATCH messages (a resume counts as one); a runner takes the
   * ones it handles from the same count */
  s->turn_left = TR_BATCH;
  while (s->turn_left > 0 && a->state != TR_S_DEAD) {
    int left = s->turn_left--;
    if (a->wake || a->wait == TR_W_YIELD) {
      tr_env *w = a->wake;
      a->wake = NULL;
      tr__set_wait(a, TR_W_NONE);
      a->running = 1;
      tr__lua_resume(s, a, w); /* a runner goes on with the next messages */
      a->running = 0;
    } else {
      if (a->wait != TR_W_NONE) break;
      if (__builtin_expect(a->init_due, 0) && init_envelope(s, a)) {
        a->running = 1; /* keeps tr__actor_died from freeing `a`: freed below */
        tr__actor_died(s, a, TR_ECRASHED, "no memory for its init message", NULL);
        a->running = 0;
        break;
      }
      if (runner_takes(a)) {
        a->running = 1;
        s->turn_left = left; /* it counts each message it takes (at least this one) */
        tr__lua_run(s, a);
        if (s->turn_left == left) s->turn_left--;
        a->running = 0;
        goto next;
      }
      tr_env *e = q_pop(&a->priv);
      a->running = 1; /* a room callback that kills `a` defers the kill */
      if (!e) {
        e = q_pop(&a->pub);
        if (!e) {
          a->running = 0;
          drained = 1;
          break;
        }
        if (a->cold->room_head) room_made(s, a);
      }
      dispatch(s, a, e);
      a->running = 0;
    }
  next:
    if (a->kill_pending && a->state != TR_S_DEAD) {
      a->running = 1; /* keeps tr__actor_died from freeing `a`: freed below */
      tr__actor_died(s, a, a->cold->kill_code ? a->cold->kill_code : TR_EKILLED, a->cold->kill_msg,
                     NULL);
      a->running = 0;
    }
    if (a->wait == TR_W_YIELD) break; /* the handler yielded: go behind the others */
    /* both lanes empty and nothing to resume: drained now, rather than one
     * more pass of the checks above to find that out (the usual end of a
     * turn in a request/reply exchange) */
    if (!a->priv.head && !a->pub.head && !a->wake && a->wait == TR_W_NONE &&
        a->state != TR_S_DEAD) {
      drained = 1;
      break;
    }
  }
  s->current = NULL;
  if (a->state == TR_S_DEAD) actor_free_if_done(s, a);
  else if (!drained) schedule(s, a);
}

static void on_idle(uv_idle_t *i) {
  tr_sched *s = i->data;
  s->in_callback++;
  tr__preempt_thread(s); /* handlers run on this thread now */
  /* C reply callbacks and actor turns feed each other: keep going until both
   * are empty (bounded), instead of paying a loop iteration per round trip.
   * The answers a turn produced for C callbacks are delivered right after
   * that turn (never inside a handler), so a C request/reply pair costs one
   * pass of this loop */
  int turns = 0;
  s->break_idle = 0;
  run_done(s);
  int main = s->index == 0; /* tr_host_exit stops the first scheduler's loop */
  int *exiting = &s->h->exiting;
#define EXITING (main && __atomic_load_n(exiting, __ATOMIC_ACQUIRE))
  while (s->runq_head && turns < TR_TURNS && !s->break_idle && !EXITING) {
    tr_actor *a = s->runq_head;
    s->runq_head = a->runq_next;
    if (!s->runq_head) s->runq_tail = NULL;
    a->in_runq = 0;
    a->runq_next = NULL;
    turns++;
    if (a->state == TR_S_DEAD) {
      actor_free_if_done(s, a);
      continue;
    }
    actor_turn(s, a);
    run_done_inl(s); /* (inline here: a request/reply pair's answer, every turn) */
  }
  if (!s->runq_head && !s->done_head) {
    uv_idle_stop(&s->idle);
    s->idle_on = 0;
  }
  if (EXITING) uv_stop(s->loop);
#undef EXITING
  s->in_callback--;
  sched_settle(s, 0);
}

/* ---- spawning ----------------------------------------------------------------------------------- */
tr_sched *tr__place(tr_sched *s, const tr_spawn_options *o, int relocatable) {
  tr_host *h = s->h;
  if (o && o->scheduler) return o->scheduler <= h->nsched ? &h->sched[o->scheduler - 1] : NULL;
  if (!relocatable || s->current || h->nsched == 1) return s;
  unsigned i = __atomic_fetch_add(&h->next_place, 1, __ATOMIC_RELAXED);
  return &h->sched[i % h->nsched];
}

uint64_t tr__new_serial(tr_sched *t) {
  return __atomic_add_fetch(&t->next_serial, 1, __ATOMIC_RELAXED);
}

static void actors_put(tr_sched *s, uint64_t serial, tr_actor *a, int *rc) {
  if (s->h->nsched > 1) uv_mutex_lock(&s->actors_lock);
  *rc = tr_stab_put(&s->actors, serial, a);
  if (s->reserved.n) tr_map_del(&s->reserved, serial);
  if (s->h->nsched > 1) uv_mutex_unlock(&s->actors_lock);
}

static void actors_del(tr_sched *s, uint64_t serial) {
  if (s->h->nsched > 1) uv_mutex_lock(&s->actors_lock);
  tr_stab_del(&s->actors, serial);
  if (s->reserved.n) tr_map_del(&s->reserved, serial);
  if (s->h->nsched > 1) uv_mutex_unlock(&s->actors_lock);
}

static int name_reserve(tr_host *h, const char *name, tr_addr a);
static int name_attach(tr_actor *act, const char *name);
static void name_release(tr_host *h, const char *name, tr_addr a);

/* A new actor on s (the calling thread's scheduler). serial: 0 for a new
 * one, else reserved by a spawner on another scheduler, which also reserved
 * o->name (reserved_name). */
int tr__spawn_actor(tr_sched *s, uint64_t serial, int reserved_name, uint8_t lang,
                    const void *beh, const tr_spawn_options *o, tr_env *init, const char *iargs,
                    size_t ilen, tr_actor **out) {
  tr_host *h = s->h;
  if (tr__quiet(s)) return TR_ESTOPPED;
  tr_actor *a = actor_alloc(s);
  if (!a) return TR_ENOMEM;
  a->s = s; /* first: actor_mem_free reads it */
  if (!serial) serial = tr__new_serial(s);
  a->addr = ((tr_addr)s->index << 48) | serial;
  a->lang = lang;
  /* before actors_put: other schedulers read it (tr_addr_format) once it is listed */
  if (lang == TR_LANG_C) a->cb = beh;
  else a->lb = (struct tr_lbeh *)beh;
  a->cap = (o && o->mailbox_capacity) ? o->mailbox_capacity : h->mailbox_cap;
  a->owned = o && o->owned;
  a->co_ref = a->self_ref = LUA_NOREF;
  if (o && (o->mem_limit || o->cpu_limit_ms || o->owned)) { /* (an owned one counts refs) */
    tr_actor_cold *c = tr__cold(a);
    if (!c) {
      actor_mem_free(a);
      return TR_ENOMEM;
    }
    c->mem_limit = (int64_t)o->mem_limit;
    c->cpu_limit_ms = o->cpu_limit_ms;
  }
  int rc;
  actors_put(s, serial, a, &rc);
  if (rc) {
    actor_mem_free(a);
    return TR_ENOMEM;
  }
  s->n_spawned++;
  if (init) {
    init->kind = TR_K_INIT;
    init->to = a->addr;
    q_push(&a->priv, init);
  } else {
    a->init_due = 1;
    a->init_len = (uint8_t)ilen;
    if (ilen) memcpy(a->init_args, iargs, ilen);
  }
  if (o && o->name) {
    rc = reserved_name ? 0 : name_reserve(h, o->name, a->addr);
    if (rc == 0 && name_attach(a, o->name)) {
      name_release(h, o->name, a->addr);
      rc = TR_ENOMEM;
    }
    if (rc) {
      actors_del(s, serial);
      if (init) q_pop(&a->priv);
      tr__name_remove_all(h, a);
      actor_mem_free(a);
      return rc;
    }
  }
  if (o && o->link != TR_NOADDR) {
    int rc = tr_link(h, a->addr, o->link);
    if (rc) {
      tr__name_remove_all(h, a);
      actors_del(s, serial);
      if (init) q_pop(&a->priv);
      actor_mem_free(a);
      return rc;
    }
  }
  tr__schedule(s, a);
  *out = a;
  return 0;
}

/* ---- spawning on another scheduler: the spawner reserves the address (and
 * the name), the owner creates the actor when the request reaches it. Any
 * message sent to the address meanwhile queues behind the request. */
static void op_spawn(tr_sched *s, tr_env *e) {
  tr_spawnreq *q = (tr_spawnreq *)(uintptr_t)e->req;
  tr_addr addr = ((tr_addr)s->index << 48) | q->serial;
  e->kind = TR_K_SEND;
  e->op = NULL;
  e->req = 0;
  e->from = e->to = TR_NOADDR;
  int rc;
  const char *why = NULL;
  tr_spawn_options o = q->o;
  o.name = q->name;
  if (q->lang == TR_LANG_C) {
    tr_actor *a;
    rc = tr__spawn_actor(s, q->serial, 1, TR_LANG_C, q->b, &o, e, NULL, 0, &a);
    if (rc == 0 && a->owned) a->cold->refs += q->refs;
  } else {
    rc = tr__lua_spawn_req(s, q, e, &why);
  }
  if (rc) {
    char who[96];
    actors_del(s, q->serial); /* drops the reservation */
    if (q->name) name_release(s->h, q->name, addr);
    tr__log(s->h, "spawning %s on scheduler %u failed: %s", fmt_addr(s->h, addr, who, sizeof who),
            s->index + 1, why ? why : tr_strerror(rc));
    tr__env_free(s, e);
  }
  tr__spawnreq_free(q);
}

void tr__spawnreq_free(tr_spawnreq *q) {
  if (!q) return;
  free(q->name);
  free(q->behname);
  free(q->src);
  free(q->chunkname);
  free(q);
}

int tr__spawn_remote(tr_sched *s, tr_sched *t, tr_spawnreq *q, const char *args, size_t len,
                     tr_addr *out) {
  tr_host *h = s->h;
  if (tr__quiet(s)) {
    tr__spawnreq_free(q);
    return TR_ESTOPPED;
  }
  q->serial = tr__new_serial(t);
  tr_addr addr = ((tr_addr)t->index << 48) | q->serial;
  uv_mutex_lock(&t->actors_lock);
  int rrc = tr_map_put(&t->reserved, q->serial, q);
  uv_mutex_unlock(&t->actors_lock);
  if (rrc) {
    tr__spawnreq_free(q);
    return TR_ENOMEM;
  }
  int rc = 0;
  if (q->o.link != TR_NOADDR && !tr__alive_any(s, q->o.link)) rc = TR_EDEAD;
  if (rc == 0 && q->name) rc = name_reserve(h, q->name, addr);
  tr_env *e = rc ? NULL : tr__env_new(s, NULL, 0, args, len);
  if (!e) {
    if (rc == 0 && q->name) name_release(h, q->name, addr);
    uv_mutex_lock(&t->actors_lock);
    tr_map_del(&t->reserved, q->serial);
    uv_mutex_unlock(&t->actors_lock);
    tr__spawnreq_free(q);
    return rc ? rc : TR_ENOMEM;
  }
  e->kind = TR_K_OP;
  e->op = op_spawn;
  e->to = addr;
  e->req = (uint64_t)(uintptr_t)q;
  tr__post(s, t, e);
  *out = addr;
  return 0;
}

int tr_spawn(tr_host *h, const tr_behaviour *b, const tr_buf *args,
             const tr_spawn_options *o, tr_addr *out) {
  if (!h || !b) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  /* a C behaviour's code may share memory with the program that embeds the
   * host: it runs on another scheduler's thread only when asked to */
  tr_sched *t = tr__place(s, o, 0);
  if (!t) return TR_EINVAL;
  if (t != s) {
    tr_spawnreq *q = calloc(1, sizeof *q);
    if (!q) return TR_ENOMEM;
    q->lang = TR_LANG_C;
    q->b = b;
    if (o) q->o = *o;
    q->o.name = NULL;
    if (o && o->name && !(q->name = strdup(o->name))) {
      free(q);
      return TR_ENOMEM;
    }
    tr_addr a;
    int rc = tr__spawn_remote(s, t, q, args ? args->data : NULL, args ? args->len : 0, &a);
    if (rc == 0 && out) *out = a;
    return rc;
  }
  tr_env *init =
      tr__env_new(s, NULL, 0, args ? args->data : NULL, args ? args->len : 0);
  if (!init) return TR_ENOMEM;
  tr_actor *a;
  int rc = tr__spawn_actor(s, 0, 0, TR_LANG_C, b, o, init, NULL, 0, &a);
  if (rc) {
    tr__env_free(s, init);
    return rc;
  }
  if (out) *out = a->addr;
  return 0;
}

static void refs_add(tr_sched *s, tr_actor *act, int d) {
  if (!act->owned) return; /* (counted only for owned actors: their cold part exists) */
  tr_actor_cold *c = act->cold;
  c->refs += d;
  if (c->refs < 0) c->refs = 0;
  if (d < 0 && c->refs == 0) tr_stop(s->h, act->addr);
}

static void op_refs(tr_sched *s, tr_env *e) {
  tr_actor *act = tr__lookup(s, e->to);
  int d = e->status;
  tr__env_free(s, e);
  if (act) refs_add(s, act, d);
}

void tr__refs_add(tr_sched *s, tr_addr a, int d) {
  if (tr__closing(s->h)) return;
  if (tr__foreign(s, a)) {
    tr__op(s, a, op_refs, TR_NOADDR, 0, d, NULL, 0);
    return;
  }
  tr_actor *act = tr__lookup(s, a);
  if (act) refs_add(s, act, d);
}

/* ---- references held by envelopes (owned addresses in flight) ---- */
const char tr__no_hint;

typedef struct { tr_sched *s; int d; } refs_walk;
static void refs_one(void *ud, tr_addr a) {
  refs_walk *w = ud;
  tr__refs_add(w->s, a, w->d);
}

void tr__env_own(tr_sched *s, tr_env *e) {
  if (e->own) return; /* (its references are taken) */
  refs_walk w = {s, 1};
  e->own = tr__payload_owned(TR_ENV_PAYLOAD(e), e->len, refs_one, &w) > 0;
}

void tr__env_take_hint(tr_sched *s, tr_env *e) {
  s->own_hint = TR_NO_HINT;
  tr__env_own(s, e);
}

/* (with no scheduler: the host is being freed, no count matters) */
void tr__env_disown(tr_sched *s, tr_env *e) {
  e->own = 0;
  if (!s) return;
  refs_walk w = {s, -1};
  tr__payload_owned(TR_ENV_PAYLOAD(e), e->len, refs_one, &w);
}

int tr_retain(tr_host *h, tr_addr a) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  if (!tr__alive_any(s, a)) return TR_EDEAD;
  return tr__op(s, a, op_refs, TR_NOADDR, 0, 1, NULL, 0);
}

int tr_release(tr_host *h, tr_addr a) {
  if (!h) return TR_EINVAL;
  if (tr__closing(h)) return 0;
  tr_sched *s = tr__here(h);
  if (!tr__alive_any(s, a)) return TR_EDEAD;
  return tr__op(s, a, op_refs, TR_NOADDR, 0, -1, NULL, 0);
}

/* ---- stopping and death -------------------------------------------------------------------------- */
static int hooks(tr_sched *s, tr_actor *a, int which) {
  if (!a->started) return 0;
  return a->lang == TR_LANG_C ? tr__c_hooks(s, a, which) : tr__lua_hooks(s, a, which);
}

static void stop_message(tr_sched *s, tr_actor *a) {
  a->stop_pending = 0;
  if (a->state == TR_S_DEAD) return;
  int veto = hooks(s, a, 0); /* on_stopping */
  if (veto && !tr__quiet(s)) {
    tr__stop_finish(s, a, 1);
    return;
  }
  a->state = TR_S_STOPPING;
  if (a->lang == TR_LANG_LUA) hooks(s, a, 1); /* C: tr__stop_finish runs on_stopped */
  tr__stop_finish(s, a, 0);
}

static void stop_local(tr_sched *s, tr_actor *a, int self) {
  if (a->stop_pending || a->state == TR_S_STOPPING) return;
  tr_env *e = tr__env_new(s, NULL, 0, NULL, 0);
  if (!e) return;
  e->kind = TR_K_STOP;
  e->to = a->addr;
  /* asked from its own handler: it stops itself (reason "normal") */
  if (self) e->from = a->addr;
  a->stop_pending = 1;
  q_push(&a->priv, e);
  tr__schedule(s, a);
}

static void op_stop(tr_sched *s, tr_env *e) {
  tr_actor *a = tr__lookup(s, e->to);
  tr__env_free(s, e);
  if (a) stop_local(s, a, 0);
}

int tr_stop(tr_host *h, tr_addr addr) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  tr_actor *a = tr__lookup(s, addr);
  if (!a) {
    if (!tr__alive_any(s, addr)) return TR_EDEAD;
    return tr__op(s, addr, op_stop, TR_NOADDR, 0, 0, NULL, 0);
  }
  stop_local(s, a, s->current == a);
  return 0;
}

static void kill_local(tr_sched *s, tr_actor *a) {
  if (a->running) {
    a->kill_pending = 1;
    return;
  }
  tr__actor_died(s, a, TR_EKILLED, NULL, NULL);
}

static void op_kill(tr_sched *s, tr_env *e) {
  tr_actor *a = tr__lookup(s, e->to);
  tr__env_free(s, e);
  if (a) kill_local(s, a);
}

int tr_kill(tr_host *h, tr_addr addr) {
  if (!h) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  tr_actor *a = tr__lookup(s, addr);
  if (!a) {
    if (!tr__alive_any(s, addr)) return TR_EDEAD;
    return tr__op(s, addr, op_kill, TR_NOADDR, 0, 0, NULL, 0);
  }
  kill_local(s, a);
  return 0;
}

static void fail_queue(tr_sched *s, tr_actor *a, tr_queue *q, const char *msg) {
  tr_env *e;
  while ((e = q_pop(q))) {
    if (e->kind == TR_K_CALL && e->req)
      tr__reply_error(s, a->addr, e->from, e->req, TR_EDEAD, msg, NULL);
    tr__env_free(s, e);
  }
}

void tr__actor_died(tr_sched *s, tr_actor *a, int code, const char *msg, const char *tb) {
  if (a->state == TR_S_DEAD) return;
  tr_host *h = s->h;
  if (s->cb_actor == a) s->cb_actor = NULL; /* its callback may go on: `a` may be freed below */
  /* the words are only built when someone will read them (a quiet death,
   * e.g. of 10^6 idle actors at shutdown, formats nothing) */
  char who[96] = "", text[256] = "";
  tr_actor_cold *c = a->cold;
  if (a->cur || a->priv.n || a->pub.n || c->owed || a->calls || c->links || c->room_head ||
      code == TR_ECRASHED || code == TR_EOOM || code == TR_ETIMEOUT) {
    fmt_addr(h, a->addr, who, sizeof who);
    snprintf(text, sizeof text, "%s stopped (%s)", who, tr__reason_name(code, a->stop_self));
  }
  a->state = TR_S_DEAD;
  /* names first: whoever sees it gone from the table (tr_whereis, from
   * another scheduler) then finds its names free too */
  tr__name_remove_all(h, a);
  actors_del(s, TR_ADDR_SERIAL(a->addr));
  /* the message being handled */
  if (a->cur) {
    tr_env *e = a->cur;
    a->cur = NULL;
    if (e->kind == TR_K_CALL && e->req) {
      if (code == TR_ECRASHED)
        tr__reply_error(s, a->addr, e->from, e->req, TR_ECRASHED, msg, tb);
      else tr__reply_error(s, a->addr, e->from, e->req, TR_EDEAD, text, NULL);
    }
    tr__env_free(s, e);
  }
  fail_queue(s, a, &a->priv, text);
  fail_queue(s, a, &a->pub, text);
  tr__env_free(s, a->wake);
  a->wake = NULL;
  if (a->wait == TR_W_SLEEP && a->wait_req) { /* its wake-up timer would keep the loop alive */
    tr_tentry *t = (tr_tentry *)(uintptr_t)a->wait_req;
    tr__timer_del(s, t);
    free(t);
    a->wait_req = 0;
  }
  tr__set_wait(a, TR_W_NONE);
  while (c->owed) {
    tr_owed *o = c->owed;
    uint64_t req = o->req;
    tr_addr caller = o->caller;
    owed_unlink(s, o);
    free(o);
    tr__reply_error(s, a->addr, caller, req, TR_EDEAD, text, NULL);
  }
  tr__death_notify(s, a, who, code, msg, tb);
  /* calls this actor made: a C callback hears TR_EDEAD now, while the
   * actor's state (which its `ud` may point into) still exists */
  while (a->calls) {
    tr_pending *p = a->calls;
    a->calls = p->next;
    p->prev = p->next = NULL;
    p->owner = NULL;
    p->caller = TR_NOADDR;
    tr_reply_cb cb = p->kind == TR_P_CB ? p->cb : NULL;
    void *ud = p->ud;
    tr__pending_free(s, p);
    if (cb) {
      tr_buf b;
      tr_buf_init(&b);
      tr_pack_str(&b, text);
      tr_msg m;
      tr__msg_init(&m, b.data, b.len);
      cb(h, TR_EDEAD, &m, ud);
      tr__msg_done(&m);
      tr_buf_free(&b);
    }
  }
  /* room it asked for on this scheduler: the callback hears TR_EDEAD now
   * too; the entry stays in that mailbox's list, cancelled */
  c = a->cold;
  while (c->asks) {
    tr_roomwait *w = c->asks;
    asks_unlink(w);
    tr_room_cb cb = w->cb;
    void *ud = w->ud;
    w->cb = NULL;
    w->ud = NULL;
    w->cancelled = 1;
    room_cb_call(s, TR_NOADDR, cb, w->to, TR_EDEAD, ud);
  }
  if (s->done_head) done_flush_caller(s, a->addr);
  c = a->cold; /* (as it is now) */
  /* unlink first: timer_free cannot find `a` (it left the actor table above) */
  while (c->timers) {
    tr_timer *t = c->timers;
    c->timers = t->next;
    t->prev = t->next = NULL;
    timer_free(s, t);
  }
  if (a->lang == TR_LANG_C) tr__c_destroy(s, a);
  else tr__lua_destroy(s, a);
  /* senders waiting for room: their sends fail */
  c = a->cold;
  tr_roomwait *w = c->room_head;
  if (w) c->room_head = c->room_tail = NULL;
  while (w) {
    tr_roomwait *next = w->next;
    if (w->env && tr__foreign(s, w->sender)) { /* its send fails there */
      tr__reply_error(s, a->addr, w->sender, w->env->req, TR_EDEAD, text[0] ? text : NULL, NULL);
      tr__env_free(s, w->env);
    } else if (w->env) {
      tr_actor *sender = tr__lookup(s, w->sender);
      int is_call = w->env->kind == TR_K_CALL;
      uint64_t req = w->env->req;
      if (is_call) /* the call never reached the mailbox */
        tr__pending_free(s, tr__pending_get(s, req));
      tr__env_free(s, w->env);
      /* only if it still waits for this wait (not for room elsewhere, after
       * this call timed out) */
      if (sender && sender->wait == TR_W_ROOM && !sender->wake &&
          sender->wait_target == a->addr && (!is_call || sender->wait_req == req)) {
        tr_env *wk = tr__env_new(s, NULL, 0, NULL, 0);
        if (wk) {
          wk->kind = TR_K_WAKE;
          wk->status = TR_EDEAD;
          sender->wake = wk;
        }
        tr__set_wait(sender, wk ? TR_W_NONE : TR_W_YIELD);
        tr__schedule(s, sender);
      }
    } else if (w->cancelled) {
    } else if (w->cb) {
      room_cb_run(s, w, a->addr, TR_EDEAD);
    } else { /* another scheduler's asker (tr__room_wait) */
      tr__reply(s, a->addr, w->sender, w->req, TR_EDEAD, NULL, 0);
    }
    free(w);
    w = next;
  }
  if (code == TR_ECRASHED || code == TR_EOOM || (code == TR_ETIMEOUT && msg))
    tr__log(h, "%s %s: %s", who, tr__reason_name(code, 0), msg ? msg : "(no message)");
  actor_free_if_done(s, a);
  tr__drain_exits(s);
}

/* ---- names ---------------------------------------------------------------------------------------- */
static size_t name_hash(const char *s) {
  uint64_t x = UINT64_C(1469598103934665603); /* FNV-1a */
  for (; *s; s++) x = (x ^ (unsigned char)*s) * UINT64_C(1099511628211);
  return (size_t)(x ^ (x >> 29));
}

/* The link that points at `name`'s record (for removal), or NULL. */
static tr_namerec **name_find(tr_host *h, const char *name) {
  if (!h->names) return NULL;
  tr_namerec **pp = &h->names[name_hash(name) & (h->names_cap - 1)];
  for (; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->name, name) == 0) return pp;
  return NULL;
}

static int names_grow(tr_host *h) {
  size_t cap = h->names_cap ? h->names_cap * 2 : 64;
  tr_namerec **nb = calloc(cap, sizeof *nb);
  if (!nb) return TR_ENOMEM;
  for (size_t i = 0; i < h->names_cap; i++) {
    tr_namerec *r = h->names[i];
    while (r) {
      tr_namerec *next = r->next;
      size_t b = name_hash(r->name) & (cap - 1);
      r->next = nb[b];
      nb[b] = r;
      r = next;
    }
  }
  free(h->names);
  h->names = nb;
  h->names_cap = cap;
  return 0;
}

static void name_drop(tr_host *h, tr_namerec **pp) {
  tr_namerec *r = *pp;
  *pp = r->next;
  h->names_n--;
  free(r->name);
  free(r);
}

/* The registry (name -> address) is shared by the schedulers, under
 * names_lock; each actor also lists its own names (touched only by its
 * scheduler) so that they go with it. */
static int name_reserve(tr_host *h, const char *name, tr_addr a) {
  uv_mutex_lock(&h->names_lock);
  int rc = 0;
  tr_namerec **pp = name_find(h, name);
  if (pp) {
    rc = (*pp)->addr == a ? 0 : TR_EEXISTS;
  } else if (h->names_n >= h->names_cap && names_grow(h)) {
    rc = TR_ENOMEM;
  } else {
    tr_namerec *r = calloc(1, sizeof *r);
    char *copy = strdup(name);
    if (!r || !copy) {
      free(r), free(copy);
      rc = TR_ENOMEM;
    } else {
      r->name = copy;
      r->addr = a;
      size_t b = name_hash(name) & (h->names_cap - 1);
      r->next = h->names[b];
      h->names[b] = r;
      h->names_n++;
    }
  }
  uv_mutex_unlock(&h->names_lock);
  return rc;
}

/* Drop the registry's entry for name if it still names a. */
static void name_release(tr_host *h, const char *name, tr_addr a) {
  uv_mutex_lock(&h->names_lock);
  tr_namerec **pp = name_find(h, name);
  if (pp && (*pp)->addr == a) name_drop(h, pp);
  uv_mutex_unlock(&h->names_lock);
}

/* An actor's own list changes under names_lock too: tr_addr_format reads
 * another scheduler's actor's first name. */
static int name_attach(tr_actor *act, const char *name) {
  for (tr_name *n = act->names; n; n = n->next)
    if (strcmp(n->name, name) == 0) return 0;
  tr_name *n = calloc(1, sizeof *n);
  char *copy = strdup(name);
  if (!n || !copy) {
    free(n), free(copy);
    return TR_ENOMEM;
  }
  n->name = copy;
  uv_mutex_lock(&act->s->h->names_lock);
  n->next = act->names;
  act->names = n;
  uv_mutex_unlock(&act->s->h->names_lock);
  return 0;
}

static void name_detach(tr_actor *act, const char *name) {
  tr_name *gone = NULL;
  uv_mutex_lock(&act->s->h->names_lock);
  for (tr_name **pp = &act->names; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->name, name) == 0) {
      gone = *pp;
      *pp = gone->next;
      break;
    }
  }
  uv_mutex_unlock(&act->s->h->names_lock);
  if (gone) {
    free(gone->name);
    free(gone);
  }
}

static void op_name_attach(tr_sched *s, tr_env *e) { /* the actor died meanwhile: undo */
  tr_actor *act = tr__lookup(s, e->to);
  if (!act || name_attach(act, TR_ENV_PAYLOAD(e))) name_release(s->h, TR_ENV_PAYLOAD(e), e->to);
  tr__env_free(s, e);
}

static void op_name_detach(tr_sched *s, tr_env *e) {
  tr_actor *act = tr__lookup(s, e->to);
  if (act) name_detach(act, TR_ENV_PAYLOAD(e));
  tr__env_free(s, e);
}

int tr_register(tr_host *h, const char *name, tr_addr a) {
  if (!h || !name || !*name) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  tr_actor *act = tr__lookup(s, a);
  if (!act && !tr__alive_any(s, a)) return TR_EDEAD;
  int rc = name_reserve(h, name, a);
  if (rc) return rc;
  if (!act) /* NUL included: the op reads a C string */
    return tr__op(s, a, op_name_attach, TR_NOADDR, 0, 0, name, strlen(name) + 1);
  if (name_attach(act, name)) {
    name_release(h, name, a);
    return TR_ENOMEM;
  }
  return 0;
}

int tr_unregister(tr_host *h, const char *name) {
  if (!h || !name) return TR_EINVAL;
  tr_sched *s = tr__here(h);
  uv_mutex_lock(&h->names_lock);
  tr_namerec **pp = name_find(h, name);
  tr_addr a = pp ? (*pp)->addr : TR_NOADDR;
  if (pp) name_drop(h, pp);
  uv_mutex_unlock(&h->names_lock);
  if (!pp) return TR_ENOTFOUND;
  tr_actor *act = tr__lookup(s, a);
  if (act) name_detach(act, name);
  else if (tr__foreign(s, a)) tr__op(s, a, op_name_detach, TR_NOADDR, 0, 0, name, strlen(name) + 1);
  return 0;
}

int tr_whereis(tr_host *h, const char *name, tr_addr *out) {
  if (!h || !name) return TR_EINVAL;
  uv_mutex_lock(&h->names_lock);
  tr_namerec **pp = name_find(h, name);
  tr_addr a = pp ? (*pp)->addr : TR_NOADDR;
  uv_mutex_unlock(&h->names_lock);
  if (a == TR_NOADDR || !tr__alive_any(tr__here(h), a)) return TR_ENOTFOUND;
  if (out) *out = a;
  return 0;
}

int tr__name_remove_all(tr_host *h, tr_actor *a) {
  if (!a->names) return 0;
  uv_mutex_lock(&h->names_lock);
  while (a->names) {
    tr_name *n = a->names;
    a->names = n->next;
    tr_namerec **pp = name_find(h, n->name);
    if (pp && (*pp)->addr == a->addr) name_drop(h, pp);
    free(n->name);
    free(n);
  }
  uv_mutex_unlock(&h->names_lock);
  return 0;
}

/* ---- C behaviours registry ------------------------------------------------------------------------- */
int tr_register_behaviour(tr_host *h, const tr_behaviour *b) {
  if (!h || !b || !b->name) return TR_EINVAL;
  if (tr__find_cbehaviour(h, b->name)) return TR_EEXISTS;
  tr_cbeh_reg *r = calloc(1, sizeof *r);
  if (!r) return TR_ENOMEM;
  r->b = b;
  uv_mutex_lock(&h->names_lock);
  r->next = h->cbehs;
  h->cbehs = r;
  uv_mutex_unlock(&h->names_lock);
  return 0;
}

/* Entries are only ever added at the head and freed with the host: a reader
 * that has the head may walk without the lock. */
const tr_behaviour *tr__find_cbehaviour(tr_host *h, const char *name) {
  uv_mutex_lock(&h->names_lock);
  tr_cbeh_reg *head = h->cbehs;
  uv_mutex_unlock(&h->names_lock);
  for (tr_cbeh_reg *r = head; r; r = r->next)
    if (strcmp(r->b->name, name) == 0) return r->b;
  return NULL;
}

static const tr_behaviour dl_sentinel = {.name = ""};

int tr_load_behaviours(tr_host *h, const char *path) {
  if (!h || !path) return TR_EINVAL;
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    tr__log(h, "cannot load %s: %s", path, dlerror());
    return TR_ENOTFOUND;
  }
  const tr_behaviour *const *list = dlsym(dl, TR_BEHAVIOURS_SYMBOL);
  if (!list) {
    tr__log(h, "%s exports no '%s'", path, TR_BEHAVIOURS_SYMBOL);
    dlclose(dl);
    return TR_ENOTFOUND;
  }
  int n = 0;
  for (; list[n]; n++) {
    const tr_behaviour *old = tr__find_cbehaviour(h, list[n]->name);
    if (old == list[n]) continue;
    if (old) {
      tr__log(h, "%s: behaviour '%s' is already registered", path, list[n]->name);
      continue;
    }
    tr_register_behaviour(h, list[n]);
  }
  /* keep the library open until the host is freed (its code is in use) */
  tr_cbeh_reg *r = calloc(1, sizeof *r);
  if (!r) {
    dlclose(dl);
    return TR_ENOMEM;
  }
  r->dl = dl;
  r->b = &dl_sentinel;
  uv_mutex_lock(&h->names_lock);
  r->next = h->cbehs;
  h->cbehs = r;
  uv_mutex_unlock(&h->names_lock);
  return n;
}

/* ---- host ------------------------------------------------------------------------------------------ */
void tr_host_options_init(tr_host_options *o) { memset(o, 0, sizeof *o); }

static void on_close(uv_handle_t *hd) {
  tr_sched *s = hd->data;
  s->handles_open--;
}

static int sched_init(tr_host *h, tr_sched *s, unsigned index) {
  s->h = h;
  s->index = index;
  s->own_hint = TR_NO_HINT;
  if (index == 0) {
    s->loop = h->loop;
  } else {
    if (uv_loop_init(&s->own_loop)) return TR_ENOMEM;
    s->loop = &s->own_loop;
  }
  /* address space only: memory is taken as it is used */
  tr_arena_init(&s->arena, sizeof(void *) >= 8 ? (size_t)16 << 30 : (size_t)256 << 20);
  tr_stab_init(&s->actors);
  tr_map_init(&s->owed);
  tr_map_init(&s->timers);
  tr_map_init(&s->mons);
  tr_map_init(&s->reserved);
  if (uv_mutex_init(&s->inbox_lock)) return TR_ENOMEM;
  if (uv_mutex_init(&s->actors_lock)) return TR_ENOMEM;
  uv_idle_init(s->loop, &s->idle);
  uv_timer_init(s->loop, &s->timer);
  uv_unref((uv_handle_t *)&s->timer);
  uv_async_init(s->loop, &s->async, on_async);
  uv_prepare_init(s->loop, &s->prepare);
  uv_prepare_start(&s->prepare, on_prepare);
  uv_unref((uv_handle_t *)&s->prepare);
  s->idle.data = s->timer.data = s->async.data = s->prepare.data = s;
  /* the first scheduler's loop may end when idle (tr_host_run returns); the
   * others keep theirs until the host is freed */
  if (index == 0) uv_unref((uv_handle_t *)&s->async);
  s->handles_open = 4;
  return 0;
}

static void sched_main(void *arg) {
  tr_sched *s = arg;
  tr__tls_sched = s;
  /* the state is made here so that its memory comes from this thread's
   * malloc arena, not interleaved with the first scheduler's */
  s->start_rc = tr__lua_attach(s, NULL, s->h->sched[0].L);
  uv_sem_post(&s->started);
  if (s->start_rc) return;
  while (!__atomic_load_n(&s->exit_req, __ATOMIC_ACQUIRE)) uv_run(s->loop, UV_RUN_DEFAULT);
  /* a watchdog scan that saw this thread in a handler ends (its pthread_kill
   * included) before the thread is gone */
  if (s->h->wd_running) {
    uv_mutex_lock(&s->h->wd_lock);
    uv_mutex_unlock(&s->h->wd_lock);
  }
}

static void op_exit(tr_sched *s, tr_env *e) {
  tr__env_free(s, e);
  __atomic_store_n(&s->exit_req, 1, __ATOMIC_RELEASE);
  uv_stop(s->loop);
}

static unsigned default_schedulers(void) {
  const char *env = getenv("TROUPE_SCHEDULERS");
  if (env && *env) {
    char *end;
    long n = strtol(env, &end, 10);
    if (*end == 0 && n >= 1) return n > TR_MAX_SCHEDULERS ? TR_MAX_SCHEDULERS : (unsigned)n;
  }
  unsigned n = uv_available_parallelism();
  return n < 1 ? 1 : n > TR_MAX_SCHEDULERS ? TR_MAX_SCHEDULERS : n;
}

unsigned tr_host_schedulers(tr_host *h) { return h ? h->nsched : 0; }

int tr__host_create(tr_host **out, const tr_host_options *opts, lua_State *L) {
  if (!out) return TR_EINVAL;
  *out = NULL;
  if (opts && opts->schedulers > TR_MAX_SCHEDULERS) return TR_EINVAL;
  tr_host *h = calloc(1, sizeof *h);
  if (!h) return TR_ENOMEM;
  h->nsched = opts && opts->schedulers ? opts->schedulers : default_schedulers();
  h->sched = aligned_alloc(TR_CACHELINE, h->nsched * sizeof *h->sched);
  if (h->sched) memset(h->sched, 0, h->nsched * sizeof *h->sched);
  if (!h->sched || uv_mutex_init(&h->names_lock)) {
    free(h->sched);
    free(h);
    return TR_ENOMEM;
  }
  if (opts && opts->loop) {
    h->loop = opts->loop;
  } else {
    if (uv_loop_init(&h->own_loop)) {
      uv_mutex_destroy(&h->names_lock);
      free(h->sched);
      free(h);
      return TR_ENOMEM;
    }
    h->loop = &h->own_loop;
    h->owns_loop = 1;
  }
  h->mailbox_cap = opts && opts->mailbox_capacity ? opts->mailbox_capacity : TR_DEFAULT_MAILBOX;
  h->call_timeout =
      opts && opts->call_timeout_ms > 0 ? opts->call_timeout_ms : TR_DEFAULT_TIMEOUT_MS;
  h->log = opts ? opts->log : NULL;
  h->log_ud = opts ? opts->log_ud : NULL;
  h->slice_ms = !opts || opts->slice_ms == 0 ? TR_DEFAULT_SLICE_MS
                                            : (opts->slice_ms < 0 ? -1 : opts->slice_ms);
  h->mem_limit = opts ? opts->mem_limit : 0;
  uv_async_init(h->loop, &h->quiesce, on_quiesce);
  h->quiesce.data = h;
  uv_unref((uv_handle_t *)&h->quiesce);
  uv_check_init(h->loop, &h->polled);
  h->polled.data = h;
  uv_check_start(&h->polled, on_polled);
  uv_unref((uv_handle_t *)&h->polled);
  h->quiesce_open = 1;
  int rc = 0;
  unsigned made = 0;
  for (; rc == 0 && made < h->nsched; made++) rc = sched_init(h, &h->sched[made], made);
  if (rc == 0) rc = tr__lua_attach(&h->sched[0], L, NULL);
  if (rc == 0) rc = tr__preempt_start(h);
  for (unsigned i = 1; rc == 0 && i < h->nsched; i++) {
    tr_sched *s = &h->sched[i];
    if (uv_sem_init(&s->started, 0)) {
      rc = TR_ENOMEM;
      break;
    }
    if (uv_thread_create(&s->own_thread, sched_main, s)) {
      rc = TR_ENOMEM;
    } else {
      s->thread_started = 1;
      uv_sem_wait(&s->started); /* main code reads its package paths meanwhile: wait */
      rc = s->start_rc;
    }
    uv_sem_destroy(&s->started);
  }
  if (rc) {
    h->owns_lua = L == NULL;
    h->nsched_made = made;
    tr_host_free(h);
    return rc;
  }
  h->nsched_made = made;
  *out = h;
  return 0;
}

int tr_host_new(tr_host **out, const tr_host_options *opts) {
  return tr__host_create(out, opts, NULL);
}

uv_loop_t *tr_host_loop(tr_host *h) { return h ? h->loop : NULL; }

int tr_host_run(tr_host *h) {
  if (!h) return TR_EINVAL;
  tr_sched *s = &h->sched[0];
  if (s->in_callback || tr__here(h) != s) return TR_EINVAL;
  __atomic_store_n(&h->exiting, 0, __ATOMIC_RELAXED);
  uv_run(h->loop, UV_RUN_DEFAULT);
  return h->exit_code;
}

static void op_host_exit(tr_sched *s, tr_env *e) {
  tr__env_free(s, e);
  /* late (the loop already stopped for it, a new tr_host_run began, or the
   * host is being freed): a stop now would end the wrong run */
  if (__atomic_load_n(&s->h->exiting, __ATOMIC_ACQUIRE) && !tr__closing(s->h)) uv_stop(s->loop);
}

void tr_host_exit(tr_host *h, int code) {
  if (!h) return;
  h->exit_code = code;
  __atomic_store_n(&h->exiting, 1, __ATOMIC_RELEASE);
  tr_sched *s = tr__here(h);
  if (s->index == 0) uv_stop(h->loop);
  else tr__op(s, (tr_addr)1, op_host_exit, TR_NOADDR, 0, 0, NULL, 0); /* scheduler 1's loop */
}

struct addr_list { tr_addr *a; size_t n; };
static void add_addr(void *ud, void *val) {
  struct addr_list *l = ud;
  l->a[l->n++] = ((tr_actor *)val)->addr;
}

static size_t live_actors(tr_sched *s, tr_addr **out) {
  struct addr_list l = {malloc((s->actors.n + 1) * sizeof *l.a), 0};
  if (!l.a) return 0;
  tr_stab_each(&s->actors, add_addr, &l);
  *out = l.a;
  return l.n;
}

/* Stop every actor of s gracefully (stop hooks run, vetoes ignored). */
static void shutdown_sched(tr_sched *s) {
  tr_addr *list = NULL;
  size_t n = live_actors(s, &list);
  int was = s->no_veto;
  s->no_veto = 1;
  for (size_t i = n; i-- > 0;) {
    tr_actor *a = tr__lookup(s, list[i]);
    if (!a || a->running) continue;
    a->running = 1;
    tr_actor *was_current = s->current; /* shutdown may be called from a handler */
    s->current = a;
    stop_message(s, a);
    s->current = was_current;
    a->running = 0;
    actor_free_if_done(s, a);
  }
  s->no_veto = was;
  free(list);
}

static void op_shutdown(tr_sched *s, tr_env *e) {
  tr__env_free(s, e);
  shutdown_sched(s);
}

void tr_host_shutdown(tr_host *h) {
  if (!h) return;
  tr_sched *s = tr__here(h);
  for (unsigned i = 0; i < h->nsched; i++)
    if (i != s->index) tr__op(s, (tr_addr)i << 48 | 1, op_shutdown, TR_NOADDR, 0, 0, NULL, 0);
  shutdown_sched(s); /* s->no_veto meanwhile: h->closing is read by every thread */
}

void tr_host_stats_get(tr_host *h, tr_host_stats *out) {
  if (!h || !out) return;
  memset(out, 0, sizeof *out);
  for (unsigned i = 0; i < h->nsched; i++) { /* others' counters: a recent value */
    tr_sched *s = &h->sched[i];
    out->actors += __atomic_load_n(&s->actors.n, __ATOMIC_RELAXED);
    out->spawned += __atomic_load_n(&s->n_spawned, __ATOMIC_RELAXED);
    out->messages += __atomic_load_n(&s->n_msgs, __ATOMIC_RELAXED);
    out->calls += __atomic_load_n(&s->n_calls, __ATOMIC_RELAXED);
  }
}

/* Kill every actor of s (the host is closing: nobody is notified). */
static void sched_kill_all(tr_sched *s) {
  tr_addr *list = NULL;
  size_t n = live_actors(s, &list);
  for (size_t i = 0; i < n; i++) {
    tr_actor *a = tr__lookup(s, list[i]);
    if (a) {
      int was = a->running;
      a->running = 0;
      tr__actor_died(s, a, TR_EKILLED, NULL, NULL);
      if (was) a->running = 1; /* freed by whoever runs it */
    }
  }
  free(list);
  /* runnable list: actors there are dead now; free them */
  while (s->runq_head) {
    tr_actor *a = s->runq_head;
    s->runq_head = a->runq_next;
    a->in_runq = 0;
    actor_free_if_done(s, a);
  }
  s->runq_tail = NULL;
}

static void on_host_close(uv_handle_t *hd) {
  tr_host *h = hd->data;
  h->host_handles_open--;
}

/* The host's own handles on its loop (quiescence); closed once. */
static void host_handles_close(tr_host *h) {
  if (!h->quiesce_open) return;
  h->quiesce_open = 0;
  h->host_handles_open = 2;
  uv_close((uv_handle_t *)&h->quiesce, on_host_close);
  uv_close((uv_handle_t *)&h->polled, on_host_close);
}

/* After every scheduler thread has stopped: free what s holds. */
static void sched_free(tr_host *h, tr_sched *s) {
  for (uint32_t i = 0; i < s->pslots_n; i++) {
    tr_pending *p = s->pslots[i].p;
    if (!p) continue;
    p->te.idx = UINT32_MAX;
    if (p->kind != TR_P_BLOCK) {
      s->pslots[i].p = NULL;
      tr__env_free(s, p->result);
      if (p->kind == TR_P_CB && p->cb == room_answer) free(p->ud); /* never called now */
      free(p);
    } else {
      p->done = 1; /* a blocked caller wakes to an empty answer */
    }
  }
  for (size_t i = 0; s->timers.slots && i <= s->timers.mask; i++) {
    if (!s->timers.slots[i].key) continue;
    tr_timer *t = s->timers.slots[i].val;
    tr__env_free(s, t->tmpl);
    free(t);
  }
  for (uint32_t i = 0; i < s->heap_n; i++)
    if (s->heap[i]->kind == TR_T_SLEEP || s->heap[i]->kind == TR_T_FLAG) free(s->heap[i]);
  s->heap_n = 0;
  s->fifo_head = s->fifo_tail = s->fifo_live = 0; /* calls' own entries, freed with them */
  s->fifo_last = 0;
  tr__lua_detach(s);
  uv_close((uv_handle_t *)&s->idle, on_close);
  uv_close((uv_handle_t *)&s->timer, on_close);
  uv_close((uv_handle_t *)&s->async, on_close);
  uv_close((uv_handle_t *)&s->prepare, on_close);
  if (s->index == 0) host_handles_close(h);
  if (s->index != 0) {
    uv_run(s->loop, UV_RUN_DEFAULT);
    uv_loop_close(s->loop);
  } else if (h->owns_loop) {
    uv_run(h->loop, UV_RUN_DEFAULT);
    uv_loop_close(h->loop);
  } else {
    while (s->handles_open > 0 || h->host_handles_open > 0) uv_run(h->loop, UV_RUN_NOWAIT);
  }
  uv_mutex_lock(&s->inbox_lock);
  tr_env *e = s->inbox_head;
  s->inbox_head = s->inbox_tail = NULL;
  uv_mutex_unlock(&s->inbox_lock);
  while (e) {
    tr_env *next = e->next;
    if (e->kind == TR_K_OP && e->op == op_spawn)
      tr__spawnreq_free((tr_spawnreq *)(uintptr_t)e->req);
    tr__env_free(NULL, e);
    e = next;
  }
  uv_mutex_destroy(&s->inbox_lock);
  uv_mutex_destroy(&s->actors_lock);
  while (s->pool) {
    tr_env *p = s->pool;
    s->pool = p->next;
    free(p);
  }
  while (s->ppool) {
    tr_pending *p = s->ppool;
    s->ppool = p->next;
    free(p);
  }
  tr_stab_free(&s->actors);
  tr_map_free(&s->reserved);
  free(s->pslots); /* a blocked caller's entry, freed by it, is found no more */
  s->pslots = NULL;
  s->pslots_n = s->pslots_cap = s->pfree = 0;
  tr_map_free(&s->owed);
  tr_map_free(&s->timers);
  for (size_t i = 0; s->mons.slots && i <= s->mons.mask; i++)
    if (s->mons.slots[i].key) free(s->mons.slots[i].val);
  tr_map_free(&s->mons);
  for (size_t i = 0; i < s->exitq_n; i++) free(s->exitq[i].msg);
  free(s->exitq);
  free(s->heap);
  free(s->fifo);
  s->fifo = NULL;
  tr_arena_destroy(&s->arena); /* its actors and Lua state are gone */
}

void tr_host_free(tr_host *h) {
  if (!h) return;
  __atomic_store_n(&h->closing, 1, __ATOMIC_RELEASE);
  unsigned made = h->nsched_made;
  if (made == h->nsched) {
    extern void tr__repl_host_free(tr_host *);
    tr__repl_host_free(h); /* REPL sessions and control sockets (repl.c) */
  }
  /* stop the other schedulers' threads: from here on this thread does all */
  for (unsigned i = 1; i < made; i++) {
    tr_sched *s = &h->sched[i];
    if (!s->thread_started) continue;
    tr_env *e = tr__env_new(NULL, NULL, 0, NULL, 0);
    if (e) {
      e->kind = TR_K_OP;
      e->op = op_exit;
      tr__post(NULL, s, e);
    } else { /* no memory for the message: stop it the blunt way */
      __atomic_store_n(&s->exit_req, 1, __ATOMIC_RELEASE);
      uv_async_send(&s->async);
    }
    uv_thread_join(&s->own_thread);
    s->thread_started = 0;
  }
  /* only now: a runaway handler on another scheduler leaves its turn (and
   * the thread sees op_exit) only when it is preempted */
  tr__preempt_stop(h);
  /* everything is freed from here on: no page goes back to the system
   * (a madvise per page) just before the arenas are unmapped */
  for (unsigned i = 0; i < made; i++) h->sched[i].arena.keep = 1;
  if (made == h->nsched) {
    for (unsigned i = made; i-- > 0;) {
      tr__tls_sched = &h->sched[i]; /* tr_* calls made by dying actors' hooks */
      sched_kill_all(&h->sched[i]);
    }
    /* answers that crossed schedulers (callers' C callbacks are called
     * exactly once), then answered calls */
    for (int round = 0; round < 2; round++)
      for (unsigned i = 0; i < made; i++) {
        tr_sched *s = &h->sched[i];
        tr__tls_sched = s;
        s->in_callback++;
        inbox_run(s);
        run_done(s);
        s->in_callback--;
      }
    tr__tls_sched = NULL;
  }
  for (unsigned i = made; i-- > 0;) sched_free(h, &h->sched[i]);
  if (made == 0) { /* no scheduler was made: only the host's own handles */
    host_handles_close(h);
    if (h->owns_loop) {
      uv_run(h->loop, UV_RUN_DEFAULT);
      uv_loop_close(h->loop);
    } else {
      while (h->host_handles_open > 0) uv_run(h->loop, UV_RUN_NOWAIT);
    }
  }
  for (size_t i = 0; i < h->names_cap; i++)
    while (h->names[i]) name_drop(h, &h->names[i]);
  free(h->names);
  while (h->cbehs) {
    tr_cbeh_reg *r = h->cbehs;
    h->cbehs = r->next;
    if (r->dl) dlclose(r->dl);
    free(r);
  }
  uv_mutex_destroy(&h->names_lock);
  free(h->sched);
  free(h);
}
