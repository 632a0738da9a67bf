/* troupe — a Lua-scriptable actor host on libuv.
 *
 * One public header. Every function returns 0 (TR_OK) on success or a negative
 * TR_E* code; tr_strerror()/tr_errname() turn a code into words. A call that
 * fails never invokes its callback.
 *
 * Threading: a host runs N schedulers (tr_host_options.schedulers), each a
 * thread with its own uv loop; the first runs on the host's loop, i.e. on the
 * thread that runs it. Call the functions here on a scheduler's thread: the
 * host's loop thread, or inside a handler or callback (C handlers of an actor
 * placed on another scheduler run on that scheduler's thread). Any other
 * thread uses tr_send_async() only. tr_host_new, tr_host_run and
 * tr_host_free belong to the host's loop thread.
 *
 * Ownership: the caller owns every tr_buf it passes in (the host copies the
 * bytes). Payload readers (tr_msg) are valid only during the callback that
 * received them.
 */
#ifndef TROUPE_H
#define TROUPE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define TR_EXTERN __attribute__((visibility("default")))
#else
#define TR_EXTERN
#endif

#define TROUPE_VERSION_MAJOR 0
#define TROUPE_VERSION_MINOR 1
#define TROUPE_VERSION_PATCH 0
#define TROUPE_VERSION_STRING "0.1.0"

/* ---- errors -------------------------------------------------------------
 * One list: the enum, the names ("dead") and the messages come from it. The
 * names are stable and are also the `code` field of Lua error values. */
#define TR_ERRNO_MAP(X)                                                        \
  X(DEAD, -1, "dead", "no such actor, or it has stopped")                      \
  X(TIMEOUT, -2, "timeout", "the call timed out")                              \
  X(CRASHED, -3, "crashed", "the handler raised an error")                     \
  X(NOHANDLER, -4, "no_handler", "the actor has no handler for that method")   \
  X(FULL, -5, "full", "the mailbox is full")                                   \
  X(BADVALUE, -6, "bad_value", "a value cannot be sent")                       \
  X(DEADLOCK, -7, "deadlock", "the call would wait on itself")                 \
  X(INVAL, -8, "invalid", "invalid argument")                                  \
  X(NOMEM, -9, "no_memory", "out of memory")                                   \
  X(EXISTS, -10, "exists", "the name is already registered")                   \
  X(NOTFOUND, -11, "not_found", "no such name, behaviour or file")             \
  X(ALREADY, -12, "already_replied", "the request was already answered")      \
  X(LOAD, -13, "load", "the code failed to load")                              \
  X(STOPPED, -14, "stopped", "the host is stopping")                           \
  X(DROPPED, -15, "dropped", "the reply token was dropped without a reply")   \
  X(KILLED, -16, "killed", "the actor was killed")                            \
  X(LINKED, -17, "linked_exit", "a linked actor exited abnormally")            \
  X(INTERRUPTED, -18, "interrupted", "the handler was interrupted")           \
  X(OOM, -19, "out_of_memory", "the actor went over its memory limit")

typedef enum {
  TR_OK = 0,
  /* A call's status when the handler answered with its own error value
   * (e.g. insufficient funds): not a system error, so it is positive. */
  TR_FAILED = 1,
#define TR__ERRENUM(name, val, str, msg) TR_E##name = val,
  TR_ERRNO_MAP(TR__ERRENUM)
#undef TR__ERRENUM
  TR__ERRMIN = -20
} tr_status;

TR_EXTERN const char *tr_errname(int code); /* "dead", "ok", "failed" */
TR_EXTERN const char *tr_strerror(int code);
TR_EXTERN int tr_errcode(const char *name); /* inverse of tr_errname; 0 if unknown */

/* ---- addresses -----------------------------------------------------------
 * A plain 64-bit value: node (8 bits) | scheduler (8) | serial (48). Serials
 * are never reused within a host, so a stale address is always detected.
 * TR_NOADDR is "nobody" (C code outside any actor). */
typedef uint64_t tr_addr;
#define TR_NOADDR ((tr_addr)0)
#define TR_ADDR_SERIAL(a) ((a) & UINT64_C(0xFFFFFFFFFFFF))
#define TR_ADDR_SCHED(a) ((unsigned)(((a) >> 48) & 0xFF))
#define TR_ADDR_NODE(a) ((unsigned)(((a) >> 56) & 0xFF))

