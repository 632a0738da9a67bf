/* The control socket's line protocol (control.c). Not installed.
 *
 * Client -> host, one request per line (\n-terminated, at most
 * TR_CTL_MAX_LINE bytes, no NUL bytes):
 *   LINE <text>       a line typed at the prompt ("LINE" alone: an empty line)
 *   COMPLETE <text>   completion candidates for the text before the cursor
 *   INTERRUPT         Ctrl-C
 *   PING              answered with PONG
 *   QUIT              the host answers BYE and closes the connection
 * Host -> client, one per line:
 *   TROUPE 1 <version>   greeting (protocol version 1)
 *   OUT <text>           a line of output
 *   ERR <text>           a line of error text (also: protocol errors)
 *   PROMPT <prompt>      ready for the next LINE
 *   COMPLETE <n>         followed by n lines "CAND <word>"
 *   PONG, BYE
 * A malformed request gets "ERR protocol: ..." and the connection stays open;
 * a line longer than the limit closes it. */
#ifndef TROUPE_CONTROL_H
#define TROUPE_CONTROL_H

#include <stddef.h>

#define TR_CTL_MAX_LINE (65536 + 16)

enum { TR_CTL_LINE = 1, TR_CTL_COMPLETE, TR_CTL_INTERRUPT, TR_CTL_PING, TR_CTL_QUIT };

typedef struct tr_ctl_req {
  int verb;          /* TR_CTL_* */
  const char *arg;   /* points into the line (not NUL-terminated) */
  size_t arg_len;
  char err[96];      /* why the line was rejected */
} tr_ctl_req;

/* Parses one request line (without its \n). Returns 0, or TR_EINVAL with
 * out->err set. Never reads past line + len. */
int tr__control_parse(const char *line, size_t len, tr_ctl_req *out);

#endif
