/* Internal structures of the troupe host. Not installed. */
#ifndef TROUPE_INTERNAL_H
#define TROUPE_INTERNAL_H

#include "troupe.h"
#include "map.h"
#include "arena.h"

#include <lua.h>
#include <lauxlib.h>
#include <msgpack.h>
#include <stdbool.h>
#include <string.h>
#include <signal.h>

/* Lua code that cannot be preempted (it runs inside a C function that called
 * back into Lua) for this many slices (or past its actor's CPU limit) is
 * stopped with an error (preempt.c) */
#define TR_UNYIELDING_SLICES 500
#define TR_BATCH 128        /* messages one actor handles per turn */
#define TR_TURNS 2048       /* actor turns per loop iteration before I/O */
#define TR_ENV_INLINE 80    /* method + payload bytes kept inside an envelope */
#define TR_MAX_PAYLOAD (64u << 20) /* largest payload accepted (64 MiB) */
#define TR_ENV_POOL_MAX 4096

#define TR_EXT_ADDR 1 /* MessagePack extension type of a strong address */
#define TR_EXT_WEAK 2 /* ... of a weak address */
#define TR_EXT_OWNED 3 /* ... of a strong address of an owned actor, written by
                        * the Lua encoder: an envelope carrying one holds a
                        * strong reference for it (tr__env_own). Readers take
                        * it for a strong address (TR_T_ADDR). */

typedef struct tr_sched tr_sched;
typedef struct tr_actor tr_actor;
typedef struct tr_pending tr_pending;

/* ---- envelopes ------------------------------------------------------------- */
enum {
  TR_K_SEND = 0, /* one-way message */
  TR_K_CALL,     /* request: `req` names the pending call */
  TR_K_REPLY,    /* answer: `status` is TR_OK, TR_FAILED or a TR_E* code */
  TR_K_INIT,     /* first message: spawn args; runs init and on_start */
  TR_K_STOP,     /* graceful stop request */
  TR_K_WAKE,     /* resume a suspended handler (sleep over, room made) */
  TR_K_OP        /* run `op` on the target's scheduler (cross-scheduler work) */
};

typedef struct tr_env {
  struct tr_env *next;
  tr_addr from, to;
  uint64_t req;
  uint8_t kind;
  int8_t status;
  uint8_t lane;    /* crossing schedulers: 1 for the private lane */
  uint8_t own;     /* the payload holds TR_EXT_OWNED addresses and the
                    * envelope one strong reference for each (tr__env_own);
                    * env_free releases them */
  uint16_t mlen;   /* method length; method is NUL-terminated at buf */
  uint32_t len;    /* payload length; payload at buf + mlen + 1 */
  uint32_t cap;    /* capacity of buf when it is on the heap (0: inline) */
  char *buf;
  void (*op)(tr_sched *s, struct tr_env *e); /* TR_K_OP: runs on the target's thread */
  char inl[TR_ENV_INLINE];
} tr_env;

#define TR_ENV_METHOD(e) ((e)->buf)
#define TR_ENV_PAYLOAD(e) ((e)->buf + (e)->mlen + 1)

typedef struct tr_queue {
  tr_env *head, *tail;
  uint32_t n;
} tr_queue;

/* memcpy for the few bytes of a method name or a scalar payload, inline:
 * a call to memcpy costs more than the copy (two overlapping moves cover
 * 4..16 bytes without reading or writing outside [0, n)). */
static inline void tr__copy(void *dst, const void *src, size_t n) {
  char *d = dst;
  const char *p = src;
  if (n >= 4 && n <= 16) {
    if (n >= 8) {
      uint64_t a, b;
      memcpy(&a, p, 8);
      memcpy(&b, p + n - 8, 8);
      memcpy(d, &a, 8);
      memcpy(d + n - 8, &b, 8);
    } else {
      uint32_t a, b;
      memcpy(&a, p, 4);
      memcpy(&b, p + n - 4, 4);
      memcpy(d, &a, 4);
      memcpy(d + n - 4, &b, 4);
    }
  } else if (n < 4) {
    if (n) {
      d[0] = p[0];
      if (n > 1) {
        d[1] = p[1];
        if (n > 2) d[2] = p[2];
      }
    }
  } else {
    memcpy(d, p, n);
  }
}

/* ---- message readers ---------------------------------------------------------- */
#define TR_MSG_MAXV 32 /* values read in place; more go to an array in the zone */
struct tr_msg {
  const char *data;
  size_t len;
  int parsed;    /* -1: parse error, 0: not yet, 1: parsed */
  int n;
  msgpack_object *v; /* v_inl, or (past TR_MSG_MAXV values) the zone's */
  msgpack_object v_inl[TR_MSG_MAXV];
  msgpack_zone *zone;
  msgpack_zone zone_storage;
  int zone_init;
};
/* inline: one per message and per reply callback */
static inline void tr__msg_init(tr_msg *m, const char *data, size_t len) {
  m->data = data;
  m->len = len;
  m->v = m->v_inl;
  m->parsed = 0;
  m->n = 0;
  m->zone_init = 0; /* (zone is set, and read, only once zone_init is) */
}
void tr__msg_zone_free(tr_msg *m);
static inline void tr__msg_done(tr_msg *m) {
  if (m->zone_init) tr__msg_zone_free(m);
}
/* The fast path of both decoders: read one scalar (nil, bool, int, float,
 * str, bin, fixext 8) at data[*off] into *o exactly as msgpack_unpack would
 * (strings point into data), without a zone. Returns 1 and advances *off, or
 * 0 for anything else (a container, another ext, a truncated value): the
 * caller then takes the general path, which also rejects corrupt bytes. */
static inline uint64_t tr__be(const unsigned char *p, int n) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  /* one load and a byte swap instead of a loop per byte (n is 1, 2, 4 or 8) */
  switch (n) {
    case 1: return p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return __builtin_bswap16(v); }
    case 4: { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }
    case 8: { uint64_t v; memcpy(&v, p, 8); return __builtin_bswap64(v); }
    default: break;
  }
#endif
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}
/* Writes v big-endian in n bytes (1, 2, 4 or 8). */
static inline void tr__put_be(unsigned char *p, uint64_t v, int n) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  switch (n) {
    case 1: p[0] = (unsigned char)v; return;
    case 2: { uint16_t x = __builtin_bswap16((uint16_t)v); memcpy(p, &x, 2); return; }
    case 4: { uint32_t x = __builtin_bswap32((uint32_t)v); memcpy(p, &x, 4); return; }
    case 8: { uint64_t x = __builtin_bswap64(v); memcpy(p, &x, 8); return; }
    default: break;
  }