/* ---- values: a payload is a sequence of MessagePack values ---------------
 * tr_buf is caller-owned storage for building one. */
typedef struct tr_buf {
  char *data; /* read-only for users */
  size_t len; /* read-only */
  size_t cap; /* private */
  char inline_[96]; /* private */
} tr_buf;

TR_EXTERN void tr_buf_init(tr_buf *b);
TR_EXTERN void tr_buf_reset(tr_buf *b);
TR_EXTERN void tr_buf_free(tr_buf *b); /* safe to call twice */
TR_EXTERN int tr_pack_nil(tr_buf *b);
TR_EXTERN int tr_pack_bool(tr_buf *b, int v);
TR_EXTERN int tr_pack_int(tr_buf *b, int64_t v);
TR_EXTERN int tr_pack_double(tr_buf *b, double v);
TR_EXTERN int tr_pack_str(tr_buf *b, const char *s); /* NUL-terminated */
TR_EXTERN int tr_pack_lstr(tr_buf *b, const char *s, size_t len);
TR_EXTERN int tr_pack_addr(tr_buf *b, tr_addr a); /* counts as no reference (tr_retain) */
TR_EXTERN int tr_pack_array(tr_buf *b, uint32_t n); /* then n values */
TR_EXTERN int tr_pack_map(tr_buf *b, uint32_t n);   /* then n key, value */
/* Format packing: n nil, b bool(int), i int, I int64_t, d double, s const
 * char*, S (const char*, size_t), a tr_addr, [ ... ] array, { ... } map
 * (keys and values alternate). Returns TR_EINVAL on a bad format. */
TR_EXTERN int tr_pack_fmt(tr_buf *b, const char *fmt, ...);

/* Reading a payload: a message's arguments, a reply's values, spawn args. */
typedef struct tr_msg tr_msg;
typedef enum {
  TR_T_NONE = 0, /* no value at that index */
  TR_T_NIL, TR_T_BOOL, TR_T_INT, TR_T_FLOAT, TR_T_STR, TR_T_ARRAY, TR_T_MAP,
  TR_T_ADDR, TR_T_OTHER
} tr_type;
TR_EXTERN int tr_msg_count(const tr_msg *m);
TR_EXTERN tr_type tr_msg_type(const tr_msg *m, int i); /* i from 0 */
/* Each returns 0, or TR_EBADVALUE if value i is missing or of another type
 * (tr_msg_num accepts integers too). */
TR_EXTERN int tr_msg_int(const tr_msg *m, int i, int64_t *out);
TR_EXTERN int tr_msg_num(const tr_msg *m, int i, double *out);
TR_EXTERN int tr_msg_bool(const tr_msg *m, int i, int *out);
TR_EXTERN int tr_msg_str(const tr_msg *m, int i, const char **p, size_t *len);
TR_EXTERN int tr_msg_addr(const tr_msg *m, int i, tr_addr *out);
/* Field of a map value: tr_msg_field_* look up string key `key` in map i. */
TR_EXTERN int tr_msg_field_int(const tr_msg *m, int i, const char *key, int64_t *out);
TR_EXTERN int tr_msg_field_str(const tr_msg *m, int i, const char *key,
                               const char **p, size_t *len);
/* The raw MessagePack bytes of the whole payload (for advanced decoding). */
TR_EXTERN const char *tr_msg_bytes(const tr_msg *m, size_t *len);
/* Render value i (or all values if i < 0) as Lua-like text into out (always
 * NUL-terminated; truncated to cap). Returns the length it wanted. */
TR_EXTERN size_t tr_msg_format(const tr_msg *m, int i, char *out, size_t cap);

/* ---- host ------------------------------------------------------------------ */
typedef struct tr_host tr_host;

typedef void (*tr_log_fn)(void *ud, const char *line);

