/* The REPL's terminal: libedit in callback mode on a uv_poll of stdin (see
 * ../shared/SETUP.md for the two fixes it needs), history in
 * ~/.troupe_history, Tab completion, Ctrl-C through a SIGINT handler. When
 * stdin is not a terminal, lines are read plainly (a pipe through uv, a file
 * with read()) and fed one at a time, each after the previous one finished. */
#include "term.h"

#include <editline/readline.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
  int open, tty, at_prompt, eof_sent, input_eof, want_line;
  const tr_term_backend *b;
  void *ud;
  uv_loop_t *loop;
  uv_poll_t poll;  /* tty: stdin readable */
  uv_pipe_t pipe;  /* non-tty pipe */
  int use_pipe;
  uv_idle_t feed;  /* non-tty: deliver the next line outside the output callback */
  uv_async_t async; /* SIGINT -> loop */
  char *buf;       /* non-tty input not yet delivered */
  size_t len, cap;
  char hist[4096];
  struct sigaction old_int;
  volatile sig_atomic_t sig_pending, sig_busy;
} T;

static const char BREAKS[] = " \t\n\"\\'`@$><=;|&{}(),+-*/%^~[]#";

int tr__term_is_tty(void) { return T.tty; }

static void on_line(char *line);
static void on_poll(uv_poll_t *p, int status, int events);

static void show_prompt(const char *prompt) {
  if (T.at_prompt) rl_callback_handler_remove();
  rl_callback_handler_install(prompt, on_line);
  T.at_prompt = 1;
  uv_poll_start(&T.poll, UV_READABLE, on_poll);
}

static void eof(void) {
  if (T.eof_sent) return;
  T.eof_sent = 1;
  T.b->eof(T.ud);
}

static void on_line(char *line) {
  rl_callback_handler_remove();
  T.at_prompt = 0;
  uv_poll_stop(&T.poll);
  if (!line) {
    fputs("\n", stdout);
    fflush(stdout);
    eof();
    return;
  }
  if (*line) {
    add_history(line);
    if (T.hist[0]) write_history(T.hist);
  }
  T.b->line(T.ud, line, strlen(line));
  free(line);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)p, (void)status, (void)events;
  if (T.at_prompt) rl_callback_read_char();
}

/* ---- completion ------------------------------------------------------------------------ */
typedef struct {
  char **v;
  size_t n;
} clist;

static void add_cand(void *ud, const char *w, size_t len) {
  clist *c = ud;
  char **v = realloc(c->v, (c->n + 2) * sizeof *v);
  if (!v) return;
  c->v = v;
  char *s = malloc(len + 1);
  if (!s) return;
  memcpy(s, w, len);
  s[len] = 0;
  c->v[c->n++] = s;
}

static char **complete(const char *text, int start, int end) {
  (void)text, (void)start;
  rl_attempted_completion_over = 1;
  clist c = {NULL, 0};
  T.b->complete(T.ud, rl_line_buffer, (size_t)end, add_cand, &c);
  if (c.n == 0) {
    free(c.v);
    return NULL;
  }
  char **m = malloc((c.n + 2) * sizeof *m);
  if (!m) return NULL;
  if (c.n == 1) {
    m[0] = c.v[0];
    m[1] = NULL;
    free(c.v);
    return m;
  }
  size_t lcp = strlen(c.v[0]);
  for (size_t i = 1; i < c.n; i++) {
    size_t k = 0;
    while (k < lcp && c.v[i][k] == c.v[0][k]) k++;
    lcp = k;
  }
  m[0] = strndup(c.v[0], lcp);
  for (size_t i = 0; i < c.n; i++) m[i + 1] = c.v[i];
  m[c.n + 1] = NULL;
  free(c.v);
  return m;
}

/* ---- Ctrl-C ---------------------------------------------------------------------------- */
static void on_sigint(int sig) {
  (void)sig;
  int saved = errno;
  T.sig_busy = !T.at_prompt && T.b->busy && T.b->busy(T.ud);
  T.sig_pending = 1;
  if (T.sig_busy && T.b->on_signal) T.b->on_signal(T.ud);
  uv_async_send(&T.async);
  errno = saved;
}

static void on_async(uv_async_t *a) {
  (void)a;
  if (!T.sig_pending) return;
  T.sig_pending = 0;
  if (T.sig_busy && T.b->busy && !T.b->busy(T.ud)) return; /* the line already stopped */
  if (T.tty && T.at_prompt) {
    /* at the prompt: drop what was typed */
    rl_callback_handler_remove();
    T.at_prompt = 0;
    uv_poll_stop(&T.poll);
    fputs("^C\n", stdout);
    fflush(stdout);
  } else if (T.tty) {
    fputs("\n", stdout);
    fflush(stdout);
  }
  T.b->interrupt(T.ud);
}