#endif
  for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}
/* Writes v at p as msgpack_pack_int64 does (the smallest encoding;
 * non-negative values unsigned) and returns its size, 1 to 9 bytes: p must
 * have room for 9. */
static inline size_t tr__put_int(unsigned char *p, int64_t v) {
  if (v >= -(1LL << 5)) {
    if (v < (1 << 7)) {
      p[0] = (unsigned char)v; /* positive or negative fixint */
      return 1;
    }
    if (v < (1 << 8)) {
      p[0] = 0xcc;
      p[1] = (unsigned char)v;
      return 2;
    }
    if (v < (1LL << 16)) {
      p[0] = 0xcd;
      tr__put_be(p + 1, (uint64_t)v, 2);
      return 3;
    }
    if (v < (1LL << 32)) {
      p[0] = 0xce;
      tr__put_be(p + 1, (uint64_t)v, 4);
      return 5;
    }
    p[0] = 0xcf;
    tr__put_be(p + 1, (uint64_t)v, 8);
    return 9;
  }
  if (v >= -(1 << 7)) {
    p[0] = 0xd0;
    p[1] = (unsigned char)v;
    return 2;
  }
  if (v >= -(1 << 15)) {
    p[0] = 0xd1;
    tr__put_be(p + 1, (uint64_t)v, 2);
    return 3;
  }
  if (v >= -(1LL << 31)) {
    p[0] = 0xd2;
    tr__put_be(p + 1, (uint64_t)v, 4);
    return 5;
  }
  p[0] = 0xd3;
  tr__put_be(p + 1, (uint64_t)v, 8);
  return 9;
}
static inline __attribute__((always_inline)) int tr__scalar_uint(const unsigned char *p,
                                                                 size_t rem, size_t *off,
                                                                 msgpack_object *o, int k) {
  if (rem < (size_t)k + 1) return 0;
  o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  o->via.u64 = tr__be(p + 1, k);
  *off += (size_t)k + 1;
  return 1;
}
static inline __attribute__((always_inline)) int tr__scalar_int(const unsigned char *p,
                                                                size_t rem, size_t *off,
                                                                msgpack_object *o, int k) {
  if (rem < (size_t)k + 1) return 0;
  uint64_t u = tr__be(p + 1, k);
  int64_t v = k == 1 ? (int8_t)u : k == 2 ? (int16_t)u : k == 4 ? (int32_t)u : (int64_t)u;
  if (v >= 0) {
    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.u64 = (uint64_t)v;
  } else {
    o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
    o->via.i64 = v;
  }
  *off += (size_t)k + 1;
  return 1;
}
static inline __attribute__((always_inline)) int tr__scalar_next_inl(const char *data,
                                                                     size_t len, size_t *off,
                                                                     msgpack_object *o) {
  const unsigned char *p = (const unsigned char *)data + *off;
  size_t rem = len - *off, n = 0, hdr = 1;
  unsigned b = p[0];
  if (b <= 0x7f) {
    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.u64 = b;
    *off += 1;
    return 1;
  }
  if (b >= 0xe0) {
    o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
    o->via.i64 = (int8_t)b;
    *off += 1;
    return 1;
  }
  if (b >= 0xa0 && b <= 0xbf) {
    n = b & 0x1f;
    o->type = MSGPACK_OBJECT_STR;
    goto raw;
  }
  switch (b) {
    case 0xc0: o->type = MSGPACK_OBJECT_NIL; *off += 1; return 1;
    case 0xc2: case 0xc3:
      o->type = MSGPACK_OBJECT_BOOLEAN;
      o->via.boolean = b == 0xc3;
      *off += 1;
      return 1;
    /* one case per width: each reads with a constant size */
    case 0xcc: return tr__scalar_uint(p, rem, off, o, 1);
    case 0xcd: return tr__scalar_uint(p, rem, off, o, 2);
    case 0xce: return tr__scalar_uint(p, rem, off, o, 4);
    case 0xcf: return tr__scalar_uint(p, rem, off, o, 8);
    case 0xd0: return tr__scalar_int(p, rem, off, o, 1);
    case 0xd1: return tr__scalar_int(p, rem, off, o, 2);
    case 0xd2: return tr__scalar_int(p, rem, off, o, 4);
    case 0xd3: return tr__scalar_int(p, rem, off, o, 8);
    case 0xca: {
      if (rem < 5) return 0;
      uint32_t u = (uint32_t)tr__be(p + 1, 4);
      float f;
      memcpy(&f, &u, 4);
      o->type = MSGPACK_OBJECT_FLOAT32;
      o->via.f64 = f;
      *off += 5;
      return 1;
    }
    case 0xcb: {
      if (rem < 9) return 0;
      uint64_t u = tr__be(p + 1, 8);
      memcpy(&o->via.f64, &u, 8);
      o->type = MSGPACK_OBJECT_FLOAT64;
      *off += 9;
      return 1;
    }
    case 0xd9: case 0xda: case 0xdb:
    case 0xc4: case 0xc5: case 0xc6: {
      int k = (b >= 0xd9) ? 1 << (b - 0xd9) : 1 << (b - 0xc4);
      if (rem < (size_t)k + 1) return 0;
      n = (size_t)tr__be(p + 1, k);
      hdr = (size_t)k + 1;
      o->type = b >= 0xd9 ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
      goto raw;
    }
    case 0xd7: /* fixext 8: addresses */
      if (rem < 10) return 0;
      o->type = MSGPACK_OBJECT_EXT;
      o->via.ext.type = (int8_t)p[1];
      o->via.ext.size = 8;
      o->via.ext.ptr = (const char *)p + 2;
      *off += 10;
      return 1;
    default: return 0;
  }
raw:
  if (rem - hdr < n) return 0;
  o->via.str.ptr = (const char *)p + hdr; /* bin has the same layout */
  o->via.str.size = (uint32_t)n;
  *off += hdr + n;
  return 1;
}

/* the same, inlined or not as the compiler sees fit */
static inline int tr__scalar_next(const char *data, size_t len, size_t *off,
                                  msgpack_object *o) {
  return tr__scalar_next_inl(data, len, off, o);
}