typedef struct tr_host_options {
  uv_loop_t *loop;          /* NULL: the host creates and owns its loop */
  uint32_t mailbox_capacity; /* public lane default; 0 = TR_DEFAULT_MAILBOX */
  int64_t call_timeout_ms;  /* default call timeout; 0 = TR_DEFAULT_TIMEOUT_MS */
  tr_log_fn log;            /* NULL: lines go to stderr */
  void *log_ud;
  /* A Lua handler that runs longer than this is preempted (it yields and
   * resumes after the other runnable actors): 0 = TR_DEFAULT_SLICE_MS, < 0 =
   * never. Preemption uses SIGURG on the loop thread and one watchdog thread. */
  int32_t slice_ms;
  size_t mem_limit;         /* Lua memory of the whole host, bytes; 0 = none. It binds
                             * inside handlers: the actor that allocates past it dies
                             * with out_of_memory (main code is not capped) */
  /* Schedulers: each is one thread with its own uv loop and Lua state; the
   * first runs on `loop` (the thread that runs it), the others on threads the
   * host owns. 0 = the environment variable TROUPE_SCHEDULERS, else the number
   * of cores. At most TR_MAX_SCHEDULERS. */
  unsigned schedulers;
  void *reserved[4];
} tr_host_options;

#define TR_MAX_SCHEDULERS 64

#define TR_DEFAULT_SLICE_MS 10

#define TR_DEFAULT_MAILBOX 1024
#define TR_DEFAULT_TIMEOUT_MS 5000
/* Per-call timeout values: a positive number of ms, or one of these. */
#define TR_TIMEOUT_DEFAULT (-1)
#define TR_TIMEOUT_INFINITE (-2)

TR_EXTERN void tr_host_options_init(tr_host_options *o);
TR_EXTERN int tr_host_new(tr_host **out, const tr_host_options *opts /* NULL ok */);
/* Stops every actor (kill, no hooks), closes every handle and frees. With an
 * owned loop, also closes the loop. With a program's loop, runs that loop
 * (NOWAIT) until the host's handles are closed: do not call it from inside a
 * callback of that loop. NULL is accepted. */
TR_EXTERN void tr_host_free(tr_host *h);
TR_EXTERN uv_loop_t *tr_host_loop(tr_host *h);
/* How many schedulers the host runs. TR_ADDR_SCHED(a) is the (0-based)
 * scheduler of an address. */
TR_EXTERN unsigned tr_host_schedulers(tr_host *h);
/* Runs the loop until nothing is left to do (no runnable actor, no timer, no
 * pending call) or tr_host_exit() is called. Returns the exit code. */
TR_EXTERN int tr_host_run(tr_host *h);
/* Makes tr_host_run() return `code` after the current callback. */
TR_EXTERN void tr_host_exit(tr_host *h, int code);
/* Gracefully stops every actor (stop hooks run; vetoes are ignored). */
TR_EXTERN void tr_host_shutdown(tr_host *h);
/* Counters for tooling. */
typedef struct tr_host_stats {
  uint64_t actors, spawned, messages, calls;
} tr_host_stats;
TR_EXTERN void tr_host_stats_get(tr_host *h, tr_host_stats *out);
/* Opens a control socket at `path`: `troupe attach PATH` then gets a REPL
 * against this host (several at once). The socket is a Unix socket created
 * 0600 in a directory that must belong to the user and be closed to others
 * (a missing last directory is created 0700); connections from another uid
 * are refused; a stale socket file is replaced. The listening socket keeps
 * the loop running until tr_host_free() (which closes it and removes the
 * file). Ignores SIGPIPE if it was at its default. Returns 0, TR_EEXISTS (a
 * host is listening there), TR_EINVAL (bad path or directory). */
TR_EXTERN int tr_control_listen(tr_host *h, const char *path);
/* Runs a chunk of Lua in the host's Lua state (as the main script would). */
TR_EXTERN int tr_host_dostring(tr_host *h, const char *code, const char *chunkname);
TR_EXTERN int tr_host_dofile(tr_host *h, const char *path);

/* ---- behaviours written in C ------------------------------------------------ */
typedef struct tr_ctx tr_ctx; /* valid only during the callback */

typedef int (*tr_handler_fn)(tr_ctx *ctx, const tr_msg *args);
typedef struct tr_method {
  const char *name;
  tr_handler_fn fn;
} tr_method;

typedef struct tr_behaviour {
  const char *name;        /* shown in addresses: <actor 12 Account> */
  size_t state_size;       /* zeroed state the host allocates per actor */
  int (*init)(tr_ctx *ctx, const tr_msg *args); /* non-zero: actor crashes */
  void (*on_start)(tr_ctx *ctx);
  int (*on_stopping)(tr_ctx *ctx); /* non-zero vetoes a graceful stop */
  void (*on_stopped)(tr_ctx *ctx);
  const tr_method *methods; /* terminated by {NULL, NULL} */
  void *reserved[4];
} tr_behaviour;
/* The host reads a behaviour, its method table and the names in it while
 * actors of it live (an actor keeps the method it found last): keep them
 * valid and unchanged until those actors are gone. */

