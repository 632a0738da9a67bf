/* `troupe attach PATH`: the REPL against a running host, through its control
 * socket (protocol in control.h). The terminal is the same as `troupe repl`
 * (term.c); lines go to the host, its output comes back. `--raw` passes
 * stdin to the socket as it is and prints what comes back (for scripts and
 * for testing the protocol). */
#include "control.h"
#include "term.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct {
  int fd;
  uv_loop_t *loop;
  uv_poll_t poll;
  char *buf;
  size_t len, cap;
  int busy, done, exit_code, quitting;
  /* a completion being collected */
  int in_complete, want, got;
  tr_repl_cand_fn add;
  void *add_ud;
} A;

static int connect_to(const char *path) {
  struct sockaddr_un sa;
  if (strlen(path) >= sizeof sa.sun_path) {
    fprintf(stderr, "troupe attach: path too long: %s\n", path);
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "troupe attach: cannot connect to %s: %s\n", path, strerror(errno));
    close(fd);
    return -1;
  }
  struct ucred cr;
  socklen_t cl = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 || cr.uid != geteuid()) {
    fprintf(stderr, "troupe attach: %s belongs to another user; not attaching\n", path);
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(const char *p, size_t n) {
  while (n) {
    ssize_t w = send(A.fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void send_req(const char *verb, const char *arg, size_t len) {
  size_t vl = strlen(verb);
  char *m = malloc(vl + len + 2);
  if (!m) return;
  memcpy(m, verb, vl);
  size_t n = vl;
  if (arg) {
    m[n++] = ' ';
    for (size_t i = 0; i < len; i++) m[n++] = arg[i] == '\n' ? ' ' : arg[i];
  }
  m[n++] = '\n';
  if (send_all(m, n)) A.done = 1;
  free(m);
}

/* One line from the host. */
static void dispatch(const char *l, size_t n) {
  const char *sp = memchr(l, ' ', n);
  size_t vl = sp ? (size_t)(sp - l) : n;
  const char *arg = sp ? sp + 1 : l + n;
  size_t al = sp ? n - vl - 1 : 0;
#define IS(v) (vl == strlen(v) && memcmp(l, v, vl) == 0)
  if (IS("OUT")) tr__term_output(TR_REPL_OUT, arg, al);
  else if (IS("ERR")) tr__term_output(TR_REPL_ERR, arg, al);
  else if (IS("PROMPT")) {
    A.busy = 0;
    char p[64];
    snprintf(p, sizeof p, "%.*s", (int)(al < 60 ? al : 60), arg);
    tr__term_output(TR_REPL_PROMPT, p, strlen(p));
  } else if (IS("COMPLETE")) {
    A.want = atoi(arg);
    A.got = 0;
    if (A.want <= 0) A.in_complete = 0;
  } else if (IS("CAND")) {
    if (A.in_complete && A.add) A.add(A.add_ud, arg, al);
    if (++A.got >= A.want) A.in_complete = 0;
  } else if (IS("BYE")) {
    A.done = 1;
  }
#undef IS
}

/* Reads what is there; dispatches whole lines. 0, or -1 at EOF. */
static int pump(void) {
  char chunk[65536];
  ssize_t n = recv(A.fd, chunk, sizeof chunk, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (n <= 0) return -1;
  if (A.len + (size_t)n > A.cap) {
    size_t cap = A.cap ? A.cap * 2 : 65536;
    while (cap < A.len + (size_t)n) cap *= 2;
    char *nb = realloc(A.buf, cap);
    if (!nb) return -1;
    A.buf = nb;
    A.cap = cap;
  }
  memcpy(A.buf + A.len, chunk, (size_t)n);
  A.len += (size_t)n;
  size_t off = 0;
  for (;;) {
    char *nl = memchr(A.buf + off, '\n', A.len - off);
    if (!nl) break;
    dispatch(A.buf + off, (size_t)(nl - (A.buf + off)));
    off = (size_t)(nl - A.buf) + 1;
  }
  memmove(A.buf, A.buf + off, A.len - off);
  A.len -= off;
  return 0;
}

static void finish(int code) {
  if (A.done == 2) return;
  A.done = 2;
  A.exit_code = code;
  uv_poll_stop(&A.poll);
  uv_stop(A.loop);
}

static void on_sock(uv_poll_t *p, int status, int events) {
  (void)p, (void)events;
  if (status < 0 || pump() < 0) {
    if (!A.quitting) {
      tr__term_output(TR_REPL_ERR, "the host closed the connection", 30);
      finish(1);
    } else {
      finish(0);
    }
    return;
  }
  if (A.done == 1) finish(0);
}

static void b_line(void *ud, const char *line, size_t len) {
  (void)ud;
  A.busy = 1;
  send_req("LINE", line, len);
}

static void b_eof(void *ud) {
  (void)ud;
  A.quitting = 1;
  send_req("QUIT", NULL, 0);
  finish(0);
}

static void b_interrupt(void *ud) {
  (void)ud;
  send_req("INTERRUPT", NULL, 0);
}

static int b_busy(void *ud) {
  (void)ud;
  return A.busy;
}

static void b_complete(void *ud, const char *text, size_t len, tr_repl_cand_fn add, void *cud) {
  (void)ud;
  A.in_complete = 1;
  A.want = -1;
  A.add = add;
  A.add_ud = cud;
  send_req("COMPLETE", text, len);
  uint64_t start = uv_hrtime();
  while (A.in_complete && uv_hrtime() - start < 3000000000ull) {
    struct pollfd pf = {A.fd, POLLIN, 0};
    int n = poll(&pf, 1, 200);
    if (n > 0 && pump() < 0) break;
  }
  A.in_complete = 0;
  A.add = NULL;
}

static const tr_term_backend backend = {b_line, b_eof, b_interrupt, b_busy, b_complete, NULL};

/* --raw: stdin to the socket as it is; everything that comes back to stdout. */
static int raw_mode(void) {
  char chunk[65536];
  int in_open = 1;
  uint64_t idle_since = uv_hrtime();
  for (;;) {
    struct pollfd pf[2] = {{A.fd, POLLIN, 0}, {0, POLLIN, 0}};
    int n = poll(pf, in_open ? 2 : 1, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0 && (pf[0].revents & (POLLIN | POLLHUP))) {
      ssize_t r = recv(A.fd, chunk, sizeof chunk, 0);
      if (r <= 0) return 0;
      fwrite(chunk, 1, (size_t)r, stdout);
      fflush(stdout);
      idle_since = uv_hrtime();
    }
    if (in_open && n > 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
      ssize_t r = read(0, chunk, sizeof chunk);
      if (r <= 0) {
        in_open = 0;
        idle_since = uv_hrtime();
      } else if (send_all(chunk, (size_t)r)) {
        return 1;
      }
    }
    /* input over and the host quiet for a while: done */
    if (!in_open && uv_hrtime() - idle_since > 1500000000ull) return 0;
  }
}

int tr__attach_main(const char *path, int raw) {
  signal(SIGPIPE, SIG_IGN);
  memset(&A, 0, sizeof A);
  A.fd = connect_to(path);
  if (A.fd < 0) return 1;
  if (raw) {
    int rc = raw_mode();
    close(A.fd);
    return rc;
  }
  /* the greeting (or a refusal) */
  char line[512];
  size_t n = 0;
  while (n < sizeof line - 1) {
    struct pollfd pf = {A.fd, POLLIN, 0};
    if (poll(&pf, 1, 5000) <= 0) break;
    ssize_t r = recv(A.fd, line + n, 1, 0);
    if (r <= 0) break;
    if (line[n] == '\n') break;
    n++;
  }
  line[n] = 0;
  if (strncmp(line, "TROUPE 1 ", 9) != 0) {
    fprintf(stderr, "troupe attach: %s\n", n ? line : "no answer from the host");
    close(A.fd);
    return 1;
  }
  A.loop = uv_default_loop();
  if (tr__term_open(A.loop, &backend, NULL)) {
    close(A.fd);
    return 1;
  }
  if (tr__term_is_tty()) {
    printf("attached to %s (troupe %s); :help for commands, Ctrl-D to detach\n", path, line + 9);
    fflush(stdout);
  }
  uv_poll_init(A.loop, &A.poll, A.fd);
  int fl = fcntl(A.fd, F_GETFL); /* writes stay blocking; reads use MSG_DONTWAIT */
  if (fl != -1) fcntl(A.fd, F_SETFL, fl & ~O_NONBLOCK);
  uv_poll_start(&A.poll, UV_READABLE, on_sock);
  A.busy = 1; /* until the first PROMPT */
  pump();
  if (A.done != 2) uv_run(A.loop, UV_RUN_DEFAULT);
  tr__term_close();
  uv_close((uv_handle_t *)&A.poll, NULL);
  uv_run(A.loop, UV_RUN_NOWAIT);
  close(A.fd);
  free(A.buf);
  return A.exit_code;
}