int tr__msg_parse(tr_msg *m);
/* tr__msg_parse with its commonest case inline: a payload of exactly one
 * scalar (a call's argument, a reply's value) is read without a call; any
 * other goes the whole way from the start. */
static inline __attribute__((always_inline)) int tr__msg_try_one(tr_msg *m) {
  size_t off = 0;
  if (m->len && tr__scalar_next_inl(m->data, m->len, &off, &m->v_inl[0]) && off == m->len) {
    m->n = 1;
    return m->parsed = 1;
  }
  return 0; /* not parsed (m->v[0] may hold anything) */
}
static inline __attribute__((always_inline)) int tr__msg_parse_one(tr_msg *m) {
  if (m->parsed) return m->parsed;
  if (tr__msg_try_one(m)) return 1;
  return tr__msg_parse(m);
}

/* ---- actors ------------------------------------------------------------------- */
enum { TR_LANG_C = 0, TR_LANG_LUA = 1 };
enum {
  TR_W_NONE = 0,  /* not suspended */
  TR_W_CALL,      /* suspended in a call on wait_target */
  TR_W_SLEEP,     /* suspended in sleep */
  TR_W_ROOM,      /* suspended until wait_target's mailbox has room */
  TR_W_YIELD      /* preempted / yielded: runnable again */
};
enum { TR_S_ALIVE = 0, TR_S_STOPPING, TR_S_DEAD };

typedef struct tr_owed {   /* a reply this actor owes (deferred token) */
  uint64_t req;
  tr_addr caller;
  tr_actor *owner;
  struct tr_owed *prev, *next;
} tr_owed;

typedef struct tr_roomwait { /* a sender waiting for room in a mailbox */
  struct tr_roomwait *next;
  tr_addr sender;   /* a Lua actor waiting (TR_NOADDR for a C callback) */
  tr_env *env;      /* the message to enqueue when there is room (Lua) */
  tr_room_cb cb;    /* a C callback of this scheduler (tr_notify_room) */
  void *ud;
  uint64_t req;     /* neither: a waiter of another scheduler (tr__room_wait),
                     * told by an answer to this request id */
  /* a C callback's: the C actor of this scheduler that asked (NULL: main
   * code), on whose `asks` list it is; when that actor dies first, its
   * callback hears TR_EDEAD then and the entry stays, cancelled, until the
   * mailbox's list reaches it */
  struct tr_actor *asker;
  struct tr_roomwait *aprev, *anext;
  tr_addr to;
  uint8_t cancelled;
} tr_roomwait;

typedef struct tr_name {
  struct tr_name *next; /* in the actor's list */
  char *name;
} tr_name;

typedef struct tr_timer tr_timer;

typedef struct tr_mon {    /* a monitor: watcher is told when target dies */
  uint64_t ref;
  tr_addr watcher, target;
  struct tr_mon *tprev, *tnext; /* in the target's list */
  struct tr_mon *wprev, *wnext; /* in the watcher's list */
} tr_mon;

typedef struct tr_lnk {   /* one side of a bidirectional link */
  struct tr_lnk *next;
  tr_addr peer;
} tr_lnk;

typedef struct tr_stopwait { /* someone waiting for this actor to stop */
  struct tr_stopwait *next;
  uint64_t req;
  tr_addr caller;
} tr_stopwait;

/* The rarely used part of an actor: kill and interrupt texts, monitors,
 * links, stop waiters, limits, owned references, owed replies, room waiters,
 * timers, the Lua env proxy, a C actor's state and method cache. An actor
 * starts with `cold` pointing at tr__cold_none, one shared read-only record
 * (so reading a field needs no test: a write there would fault); the first
 * write goes through tr__cold(), which makes the actor its own (from its
 * scheduler's arena). Only the owner's thread touches it. Why: an idle Lua
 * actor is its record plus a few Lua objects, and at a million of them the
 * first touch of each new byte is most of a spawn's time (docs/performance.md,
 * session 4). */
typedef struct tr_actor_cold {
  int16_t kill_code; /* reason for a deferred kill (kill_pending) */
  uint16_t mc_len;   /* 0: no method kept (mc_*) */
  int32_t refs;      /* strong references (owned actors) */
  int env_ref;       /* Lua: the env proxy (LUA_NOREF: none yet) */
  char *kill_msg;
  char *interrupt;   /* pending interrupt of its handler (tr__lua_interrupt) */
  tr_mon *mons;      /* monitors on this actor */
  tr_mon *watching;  /* monitors this actor holds */
  tr_lnk *links;
  tr_stopwait *stopwait;
  int64_t mem_limit;
  int64_t cpu_limit_ms;
  uint64_t cpu_ns;   /* CPU time of the current message so far (with a CPU limit) */
  tr_owed *owed;
  tr_roomwait *room_head, *room_tail;
  tr_roomwait *asks; /* a C actor's tr_notify_room waits on this scheduler */
  tr_timer *timers;
  /* C behaviour: its state, and the method its last message went to
   * (tr__c_deliver): the name's bytes as a key, the table and the handler
   * found there */
  void *cstate;
  const tr_method *mc_tab;
  tr_handler_fn mc_fn;
  uint64_t mc_key[2];
} tr_actor_cold;

