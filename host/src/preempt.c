/* Preemption of long-running Lua handlers.
 *
 * The fast path carries no hook: a Lua count hook makes every instruction
 * slower, so none is set while handlers behave. A watchdog thread per host
 * wakes every half slice; if a scheduler has been inside the same
 * lua_resume for at least a slice, it sends SIGURG to that scheduler's
 * thread. The signal handler (on the loop thread, as lua.c does for Ctrl-C)
 * sets a one-instruction count hook on the running coroutine; the hook
 * yields it (or raises a pending interrupt). The scheduler sees a yield with
 * no wait reason and puts the actor behind the others. Inside a C boundary
 * (lua_isyieldable is false) the hook re-arms itself and tries again. */
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

TR_HIDDEN __thread lua_State *volatile tr__tls_co;
TR_HIDDEN __thread tr_actor *volatile tr__tls_actor;
TR_HIDDEN __thread volatile sig_atomic_t tr__tls_armed;
TR_HIDDEN __thread volatile sig_atomic_t tr__tls_preempted;
TR_HIDDEN __thread uint64_t tr__tls_stuck_since;
#define tls_co tr__tls_co
#define tls_actor tr__tls_actor
#define tls_armed tr__tls_armed
#define tls_preempted tr__tls_preempted
#define tls_stuck_since tr__tls_stuck_since

static void preempt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  tls_armed = 0;
  tr_actor *a = tls_actor;
  /* the handler's coroutine, or the nested one it runs now (tr__preempt_nest);
   * not a coroutine that merely inherited this hook when it was created */
  if (a && a->cold->interrupt && (a->co == L || tls_co == L)) {
    char why[256];
    snprintf(why, sizeof why, "%s", a->cold->interrupt);
    free(a->cold->interrupt);
    a->cold->interrupt = NULL;
    luaL_error(L, "%s", why);
    return;
  }
  if (lua_isyieldable(L)) {
    tls_preempted = 1;
    lua_yield(L, 0); /* a hook yields with no values and returns at once */
    return;
  }
  /* inside a C boundary (a sort comparator, a metamethod called from C):
   * try again a little later. Code that stays there for good would hold
   * the scheduler for good: past the actor's CPU limit, or else
   * TR_UNYIELDING_SLICES slices, it gets an error, which unwinds it out
   * of the C function (and the actor dies of its CPU limit, or crashes
   * unless the handler catches it). */
  /* the thread's CPU time, as a CPU limit counts it: a descheduled thread
   * is not running into any limit */
  struct timespec ts;
  uint64_t now = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0
                     ? (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec
                     : uv_hrtime();
  if (!tls_stuck_since) tls_stuck_since = now;
  if (a) {
    int64_t limit = a->cold->cpu_limit_ms ? a->cold->cpu_limit_ms
                                    : (int64_t)a->s->h->slice_ms * TR_UNYIELDING_SLICES;
    if ((int64_t)(now - tls_stuck_since) > limit * 1000000) {
      tls_stuck_since = 0;
      char why[256];
      snprintf(why, sizeof why,
               "%s: it ran for over %lld ms inside a C function (a table.sort comparator, a "
               "string.gsub function, a metamethod called from C), where it cannot be preempted",
               a->cold->cpu_limit_ms ? "stopped at its CPU limit" : "stopped", (long long)limit);
      luaL_where(L, 0); /* the Lua function that runs there */
      lua_pushstring(L, why);
      lua_concat(L, 2);
      lua_error(L);
      return;
    }
  }
  tls_armed = 1;
  lua_sethook(L, preempt_hook, LUA_MASKCOUNT, 1000);
}

static void on_sigurg(int sig) {
  (void)sig;
  lua_State *co = tls_co;
  if (co) {
    tls_armed = 1;
    lua_sethook(co, preempt_hook, LUA_MASKCOUNT, 1);
  }
}

void tr__preempt_arm(lua_State *co) { lua_sethook(co, preempt_hook, LUA_MASKCOUNT, 1); }

/* Every resume happens in an actor turn, inside the scheduler's idle
 * callback, which records the thread the watchdog signals (tr__preempt_thread). */
void tr__preempt_thread(tr_sched *s) {
  __atomic_store_n(&s->thread, uv_thread_self(), __ATOMIC_RELAXED);
}

