/* The REPL engine (repl.c): sessions that evaluate lines of Lua and :commands
 * against a live host, independent of where the lines come from (a terminal,
 * a control-socket connection). Not installed. */
#ifndef TROUPE_REPL_H
#define TROUPE_REPL_H

#include "internal.h"

typedef struct tr_repl tr_repl;

/* Per host (h->repl): sessions, traces, control sockets. */
typedef struct tr_repl_host {
  tr_repl *sessions;
  uint64_t next_sid;
  int mod_ref; /* lua/repl.lua's module table */
  int *mods;   /* per scheduler: the module in that scheduler's state (its
                * renderer, for :state), made and used on its thread only;
                * mods[0] is mod_ref */
  struct { tr_addr addr; uint64_t sid; } *traces;
  size_t ntraces, captraces;
  tr__trace_fn prev_trace_fn;
  void *prev_trace_ud;
  int in_trace;
  struct tr_ctl_server *servers;
} tr_repl_host;

/* What a session emits. Text never contains a newline (multi-line output is
 * emitted line by line). */
enum {
  TR_REPL_OUT = 1, /* a line of output: a value, a command's table, print() */
  TR_REPL_ERR,     /* a line of error text */
  TR_REPL_PROMPT,  /* ready for the next line; text is the prompt ("> ", ">> ") */
  TR_REPL_BYE      /* the session asked to end (:quit) */
};
typedef void (*tr_repl_out_fn)(void *ud, int kind, const char *text, size_t len);

#define TR_REPL_PROMPT1 "> "
#define TR_REPL_PROMPT2 ">> "
#define TR_REPL_MAX_LINE 65536 /* longest input line */
#define TR_REPL_MAX_CHUNK (1u << 20) /* longest multi-line input */
#define TR_REPL_MAX_QUEUE 256 /* lines typed ahead while a line runs */

/* The host's REPL data, created (and lua/repl.lua loaded) on first use. */
tr_repl_host *tr__repl_host(tr_host *h);
/* A new session on h's host. `out` receives everything it prints. */
int tr__repl_new(tr_host *h, tr_repl_out_fn out, void *ud, tr_repl **r);
/* Ends the session: its hidden actor is killed, its traces removed. Safe to
 * call from inside `out`? No: call it from the front-end's own callbacks. */
void tr__repl_free(tr_repl *r);
/* One line of input (no newline). Evaluated now, or queued behind the line
 * that is running. Returns TR_EFULL if too many lines are queued. */
int tr__repl_input(tr_repl *r, const char *line, size_t len);
/* Ctrl-C: interrupts the running line and drops queued input; at the prompt,
 * drops the continuation and stops this session's traces. */
void tr__repl_interrupt(tr_repl *r);
/* Completion candidates for the text before the cursor: calls add() for each
 * full word that may replace the last word of `text` (its start is *start). */
typedef void (*tr_repl_cand_fn)(void *ud, const char *word, size_t len);
int tr__repl_complete(tr_repl *r, const char *text, size_t len, tr_repl_cand_fn add, void *ud);
int tr__repl_busy(tr_repl *r);
/* Emits the first prompt. */
void tr__repl_start(tr_repl *r);

/* The terminal's SIGINT handler (async-signal-safe): a line running right
 * now raises "interrupted" at its next instruction. */
void tr__repl_signal(tr_repl *r);
void tr__repl_set_signal_session(tr_repl *r);

/* Called by tr_host_free before the Lua state goes: closes control sockets
 * and ends every session. */
void tr__repl_host_free(tr_host *h);

/* Control sockets (control.c). */
void tr__control_close_all(tr_host *h);

/* Lua helpers the REPL needs from lua_host.c. */
void tr__lua_push_addr(tr_host *h, lua_State *L, tr_addr a);
tr_addr tr__lua_to_addr(tr_host *h, lua_State *L, int idx);
/* Pushes a Lua actor's behaviour table (nil for a C actor). */
void tr__lua_push_behaviour(tr_actor *a, lua_State *L);
/* On s's thread, in s's Lua state L: loads `path` afresh as a behaviour (the
 * spawn cache is bypassed, then updated); `name` (NULL: from the file) names
 * the behaviour. On success pushes the table, sets *out and returns 0;
 * otherwise pushes the error message and returns TR_ELOAD or TR_ENOTFOUND. */
int tr__lua_load_fresh(tr_sched *s, lua_State *L, const char *path, const char *name,
                       struct tr_lbeh **out);
/* On s's thread: pushes what s's spawn cache holds for the file `path` (nil:
 * nothing); sets that entry from the value on top of the stack (popped; nil
 * forgets it). :reload puts back the old entry when another scheduler cannot
 * load the file. */
void tr__lua_file_cached(tr_sched *s, lua_State *L, const char *path);
void tr__lua_file_cache_set(tr_sched *s, lua_State *L, const char *path);
/* The behaviour name of a Lua actor. */
const char *tr__lua_behaviour_name(tr_actor *a);

#endif