struct tr_actor {
  tr_addr addr;
  tr_sched *s;
  uint8_t lang;
  uint8_t state;     /* TR_S_* */
  uint8_t wait;      /* TR_W_* */
  uint8_t in_runq;
  uint8_t running;   /* inside a handler now */
  uint8_t kill_pending; /* cold->kill_code and kill_msg say why */
  uint8_t stop_pending; /* a TR_K_STOP is queued */
  uint8_t owned;
  uint8_t started;   /* init done */
  uint8_t traced;    /* report its messages to h->trace_fn */
  uint8_t trap_exit; /* linked exits arrive as "on_exit" messages */
  uint8_t stop_self; /* the graceful stop came from itself: reason "normal" */
  uint8_t oom;       /* went over its memory limit */
  uint8_t init_due;  /* its init is due, with the arguments in init_args (no
                      * INIT envelope): made into one at its first turn */
  uint8_t init_len;  /* ... their length */
  uint8_t starting;  /* Lua: its init function ran directly (not through the
                      * prelude's runner): on_start is still to be looked up */
  uint32_t cap;      /* public lane capacity */
  uint32_t inflight; /* atomic: public messages from other schedulers on their way */
  tr_actor *runq_next;
  tr_queue priv, pub;
  tr_env *wake;      /* reply / wake-up to resume a suspended handler with */
  tr_env *cur;       /* the message being handled */
  union {
    struct {           /* meaningful while it waits (wait != TR_W_NONE) */
      uint64_t wait_req;
      tr_addr wait_target;
      uint64_t wait_since;
    };
    /* before its first turn (init_due), when it has never waited: the
     * arguments of its init (a local spawn whose arguments fit here needs
     * no INIT envelope until init runs: a million spawned in a row held a
     * million envelopes) */
    char init_args[24];
  };
  tr_pending *calls; /* calls this actor made that are still pending */
  tr_name *names;    /* (read by other threads under names_lock) */
  int64_t mem;       /* Lua bytes allocated net while it ran (approximate) */
  uint64_t n_in, n_out;
  union {
    const tr_behaviour *cb;  /* lang C */
    struct tr_lbeh *lb;      /* lang Lua */
  };
  lua_State *co;     /* the handler coroutine while one is active */
  int co_ref, self_ref;
  tr_actor_cold *cold; /* &tr__cold_none until written (tr__cold) */
};

extern const tr_actor_cold tr__cold_none;
tr_actor_cold *tr__cold_make(tr_actor *a);
/* What an actor waits on is written by its owner and read, without the
 * owner's cooperation, by another scheduler's deadlock check (waits_on): a
 * recent value is enough there, so relaxed atomic stores (plain ones on x86)
 * make it a defined read. */
static inline void tr__set_wait(tr_actor *a, int w) {
  __atomic_store_n(&a->wait, (uint8_t)w, __ATOMIC_RELAXED);
}
static inline void tr__set_wait_target(tr_actor *a, tr_addr t) {
  __atomic_store_n(&a->wait_target, t, __ATOMIC_RELAXED);
}
/* a's own cold part, made now if it has none: NULL when out of memory */
static inline tr_actor_cold *tr__cold(tr_actor *a) {
  return a->cold != &tr__cold_none ? a->cold : tr__cold_make(a);
}

/* ---- timers: one heap per scheduler, one uv_timer ------------------------------- */
enum { TR_T_TIMEOUT = 0, TR_T_ACTOR, TR_T_SLEEP, TR_T_FLAG };
#define TR_IN_FIFO (UINT32_MAX - 1) /* tr_tentry.idx of an entry in the FIFO */
typedef struct tr_tentry {
  uint64_t due, seq;
  uint32_t idx;   /* position in the heap; TR_IN_FIFO in the FIFO; UINT32_MAX: in neither */
  uint8_t kind;
  void *p;        /* tr_pending / tr_timer / int flag */
  tr_addr actor;  /* TR_T_SLEEP */
} tr_tentry;

/* ---- pending calls (caller side) ---------------------------------------------- */
enum { TR_P_LUA = 0, TR_P_CB, TR_P_BLOCK };
struct tr_pending { /* tr__pending_new sets every field (no memset): add new ones there */
  uint64_t req;
  uint8_t kind;
  tr_addr caller;   /* the waiting actor, or TR_NOADDR */
  tr_addr target;
  tr_reply_cb cb;
  void *ud;
  tr_env *result;   /* TR_P_BLOCK: the reply once it came */
  int done;
  uint8_t kill_on_timeout; /* tr_shutdown: on timeout, kill the target */
  tr_pending *prev, *next;   /* in the caller actor's list; next: the pool */
  tr_actor *owner;           /* the caller actor while p is in its list; for an
                              * answered C callback waiting in the completion
                              * queue, the actor it runs for */
  tr_pending *done_next;     /* in the scheduler's completion queue */
  tr_tentry te;              /* the timeout, when te.idx != UINT32_MAX */
};

/* A scheduler's pending calls are found by request id without a hash map:
 * the low TR_REQ_IDX_BITS of an id index a table of slots, the next 32 bits
 * count the reuses of that slot (its generation) and the top byte names the
 * caller's scheduler (replies are routed by it). An id is looked up by one
 * index and one compare; a late reply for a slot used again since carries
 * an older generation and finds nothing, as a late reply always did. */
#define TR_REQ_IDX_BITS 24
#define TR_REQ_IDX_MASK ((UINT64_C(1) << TR_REQ_IDX_BITS) - 1)
typedef struct tr_pslot {
  tr_pending *p;   /* the pending call using the slot; NULL: free */
  uint32_t gen;    /* generation of the last id made with it (ids start at 1) */
  uint32_t next;   /* while free: the next free slot + 1 (0: none) */
} tr_pslot;

struct tr_timer {   /* an actor's send-to-self timer */
  tr_timer_id id;
  tr_addr actor;
  int64_t interval;
  tr_env *tmpl;     /* the message, copied at each firing */
  tr_tentry te;
  tr_timer *prev, *next; /* in the actor's list */
};

/* ---- schedulers ------------------------------------------------------------------- */
/* Each scheduler's struct starts on its own cache lines (TR_CACHELINE), so
 * that the counters one thread writes per message never share a line with
 * what the next scheduler's thread reads. */
