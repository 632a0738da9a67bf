/* The terminal front-end of the REPL (term.c): libedit line editing on a uv
 * loop, history, completion and Ctrl-C; plain line reading when stdin is not
 * a terminal. Used by `troupe repl` (in-process) and `troupe attach`. Part of
 * the command line only (it links libedit). */
#ifndef TROUPE_TERM_H
#define TROUPE_TERM_H

#include "repl.h"

typedef struct tr_term_backend {
  void (*line)(void *ud, const char *line, size_t len); /* a line was entered */
  void (*eof)(void *ud);                                /* Ctrl-D / end of input */
  void (*interrupt)(void *ud);                          /* Ctrl-C, on the loop */
  int (*busy)(void *ud);                                /* a line is running */
  void (*complete)(void *ud, const char *text, size_t len, tr_repl_cand_fn add, void *cud);
  void (*on_signal)(void *ud); /* in the SIGINT handler itself (async-signal-safe); may be NULL */
} tr_term_backend;

int tr__term_open(uv_loop_t *loop, const tr_term_backend *b, void *ud);
/* Output from the session: TR_REPL_OUT, TR_REPL_ERR, TR_REPL_PROMPT, TR_REPL_BYE. */
void tr__term_output(int kind, const char *text, size_t len);
void tr__term_close(void);
int tr__term_is_tty(void);

#endif