/* (tr__preempt_leave, internal.h) */
void tr__preempt_disarm(lua_State *co) {
  lua_sethook(co, NULL, 0, 0);
  tls_armed = 0;
}

/* A handler runs a coroutine of its own (the troupe coroutine.resume/wrap):
 * while it runs, the signal arms it, not the handler's coroutine, which is
 * inside the resume and runs no instruction until it returns. Returns the
 * thread armed before (NULL outside a scheduler's resume: then nothing is
 * tracked) for tr__preempt_unnest. */
lua_State *tr__preempt_nest(lua_State *co) {
  lua_State *prev = tls_co;
  if (prev) {
    tls_co = co;
    if (tls_actor && tls_actor->cold->interrupt) tr__preempt_arm(co); /* raise it in there */
  }
  return prev;
}

/* co returned, raised or yielded to prev, which runs again: a signal that
 * armed co but found no instruction left to run there arms prev instead,
 * unless prev yields at once too (`leaving`: a wait or a preemption passed
 * up, which is what the signal asked for). */
void tr__preempt_unnest(lua_State *prev, lua_State *co, int leaving) {
  if (!prev) return;
  tls_co = prev;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (tls_armed) {
    lua_sethook(co, NULL, 0, 0);
    if (leaving) {
      lua_sethook(prev, NULL, 0, 0);
      tls_armed = 0;
    } else {
      lua_sethook(prev, preempt_hook, LUA_MASKCOUNT, 1);
    }
  }
}

/* Did the hook yield the running coroutine (a preemption, not the code's
 * own yield)? */
int tr__preempt_pending(void) { return tls_preempted; }

/* A preemption that cannot be passed up (a C call boundary above the
 * nested coroutine): forget it; the watchdog asks again after a slice. */
void tr__preempt_clear(void) { tls_preempted = 0; }

static void watchdog(void *arg) {
  tr_host *h = arg;
  uint64_t tick_ns = (uint64_t)(h->slice_ms > 1 ? h->slice_ms : 2) * 1000000u / 2;
  uv_mutex_lock(&h->wd_lock);
  while (!h->wd_stop) {
    uv_cond_timedwait(&h->wd_cond, &h->wd_lock, tick_ns);
    if (h->wd_stop) break;
    for (unsigned i = 0; i < h->nsched; i++) {
      tr_sched *s = &h->sched[i];
      if (!__atomic_load_n(&s->in_resume, __ATOMIC_ACQUIRE)) {
        s->wd_ticks = 0;
        continue;
      }
      uint64_t gen = __atomic_load_n(&s->resume_gen, __ATOMIC_RELAXED);
      if (gen != s->wd_seen_gen) {
        s->wd_seen_gen = gen;
        s->wd_ticks = 0;
        continue;
      }
      if (++s->wd_ticks >= 2) { /* the same resume for a whole slice */
        s->wd_ticks = 0;
        pthread_kill((pthread_t)__atomic_load_n(&s->thread, __ATOMIC_RELAXED), SIGURG);
      }
    }
  }
  uv_mutex_unlock(&h->wd_lock);
}

int tr__preempt_start(tr_host *h) {
  if (h->slice_ms < 0) return 0;
  static int installed;
  if (!__atomic_exchange_n(&installed, 1, __ATOMIC_ACQ_REL)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigurg;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
  }
  if (uv_mutex_init(&h->wd_lock)) return TR_ENOMEM;
  if (uv_cond_init(&h->wd_cond)) {
    uv_mutex_destroy(&h->wd_lock);
    return TR_ENOMEM;
  }
  h->wd_stop = 0;
  for (unsigned i = 0; i < h->nsched; i++) h->sched[i].thread = uv_thread_self();
  if (uv_thread_create(&h->wd_thread, watchdog, h)) {
    uv_cond_destroy(&h->wd_cond);
    uv_mutex_destroy(&h->wd_lock);
    return TR_ENOMEM;
  }
  h->wd_running = 1;
  return 0;
}

void tr__preempt_stop(tr_host *h) {
  if (!h->wd_running) return;
  uv_mutex_lock(&h->wd_lock);
  h->wd_stop = 1;
  uv_cond_signal(&h->wd_cond);
  uv_mutex_unlock(&h->wd_lock);
  uv_thread_join(&h->wd_thread);
  uv_cond_destroy(&h->wd_cond);
  uv_mutex_destroy(&h->wd_lock);
  h->wd_running = 0;
}