#define TR_CACHELINE 64
struct tr_sched {
  tr_host *h;
  unsigned index;
  uv_loop_t *loop;
  uv_loop_t own_loop;   /* schedulers other than the first run their own loop */
  uv_thread_t own_thread; /* ... on their own thread */
  int thread_started;
  int exit_req;         /* its thread leaves its loop */
  int no_veto;          /* tr_host_shutdown on this scheduler: stops are not vetoed */
  int busy;             /* counted in h->work (schedulers other than the first) */
  uv_mutex_t actors_lock; /* several schedulers: held by the owner while it
                           * changes `actors`, by others while they look in it */
  tr_map reserved;      /* under actors_lock: serials spawners on other
                         * schedulers reserved, whose actor is not made yet */
  uv_idle_t idle;
  uv_timer_t timer;
  uv_async_t async;
  uv_prepare_t prepare; /* before the loop would block: spin on the inbox */
  uint64_t spin_until;  /* uv_hrtime() until which it spins (recent traffic) */
  int spinning;         /* atomic: it polls its inbox now (posters need not wake it) */
  uv_mutex_t inbox_lock;
  tr_env *inbox_head, *inbox_tail;
  int handles_open;
  int in_callback;
  int idle_on;          /* the idle handle is started */
  tr_actor *runq_head, *runq_tail;
  tr_actor *current;
  tr_actor *cb_actor;   /* the actor whose C reply callback runs now (NULL once
                         * it dies): its calls from there need no lookup */
  tr_addr room_asker;   /* in a tr_notify_room callback (room_cb_depth > 0):
                         * the C actor that asked (TR_NOADDR: main code) */
  int room_cb_depth;
  tr_addr dc_addr;      /* the last actor a message was delivered to here, */
  tr_actor *dc_actor;   /* (NULL once its record is freed): no table lookup
                         * for the next one to it (deliver) */
  tr_stab actors;   /* serial -> tr_actor* */
  tr_pslot *pslots; /* pending calls by the index in their request id */
  uint32_t pslots_n, pslots_cap, pfree; /* slots used so far; first free + 1 */
  tr_map owed;      /* req -> tr_owed* */
  tr_map timers;    /* id -> tr_timer* */
  uint64_t next_serial, next_timer, tseq;
  tr_tentry **heap;
  uint32_t heap_n, heap_cap;
  /* deadlines that only ever come in order (calls with the default timeout:
   * now + the same delay) wait in a FIFO instead: O(1) in and out, where the
   * heap costs O(log n) cache misses with many calls in flight. The FIFO is
   * an array of request ids (each call's deadline is in its te); an
   * answered call only leaves its id behind (te.idx says it is gone), and
   * such stale ids are skipped at the head and dropped when the array is
   * full; it starts again at 0 whenever no live one is left (in a
   * request/reply loop: after each answer) */
  uint64_t *fifo;
  uint32_t fifo_head, fifo_tail, fifo_cap;
  uint32_t fifo_live;  /* calls whose deadline is in the FIFO */
  uint64_t fifo_last;  /* the deadline appended last (0: none since empty) */
  uint64_t armed_due; /* when the uv timer fires (0: not armed) */
  int timer_ref;      /* the uv timer is ref'd (the heap is non-empty) */
  int timer_idle;     /* the last deadline left: unref the timer before the
                       * loop polls (not per call: the next call would ref it) */
  tr_pending *done_head, *done_tail;
  tr_env *pool;
  uint32_t pool_n;
  /* the bytes this scheduler's Lua encoder last wrote with an owned address
   * in them (TR_NO_HINT: none): the first envelope made from exactly these
   * bytes (env_new, tr__reply_in) takes the references (tr__env_take_hint).
   * A stale hint costs a scan that finds what the bytes hold, never a wrong
   * count. Code that makes a second envelope from the same bytes, or runs
   * Lua code (which may encode) between encoding and making the envelope,
   * sets it again. */
  const char *own_hint;
  tr_pending *ppool;
  uint32_t ppool_n;
  lua_State *L;
  struct tr_lstate *ls; /* the Lua binding's per-state data */
  struct tr_lmem *lmem; /* its allocation accounting (host memory cap) */
  tr_map mons;          /* ref -> tr_mon */
  uint64_t next_mon;
  struct tr_exitq { tr_addr addr; char *msg; } *exitq; /* linked exits to apply */
  size_t exitq_n, exitq_cap;
  int draining;
  /* preemption: the loop thread and what the watchdog reads */
  uv_thread_t thread;
  volatile uint64_t resume_gen;
  volatile int in_resume;
  uint64_t wd_seen_gen;
  int turn_left;        /* messages the running actor's turn may still take (a
                         * Lua actor's runner takes its own from it) */
  int break_idle;       /* leave the idle callback now: a turn was preempted,
                         * or a blocked main-code caller has its answer */
  int wd_ticks;
  uint64_t n_msgs, n_calls, n_spawned;
  int start_rc;         /* its thread's start-up (its Lua state) */
  tr_arena arena;       /* small blocks of this scheduler: its actors, and its
                         * Lua state's when the host made that state */
  uv_sem_t started;
} __attribute__((aligned(TR_CACHELINE)));

/* Observation hook (the REPL's :trace). For an actor with `traced` set:
 * TR_EV_IN when it starts handling e, TR_EV_OUT when it sends or calls e,
 * TR_EV_REPLY when it answers (status, payload). */
enum { TR_EV_IN = 1, TR_EV_OUT, TR_EV_REPLY };
typedef void (*tr__trace_fn)(tr_host *h, void *ud, int ev, tr_actor *a, const tr_env *e,
                             int status, const char *payload, size_t len);

typedef struct tr_cbeh_reg {
  struct tr_cbeh_reg *next;
  const tr_behaviour *b;
  void *dl; /* dlopen handle, closed at free */
} tr_cbeh_reg;

struct tr_host {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop;
  int owns_lua;
  int exit_code;
  int exiting;
  int closing;
  uint32_t mailbox_cap;
  int64_t call_timeout;
  tr_log_fn log;
  void *log_ud;
  tr_sched *sched;       /* nsched schedulers; the first runs on `loop` */
  unsigned nsched;
  unsigned next_place;   /* round-robin placement of spawns from outside actors */
  int work;              /* atomic: schedulers other than the first that are busy,
                          * plus envelopes posted to them and not yet handled */
  uv_async_t quiesce;    /* on `loop`: ref'd while `work` > 0 (tr_host_run waits) */
  uv_check_t polled;     /* on `loop`: clears s0_polling after each poll */
  int s0_polling;        /* atomic: the first scheduler's loop may block in poll now */
  int quiesce_open;
  int host_handles_open; /* quiesce and polled, until their close callbacks ran */
  uv_mutex_t names_lock; /* the name and C behaviour registries */
  unsigned nsched_made;  /* schedulers initialised (all but after a failed create) */
  struct tr_namerec **names; /* name registry: hash buckets (power of two) */
  size_t names_cap, names_n;
  tr_cbeh_reg *cbehs;
  tr__trace_fn trace_fn; /* NULL: no tracing (the hot path pays one test); read with
                          * tr__tracer, written with tr__set_tracer */
  void *trace_ud;
  struct tr_repl_host *repl; /* REPL sessions and control sockets (repl.c) */
  int32_t slice_ms;      /* preemption time slice; < 0: off */
  size_t mem_limit;
  uv_thread_t wd_thread; /* the preemption watchdog */
  uv_mutex_t wd_lock;
  uv_cond_t wd_cond;
  int wd_running, wd_stop;
};
/* The trace hook is set on the REPL's thread while every scheduler reads it
 * on its hot path: an atomic pointer (a plain load on x86). ud is stored
 * before a hook is published, and after one is withdrawn. */