/* A handler returns 0 to answer with what it wrote into tr_ctx_reply() (or
 * with nothing), TR_FAILED to answer with what it wrote into tr_ctx_fail()
 * (its own error value), or a negative TR_E* code (the caller gets that
 * system error, with the text set by tr_ctx_error() if any). A handler that
 * called tr_ctx_defer() answers later through the token. */
TR_EXTERN tr_host *tr_ctx_host(tr_ctx *c);
TR_EXTERN tr_addr tr_ctx_self(tr_ctx *c);
TR_EXTERN tr_addr tr_ctx_sender(tr_ctx *c); /* TR_NOADDR if outside actors */
TR_EXTERN void *tr_ctx_state(tr_ctx *c);
TR_EXTERN const char *tr_ctx_method(tr_ctx *c);
TR_EXTERN int tr_ctx_is_call(tr_ctx *c);
TR_EXTERN tr_buf *tr_ctx_reply(tr_ctx *c); /* values of the reply */
TR_EXTERN tr_buf *tr_ctx_fail(tr_ctx *c);  /* the handler's own error value */
TR_EXTERN int tr_ctx_error(tr_ctx *c, int code, const char *fmt, ...);

typedef struct tr_token {
  uint64_t req;     /* private */
  tr_addr caller;   /* private */
  tr_addr owner;    /* private */
} tr_token;
/* Take the reply of the current call into a token; answer later (from any
 * callback on the host's thread) with tr_token_reply/tr_token_fail. A second
 * answer returns TR_EALREADY. If the owning actor stops first, the caller
 * gets TR_EDEAD. */
TR_EXTERN int tr_ctx_defer(tr_ctx *c, tr_token *out);
TR_EXTERN int tr_token_reply(tr_host *h, const tr_token *t, const tr_buf *values);
TR_EXTERN int tr_token_fail(tr_host *h, const tr_token *t, const tr_buf *value);

/* Registers a C behaviour so Lua can spawn it by name (troupe.behaviour). */
TR_EXTERN int tr_register_behaviour(tr_host *h, const tr_behaviour *b);
/* A shared library of C behaviours exports this NULL-terminated array;
 * troupe.load_c(path) in Lua, or tr_load_behaviours() in C, registers them. */
#define TR_BEHAVIOURS_SYMBOL "troupe_behaviours"
TR_EXTERN int tr_load_behaviours(tr_host *h, const char *path);

/* ---- spawning ---------------------------------------------------------------- */
typedef struct tr_spawn_options {
  uint32_t mailbox_capacity; /* 0: the host default */
  int owned;  /* stop when the last strong reference is released */
  const char *name; /* register under this name (NULL: none) */
  tr_addr link;     /* link the new actor to this one (TR_NOADDR: none) */
  size_t mem_limit; /* Lua actors: memory cap in bytes (0: none); over it the
                     * actor dies with reason out_of_memory */
  int64_t cpu_limit_ms; /* Lua actors: CPU time one message may take (0: none);
                         * over it the actor dies with reason timeout */
  /* Placement: 0 = automatic (spawned by an actor: its scheduler; from outside
   * any actor: round-robin over the schedulers), k = the k-th scheduler
   * (1-based). A C behaviour or a Lua file or source string can go anywhere;
   * TR_EINVAL if k > tr_host_schedulers(). */
  unsigned scheduler;
  void *reserved[4];
} tr_spawn_options;

TR_EXTERN int tr_spawn(tr_host *h, const tr_behaviour *b, const tr_buf *args,
                       const tr_spawn_options *o, tr_addr *out);
/* A Lua behaviour: a file, or a string of code, returning the behaviour table. */
TR_EXTERN int tr_spawn_lua_file(tr_host *h, const char *path, const tr_buf *args,
                                const tr_spawn_options *o, tr_addr *out);
TR_EXTERN int tr_spawn_lua_string(tr_host *h, const char *code, const char *chunkname,
                                  const tr_buf *args, const tr_spawn_options *o,
                                  tr_addr *out);