/* ---- plain input ------------------------------------------------------------------------- */
static void feed(uv_idle_t *i) {
  uv_idle_stop(i);
  if (!T.want_line) return;
  char *nl = T.len ? memchr(T.buf, '\n', T.len) : NULL;
  if (!nl && !T.input_eof) return; /* wait for more */
  if (!nl && T.len == 0) {
    eof();
    return;
  }
  size_t n = nl ? (size_t)(nl - T.buf) : T.len;
  char *line = malloc(n + 1);
  if (!line) return;
  memcpy(line, T.buf, n);
  line[n] = 0;
  size_t used = nl ? n + 1 : n;
  memmove(T.buf, T.buf + used, T.len - used);
  T.len -= used;
  T.want_line = 0;
  T.b->line(T.ud, line, n);
  free(line);
}

static void buf_add(const char *p, size_t n) {
  if (T.len + n > T.cap) {
    size_t cap = T.cap ? T.cap * 2 : 4096;
    while (cap < T.len + n) cap *= 2;
    char *nb = realloc(T.buf, cap);
    if (!nb) return;
    T.buf = nb;
    T.cap = cap;
  }
  memcpy(T.buf + T.len, p, n);
  T.len += n;
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h, (void)s;
  static char chunk[65536];
  *b = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  if (n < 0) {
    T.input_eof = 1;
    uv_read_stop(st);
  } else if (n > 0) {
    buf_add(b->base, (size_t)n);
  }
  if (T.want_line) uv_idle_start(&T.feed, feed);
}

static void read_file_all(void) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(0, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf_add(chunk, (size_t)n);
  }
  T.input_eof = 1;
}

/* ---- output --------------------------------------------------------------------------------- */
void tr__term_output(int kind, const char *text, size_t len) {
  if (!T.open) return;
  switch (kind) {
    case TR_REPL_OUT:
    case TR_REPL_ERR: {
      int red = T.tty && kind == TR_REPL_ERR;
      if (T.tty && T.at_prompt) fputs("\r\033[K", stdout);
      if (red) fputs("\033[31m", stdout);
      fwrite(text, 1, len, stdout);
      if (red) fputs("\033[0m", stdout);
      fputs("\n", stdout);
      fflush(stdout);
      if (T.tty && T.at_prompt) rl_forced_update_display();
      break;
    }
    case TR_REPL_PROMPT:
      if (T.eof_sent) break;
      if (T.tty) {
        show_prompt(text);
      } else {
        T.want_line = 1;
        uv_idle_start(&T.feed, feed);
      }
      break;
    case TR_REPL_BYE: eof(); break;
  }
}

int tr__term_open(uv_loop_t *loop, const tr_term_backend *b, void *ud) {
  memset(&T, 0, sizeof T);
  T.b = b;
  T.ud = ud;
  T.loop = loop;
  T.tty = isatty(0);
  uv_idle_init(loop, &T.feed);
  uv_async_init(loop, &T.async, on_async); /* ref'd: the terminal keeps the loop alive */
  if (T.tty) {
    if (uv_poll_init(loop, &T.poll, 0)) return TR_EINVAL;
    /* uv_poll_init made fd 0 non-blocking, and with it the terminal's stdout
     * (one open file): output to a busy terminal would be lost */
    int fl = fcntl(0, F_GETFL);
    if (fl != -1) fcntl(0, F_SETFL, fl & ~O_NONBLOCK);
    rl_readline_name = "troupe";
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = BREAKS;
    rl_completer_word_break_characters = (char *)BREAKS;
    rl_completion_append_character = '\0';
    using_history();
    stifle_history(1000);
    const char *home = getenv("HOME");
    if (home && *home) {
      snprintf(T.hist, sizeof T.hist, "%s/.troupe_history", home);
      read_history(T.hist);
    }
  } else {
    uv_handle_type t = uv_guess_handle(0);
    if (t == UV_NAMED_PIPE || t == UV_TCP) {
      uv_pipe_init(loop, &T.pipe, 0);
      if (uv_pipe_open(&T.pipe, 0) == 0) {
        T.use_pipe = 1;
        uv_read_start((uv_stream_t *)&T.pipe, on_alloc, on_read);
      } else {
        uv_close((uv_handle_t *)&T.pipe, NULL);
        read_file_all();
      }
    } else {
      read_file_all(); /* a regular file (or /dev/null) never blocks */
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &T.old_int);
  T.open = 1;
  return 0;
}

void tr__term_close(void) {
  if (!T.open) return;
  T.open = 0;
  sigaction(SIGINT, &T.old_int, NULL);
  if (T.tty) {
    if (T.at_prompt) rl_callback_handler_remove();
    T.at_prompt = 0;
    uv_close((uv_handle_t *)&T.poll, NULL);
  } else if (T.use_pipe) {
    uv_close((uv_handle_t *)&T.pipe, NULL);
  }
  uv_close((uv_handle_t *)&T.feed, NULL);
  uv_close((uv_handle_t *)&T.async, NULL);
  free(T.buf);
  T.buf = NULL;
  /* let the closes finish */
  uv_run(T.loop, UV_RUN_NOWAIT);
}