static inline tr__trace_fn tr__tracer(tr_host *h) {
  return __atomic_load_n(&h->trace_fn, __ATOMIC_ACQUIRE);
}
static inline void tr__set_tracer(tr_host *h, tr__trace_fn fn, void *ud) {
  if (fn) {
    __atomic_store_n(&h->trace_ud, ud, __ATOMIC_RELAXED);
    __atomic_store_n(&h->trace_fn, fn, __ATOMIC_RELEASE);
  } else {
    __atomic_store_n(&h->trace_fn, fn, __ATOMIC_RELEASE);
    __atomic_store_n(&h->trace_ud, ud, __ATOMIC_RELAXED);
  }
}


typedef struct tr_namerec {
  struct tr_namerec *next;
  char *name;
  tr_addr addr;
} tr_namerec;
/* Iterate the name registry: for each bucket b < h->names_cap, the chain
 * h->names[b] linked by next. */

/* Lookups, inline: several run per message. A stale address (dead, or its
 * serial never reused) finds nothing. */
static inline tr_sched *tr__sched_of(tr_host *h, tr_addr a) {
  unsigned i = TR_ADDR_SCHED(a);
  if (!h || TR_ADDR_NODE(a) != 0 || i >= h->nsched) return NULL;
  return &h->sched[i];
}

/* An actor of scheduler s (the calling thread's own). An actor of another
 * scheduler is never returned: its memory belongs to that thread. */
static inline tr_actor *tr__lookup(tr_sched *s, tr_addr a) {
  /* node 0 and scheduler s: the top 16 bits are s->index */
  if ((a >> 48) != s->index || a == TR_NOADDR) return NULL;
  tr_actor *act = tr_stab_get(&s->actors, TR_ADDR_SERIAL(a));
  if (!act || act->addr != a || act->state == TR_S_DEAD) return NULL;
  return act;
}

/* The pending call of this scheduler with request id `req`, or NULL (done,
 * given up, or never made here). */
static inline tr_pending *tr__pending_get(const tr_sched *s, uint64_t req) {
  uint64_t i = req & TR_REQ_IDX_MASK;
  if (i >= s->pslots_n) return NULL;
  tr_pending *p = s->pslots[i].p;
  return p && p->req == req ? p : NULL;
}

/* The scheduler the calling thread runs (the first one for threads that are
 * not schedulers: the program's main thread, which runs the host's loop). */
extern __thread tr_sched *tr__tls_sched;
static inline tr_sched *tr__here(tr_host *h) {
  tr_sched *s = tr__tls_sched;
  if (s && s >= h->sched && s < h->sched + h->nsched) return s;
  return &h->sched[0];
}
/* tr_host_free has begun (set once, read by every thread). */
static inline int tr__closing(const tr_host *h) {
  return __atomic_load_n(&h->closing, __ATOMIC_ACQUIRE);
}
/* ...or s stops all its actors (tr_host_shutdown, op_shutdown): stops are
 * not vetoed, no actor is made, deaths tell no watcher or linked peer. A
 * scheduler's own flag: another scheduler may be running normally. */
static inline int tr__quiet(const tr_sched *s) { return tr__closing(s->h) || s->no_veto; }
/* `a` is an address of this host on a scheduler other than s. */
static inline int tr__foreign(tr_sched *s, tr_addr a) {
  return TR_ADDR_SCHED(a) != s->index && TR_ADDR_NODE(a) == 0 &&
         TR_ADDR_SCHED(a) < s->h->nsched && a != TR_NOADDR;
}
/* Alive, on any scheduler (another's is looked up under its lock). */
int tr__alive_any(tr_sched *s, tr_addr a);
/* A send or call to another scheduler's full mailbox that waits to be let
 * in: its owner queues it when there is room. For a send it answers e->req
 * (a pending call of the sender) with TR_OK, or TR_EDEAD if the target dies
 * first; a call's own request is answered as any call (TR_EDEAD then). */
int tr__deliver_admit(tr_sched *s, tr_env *e);
/* Ask the owner of `to` (another scheduler) to answer request `req` (a
 * pending call of s, made with caller `caller`) once to's public mailbox has
 * room: TR_OK then (at once if it has room now), TR_EDEAD if it is gone or
 * dies first, TR_ENOMEM if the owner cannot record the wait. Nothing is
 * queued: the asker tries again (another sender may take the room first). */
int tr__room_wait(tr_sched *s, tr_addr to, tr_addr caller, uint64_t req);
/* Main code (outside actors, outside a loop callback) waits for room in
 * another scheduler's mailbox `to`, running s's loop: 0 (there was room when
 * the owner looked), TR_EDEAD, TR_EFULL (nothing left to run could make
 * room), TR_ESTOPPED (the host is exiting), TR_ENOMEM. */
int tr__room_wait_blocking(tr_sched *s, tr_addr to);
/* Hand e to scheduler t from the thread of `from` (NULL: not a scheduler
 * thread): t's inbox, then a wake-up when the inbox was empty. */
void tr__post(tr_sched *from, tr_sched *t, tr_env *e);
/* Run fn on the scheduler of `addr` with a copy of (addr, a2, code, text):
 * now when that is s, else through its inbox. */
typedef void (*tr_opfn)(tr_sched *s, tr_env *e);
int tr__op(tr_sched *s, tr_addr target, tr_opfn fn, tr_addr a2, uint64_t n, int code,
           const char *text, size_t len);

/* ---- core (host.c) ---------------------------------------------------------------- */
void tr__log(tr_host *h, const char *fmt, ...);
extern const char tr__no_hint;
#define TR_NO_HINT (&tr__no_hint) /* tr_sched.own_hint: none */
/* Strong references of owned actors. The count lives on the actor, changed
 * on its own scheduler: tr__refs_add changes it at once for an actor of s,
 * else through the owner's inbox (FIFO from each thread, so a reference
 * taken here before one is released here is counted first). A count that
 * falls to 0 stops the owned actor. Never while the host closes. */