/* A behaviour by name: a Lua behaviour named with troupe.behaviour(name, t)
 * (the built-in "Supervisor" among them), else a registered C behaviour.
 * A supervisor from C: tr_spawn_named(h, "Supervisor", spec, NULL, &sup),
 * where spec is one map value built with tr_pack_fmt (see docs). */
TR_EXTERN int tr_spawn_named(tr_host *h, const char *name, const tr_buf *args,
                             const tr_spawn_options *o, tr_addr *out);
/* Strong references for owned actors: an owned actor stops when its count
 * falls to 0. Each Lua strong address of an owned actor holds one (in any
 * scheduler's state), and so does each message, reply, spawn request or
 * timer whose payload a Lua actor wrote with one inside (until it is
 * handled or dropped). Addresses packed in C (tr_pack_addr), or payload
 * bytes a C handler copies on (tr_msg_bytes), hold none: C code that keeps
 * an owned actor's address, or sends one, holds its own reference with
 * tr_retain and gives it back with tr_release. */
TR_EXTERN int tr_retain(tr_host *h, tr_addr a);
TR_EXTERN int tr_release(tr_host *h, tr_addr a);

/* ---- messaging ----------------------------------------------------------------
 * `from` is the sending actor (tr_ctx_self) or TR_NOADDR. Call these on a
 * scheduler's thread (a handler, a reply callback, or the thread running the
 * host's loop); another thread uses tr_send_async.
 *
 * Across schedulers: a message to an actor of another scheduler goes through
 * that scheduler's inbox. A full mailbox there pushes back as one here does:
 * tr_send and tr_call return TR_EFULL (nothing is queued) when its depth as
 * recently seen (what it holds plus what is on its way to it) has reached
 * its capacity; replies and system messages are never refused. What you ask
 * of such an actor (tr_kill, tr_stop, tr_link, tr_monitor, tr_register,
 * tr_send_after, ...) happens when its scheduler gets to it: the call returns
 * TR_EDEAD for an actor already gone, else 0. */
TR_EXTERN int tr_send(tr_host *h, tr_addr from, tr_addr to, const char *method,
                      const tr_buf *args);
TR_EXTERN int tr_send_fmt(tr_host *h, tr_addr from, tr_addr to, const char *method,
                          const char *fmt, ...);
/* Any thread: queued and delivered on the target's scheduler. Refused at
 * once, as tr_send to another scheduler is: TR_EDEAD for an actor already
 * gone, TR_EFULL when its public mailbox (what it holds plus what is on its
 * way to it) is at its capacity. A message accepted is delivered unless the
 * actor dies first (then it is logged and dropped; so is one to an actor
 * whose spawn is still on its way that finds the mailbox full). Such threads
 * must stop sending before tr_host_free (which cannot tell a sender still on
 * its way in). */
TR_EXTERN int tr_send_async(tr_host *h, tr_addr to, const char *method, const tr_buf *args);

/* status: TR_OK (values in `reply`), TR_FAILED (the handler's own error value
 * is reply value 0), or a negative system error (reply value 0 is the message,
 * value 1 the traceback for TR_ECRASHED). Called exactly once. */
typedef void (*tr_reply_cb)(tr_host *h, int status, const tr_msg *reply, void *ud);
TR_EXTERN int tr_call(tr_host *h, tr_addr from, tr_addr to, const char *method,
                      const tr_buf *args, int64_t timeout_ms, tr_reply_cb cb, void *ud);
TR_EXTERN int tr_call_fmt(tr_host *h, tr_addr from, tr_addr to, const char *method,
                          tr_reply_cb cb, void *ud, const char *fmt, ...);

/* When `to`'s public mailbox is full, tr_send returns TR_EFULL; this asks for
 * one callback when there is room (status 0), or status TR_EDEAD if it stops
 * first. The callback runs on the thread of the scheduler that asked. For an
 * actor of this scheduler that has room now it runs before tr_notify_room
 * returns. For an actor of another scheduler it always runs later, from this
 * scheduler's loop: its owner records the wait, answers when the mailbox has
 * room (at once if it has room already) and the answer comes back here
 * (status TR_ENOMEM if the owner had no memory to record it). Room is not
 * reserved: another sender may take it first, and tr_send then says TR_EFULL
 * again. A wait still pending at tr_host_free hears TR_EDEAD during it (its
 * actor is killed); no callback runs after tr_host_free returns. Asked from
 * a C actor's code (a handler, or a reply or room callback of its own), the
 * wait is that actor's: if it dies first, the callback hears TR_EDEAD as it
 * dies, while its state (which `ud` may point into) still exists, as its
 * pending calls do; never after. */