void tr__refs_add(tr_sched *s, tr_addr a, int d);
/* Is `a` an owned actor (alive, or reserved by a spawn on its way), on
 * any scheduler (another's looked up under its lock)? */
int tr__owned_any(tr_sched *s, tr_addr a);
/* e's payload holds TR_EXT_OWNED addresses: take one reference for each and
 * set e->own (nothing when it holds none). Done where bytes with owned
 * addresses become an envelope's payload: made from the Lua encoder's
 * bytes (s->own_hint), or copied from another envelope that has e->own (a
 * timer's message). C code that packs addresses (tr_pack_addr) writes
 * TR_EXT_ADDR and keeps its own references (tr_retain). */
void tr__env_own(tr_sched *s, tr_env *e);
/* e was made from the bytes s->own_hint names: the hint is used up, and e
 * takes the references. */
void tr__env_take_hint(tr_sched *s, tr_env *e);
/* Release the references of e (e->own) and clear the flag: env_free does,
 * and whoever replaces e's payload (tr__reply_in). */
void tr__env_disown(tr_sched *s, tr_env *e);
tr_env *tr__env_new(tr_sched *s, const char *method, size_t mlen, const char *payload,
                    size_t len);
void tr__env_free(tr_sched *s, tr_env *e);
/* An envelope freed only by s, never posted to another scheduler. */
tr_env *tr__env_new_local(tr_sched *s, const char *method, size_t mlen, const char *payload,
                          size_t len);
/* init: the INIT envelope (consumed on success), or NULL: then the actor
 * keeps init's arguments (iargs, ilen <= sizeof init_args) in its record. */
int tr__spawn_actor(tr_sched *s, uint64_t serial, int reserved_name, uint8_t lang,
                    const void *beh, const tr_spawn_options *o, tr_env *init, const char *iargs,
                    size_t ilen, tr_actor **out);
/* Where a spawn from s goes (NULL: o->scheduler is out of range). A behaviour
 * that is not relocatable (an inline Lua table) stays on s unless o says. */
tr_sched *tr__place(tr_sched *s, const tr_spawn_options *o, int relocatable);
uint64_t tr__new_serial(tr_sched *t);
/* A spawn on another scheduler, made there by the request (owned by the
 * callee from here on). */
typedef struct tr_spawnreq {
  uint8_t lang;
  const tr_behaviour *b;   /* C */
  int from_file;           /* Lua: src is a path, else code */
  char *src, *chunkname;
  tr_spawn_options o;      /* o.name unused: name */
  char *name;
  int refs;                /* strong references the spawner holds (owned) */
  uint64_t serial;
  char *behname;           /* for tr_addr_format until the actor exists */
} tr_spawnreq;
int tr__spawn_remote(tr_sched *s, tr_sched *t, tr_spawnreq *q, const char *args, size_t len,
                     tr_addr *out);
void tr__spawnreq_free(tr_spawnreq *q);
int tr__lua_spawn_req(tr_sched *s, tr_spawnreq *q, tr_env *init, const char **why);
/* Queue `e` (kind SEND/CALL already set) for its target: 0, TR_EDEAD, or
 * TR_EFULL for a full public lane, on any scheduler (another's as recently
 * seen). With TR_EFULL, *full (if given) is the target when it is s's, for
 * tr__enqueue_room_wait; it is left alone for another scheduler's (wait with
 * tr__deliver_admit or tr__room_wait). The one lookup of the target on the
 * send path. On error `e` is not consumed. */
int tr__deliver(tr_sched *s, tr_env *e, int private_lane, tr_actor **full);
int tr__enqueue_room_wait(tr_sched *s, tr_actor *target, tr_addr sender, tr_env *e);
tr_pending *tr__pending_new(tr_sched *s, uint8_t kind, tr_addr caller, tr_addr target,
                            int64_t timeout_ms);
void tr__pending_free(tr_sched *s, tr_pending *p);
/* Answer request `req` from `caller`: status and payload bytes (copied). */
void tr__reply(tr_sched *s, tr_addr from, tr_addr caller, uint64_t req, int status,
               const char *payload, size_t len);
/* The same for the call envelope e, which becomes the reply (consumed):
 * no new envelope when the payload fits in e's buffer. `from` answers (the
 * actor e was delivered to); payload must not point into e. */
void tr__reply_in(tr_sched *s, tr_env *e, tr_addr from, int status, const char *payload,
                  size_t len);
void tr__reply_error(tr_sched *s, tr_addr from, tr_addr caller, uint64_t req, int code,
                     const char *msg, const char *traceback);
/* Owed replies (deferred tokens). */
tr_owed *tr__owe(tr_sched *s, tr_actor *a, uint64_t req, tr_addr caller);
int tr__settle(tr_sched *s, uint64_t req, tr_addr caller, int status, const char *payload,
               size_t len);
void tr__schedule(tr_sched *s, tr_actor *a);
/* `a` is gone (code: TR_OK for a graceful stop, else the reason): fail what
 * it held, tell watchers, links and stop waiters, free it when unreferenced. */
void tr__actor_died(tr_sched *s, tr_actor *a, int code, const char *msg, const char *tb);
int tr__check_deadlock(tr_sched *s, tr_actor *caller, tr_addr target, char *why, size_t cap);
tr_tentry *tr__timer_add(tr_sched *s, uint8_t kind, void *p, int64_t delay_ms);
void tr__timer_del(tr_sched *s, tr_tentry *t);
/* Run the loop until *flag is set. Returns 0, or TR_ESTOPPED if nothing can
 * ever set it, TR_EINVAL if called from inside a loop callback. */
int tr__block_until(tr_sched *s, volatile int *flag);
const char *tr__addr_name(tr_host *h, tr_addr a);
int tr__call_start(tr_sched *s, tr_addr from, tr_addr to, const char *method, size_t mlen,
                   const char *payload, size_t len, int64_t timeout_ms, uint8_t kind,
                   tr_pending **out);
/* tr_send_after for a method name of mlen bytes (Lua's may hold a zero byte) */
int tr__send_after_n(tr_host *h, tr_addr self, int64_t delay_ms, int64_t interval_ms,
                     const char *method, size_t mlen, const tr_buf *args, tr_timer_id *out);
int tr__name_remove_all(tr_host *h, tr_actor *a);
uint64_t tr__now(tr_sched *s);

/* ---- monitors, links, stop waiters (supervise.c) --------------------------------------- */
/* The reason name of a death: "normal", "stopped", "killed", ... */
const char *tr__reason_name(int code, int stop_self);
/* Tell watchers, linked actors and stop waiters that `a` died. */
void tr__death_notify(tr_sched *s, tr_actor *a, const char *who, int code, const char *msg,
                      const char *tb);
int tr__stopwait_add(tr_sched *s, tr_actor *a, uint64_t req, tr_addr caller);
/* A graceful stop finished: vetoed, or the actor goes. */
void tr__stop_finish(tr_sched *s, tr_actor *a, int vetoed);
void tr__drain_exits(tr_sched *s);
/* Ask target (any scheduler) to stop; answer req to caller when it is gone. */
int tr__stop_and_wait(tr_sched *s, tr_addr target, uint64_t req, tr_addr caller);
void tr__op_mon_fire(tr_sched *s, tr_env *e);
/* Tooling (the REPL): run fn(t, ud) on scheduler t's thread and wait for it,
 * at most timeout_ms for it to start (TR_ETIMEOUT: it never will, ud is free
 * again). On s itself fn runs at once. Never on a hot path. */
int tr__sched_sync(tr_sched *s, tr_sched *t, void (*fn)(tr_sched *, void *), void *ud,
                   unsigned timeout_ms);

/* ---- preemption (preempt.c) ------------------------------------------------------------ */
int tr__preempt_start(tr_host *h);
void tr__preempt_stop(tr_host *h);
void tr__preempt_thread(tr_sched *s); /* the thread running s's handlers now */
/* Around every lua_resume of a handler coroutine. */
void tr__preempt_arm(lua_State *co); /* its next instruction runs the hook */
/* the state the signal handler and the hook read (preempt.c): here so that
 * entering and leaving a resume, twice per Lua round trip, is inlined */
#define TR_HIDDEN __attribute__((visibility("hidden")))
extern TR_HIDDEN __thread lua_State *volatile tr__tls_co;   /* the coroutine being resumed */
extern TR_HIDDEN __thread tr_actor *volatile tr__tls_actor; /* its actor */
extern TR_HIDDEN __thread volatile sig_atomic_t tr__tls_armed;
extern TR_HIDDEN __thread volatile sig_atomic_t tr__tls_preempted;
extern TR_HIDDEN __thread uint64_t tr__tls_stuck_since; /* the hook first found no way to yield */
static inline void tr__preempt_enter(tr_sched *s, tr_actor *a, lua_State *co) {
  tr__tls_actor = a;
  tr__tls_preempted = 0;
  tr__tls_stuck_since = 0;
  __atomic_store_n(&s->resume_gen, s->resume_gen + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&s->in_resume, 1, __ATOMIC_RELEASE);
  tr__tls_co = co;
  if (a && a->cold->interrupt) tr__preempt_arm(co);
}
void tr__preempt_disarm(lua_State *co);
/* 1 if the handler was preempted */
static inline int tr__preempt_leave(tr_sched *s, lua_State *co) {
  tr__tls_co = NULL;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&s->in_resume, 0, __ATOMIC_RELEASE);
  if (tr__tls_armed) tr__preempt_disarm(co); /* a signal came after the hook last ran */
  tr__tls_actor = NULL;
  int p = tr__tls_preempted;
  tr__tls_preempted = 0;
  return p;
}
lua_State *tr__preempt_nest(lua_State *co); /* a handler resumes co: arm it */
void tr__preempt_unnest(lua_State *prev, lua_State *co, int leaving);
int tr__preempt_pending(void);
void tr__preempt_clear(void);

/* ---- Lua binding (lua_host.c) -------------------------------------------------------- */
void tr__lua_interrupt(tr_sched *s, tr_actor *a, const char *why);
/* Bind a host to a Lua state that will run its Lua actors. */
/* Bind scheduler s to a Lua state that will run its Lua actors (NULL: a new
 * one, whose package paths are copied from `like` when given). */
int tr__lua_attach(tr_sched *s, lua_State *L, lua_State *like);
void tr__lua_detach(tr_sched *s);
void tr__lua_deliver(tr_sched *s, tr_actor *a, tr_env *e); /* handle one message */
void tr__lua_resume(tr_sched *s, tr_actor *a, tr_env *e);  /* resume after a wait */
/* Run a Lua actor's plain messages (sends and calls) in one coroutine, the
 * runner, which takes them from tr__runner_next until that says stop. */
void tr__lua_run(tr_sched *s, tr_actor *a);
tr_env *tr__runner_next(tr_sched *s, tr_actor *a);
void tr__lua_destroy(tr_sched *s, tr_actor *a);
const char *tr__lua_behaviour_name(tr_actor *a); /* immutable while it lives */
int tr__lua_decode_payload(tr_host *h, const char *data, size_t len); /* fuzzing */
int tr__lua_spawn(tr_host *h, int from_file, const char *src, const char *chunkname,
                  const tr_buf *args, const tr_spawn_options *o, tr_addr *out);
int tr__lua_hooks(tr_sched *s, tr_actor *a, int which); /* 0 stopping, 1 stopped */

/* ---- C behaviours (cactor.c) --------------------------------------------------------- */
void tr__c_destroy(tr_sched *s, tr_actor *a);
int tr__c_hooks(tr_sched *s, tr_actor *a, int which);
const tr_behaviour *tr__find_cbehaviour(tr_host *h, const char *name);

/* ---- values (value.c) ------------------------------------------------------------------ */
int tr__buf_reserve(tr_buf *b, size_t extra);
int tr__buf_write(void *data, const char *buf, size_t len); /* msgpack write callback */
void tr__packer(msgpack_packer *pk, tr_buf *b);
void tr__addr_be(tr_addr a, char out[8]);
tr_addr tr__addr_from_be(const char *p);
int tr__payload_check(const char *data, size_t len); /* complete values, counts that fit */
/* Calls fn(ud, addr) for every TR_EXT_OWNED value in a checked payload, at
 * any depth; returns how many (-1 for bytes that are not complete values). */
int tr__payload_owned(const char *data, size_t len, void (*fn)(void *ud, tr_addr a), void *ud);
size_t tr__format_object(tr_host *h, const msgpack_object *o, char *out, size_t cap,
                         size_t pos, int depth);

#endif