typedef void (*tr_room_cb)(tr_host *h, tr_addr to, int status, void *ud);
TR_EXTERN int tr_notify_room(tr_host *h, tr_addr to, tr_room_cb cb, void *ud);

/* ---- timers: messages to self --------------------------------------------------- */
typedef uint64_t tr_timer_id;
/* After delay_ms (and every interval_ms if > 0), `self` receives `method`
 * with `args` on its private lane. */
TR_EXTERN int tr_send_after(tr_host *h, tr_addr self, int64_t delay_ms, int64_t interval_ms,
                            const char *method, const tr_buf *args, tr_timer_id *out);
/* At the loop time at_ms (see tr_now_ms; a past time fires at once). */
TR_EXTERN int tr_send_at(tr_host *h, tr_addr self, uint64_t at_ms, const char *method,
                         const tr_buf *args, tr_timer_id *out);
/* TR_ENOTFOUND for a timer of this scheduler that is gone; a timer of another
 * scheduler (an id names its scheduler) is cancelled there: 0. */
TR_EXTERN int tr_cancel_timer(tr_host *h, tr_timer_id id);
TR_EXTERN uint64_t tr_now_ms(tr_host *h); /* the calling scheduler's loop clock */

/* ---- monitors and links ----------------------------------------------------------
 * When an actor dies, each watcher gets a message "on_down" on its private
 * lane with values (ref, address, reason, detail), and each linked actor that
 * traps exits gets "on_exit" with (address, reason, detail). A linked actor
 * that does not trap exits dies too, with reason "linked_exit", unless the
 * reason was "normal" or "stopped". Reasons: "normal" (it stopped itself),
 * "stopped" (stopped by another), "killed", "crashed" (detail: {message,
 * traceback}), "out_of_memory", "timeout" (CPU limit), "linked_exit" (detail:
 * {message}), "noproc" (already dead when watched). Handlers for on_down and
 * on_exit are optional: without one the message is dropped quietly. */
TR_EXTERN int tr_monitor(tr_host *h, tr_addr watcher, tr_addr target, uint64_t *ref);
/* After it returns no on_down comes for ref. A ref names the watcher's
 * scheduler: from another scheduler it is dropped there and 0 is returned
 * (TR_ENOTFOUND only for an unknown ref of the calling scheduler). */
TR_EXTERN int tr_demonitor(tr_host *h, uint64_t ref);
TR_EXTERN int tr_link(tr_host *h, tr_addr a, tr_addr b);
TR_EXTERN int tr_unlink(tr_host *h, tr_addr a, tr_addr b);
TR_EXTERN int tr_trap_exit(tr_host *h, tr_addr a, int on);
/* Graceful stop that reports the outcome: the callback gets TR_OK with the
 * reason string as value 0 once `target` is gone, or TR_FAILED ("vetoed").
 * If it has not stopped after timeout_ms it is killed (reason "killed"). */
TR_EXTERN int tr_shutdown(tr_host *h, tr_addr from, tr_addr target, int64_t timeout_ms,
                          tr_reply_cb cb, void *ud);

/* ---- names ----------------------------------------------------------------------- */
TR_EXTERN int tr_register(tr_host *h, const char *name, tr_addr a);
TR_EXTERN int tr_unregister(tr_host *h, const char *name);
TR_EXTERN int tr_whereis(tr_host *h, const char *name, tr_addr *out);

/* ---- lifetime --------------------------------------------------------------------- */
TR_EXTERN int tr_stop(tr_host *h, tr_addr a); /* graceful, after the current message */
TR_EXTERN int tr_kill(tr_host *h, tr_addr a); /* now, no hooks */
TR_EXTERN int tr_alive(tr_host *h, tr_addr a); /* 1 or 0 */
/* "<actor 12 Account>" into out; returns the length it wanted. */
TR_EXTERN size_t tr_addr_format(tr_host *h, tr_addr a, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_H */
