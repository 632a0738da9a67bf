/* The control socket: a Unix socket (owner-only) on which `troupe attach`
 * gets a REPL session against a running host. The line protocol is in
 * control.h; each connection owns one tr_repl session. */
#include "control.h"
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define OUT_HIGH_WATER (8u << 20) /* drop output lines beyond this much unsent */

/* ---- the parser ----------------------------------------------------------------------- */
int tr__control_parse(const char *line, size_t len, tr_ctl_req *out) {
  static const struct {
    const char *name;
    int verb, has_arg;
  } verbs[] = {{"LINE", TR_CTL_LINE, 1},           {"COMPLETE", TR_CTL_COMPLETE, 1},
               {"INTERRUPT", TR_CTL_INTERRUPT, 0}, {"PING", TR_CTL_PING, 0},
               {"QUIT", TR_CTL_QUIT, 0}};
  memset(out, 0, sizeof *out);
  if (!line) {
    snprintf(out->err, sizeof out->err, "no line");
    return TR_EINVAL;
  }
  if (len > TR_CTL_MAX_LINE) {
    snprintf(out->err, sizeof out->err, "line too long (%zu bytes, at most %u)", len,
             (unsigned)TR_CTL_MAX_LINE);
    return TR_EINVAL;
  }
  if (memchr(line, 0, len)) {
    snprintf(out->err, sizeof out->err, "NUL byte in the line");
    return TR_EINVAL;
  }
  size_t v = 0;
  while (v < len && line[v] != ' ') v++;
  if (v == 0) {
    snprintf(out->err, sizeof out->err, "empty request (want LINE, COMPLETE, INTERRUPT, PING, QUIT)");
    return TR_EINVAL;
  }
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
    if (strlen(verbs[i].name) != v || memcmp(verbs[i].name, line, v) != 0) continue;
    out->verb = verbs[i].verb;
    if (v == len) { /* no argument */
      out->arg = line + len;
      out->arg_len = 0;
      return 0;
    }
    if (!verbs[i].has_arg) {
      out->verb = 0;
      snprintf(out->err, sizeof out->err, "%s takes no argument", verbs[i].name);
      return TR_EINVAL;
    }
    out->arg = line + v + 1;
    out->arg_len = len - v - 1;
    return 0;
  }
  char shown[24];
  size_t n = v < 16 ? v : 16;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)line[i];
    shown[i] = (c >= 32 && c < 127) ? (char)c : '?';
  }
  shown[n] = 0;
  snprintf(out->err, sizeof out->err, "unknown request '%s%s'", shown, v > 16 ? "..." : "");
  return TR_EINVAL;
}

/* ---- server and connections ----------------------------------------------------------------- */
typedef struct tr_ctl_conn tr_ctl_conn;

typedef struct tr_ctl_server {
  uv_pipe_t pipe;
  tr_host *h;
  char *path;
  struct tr_ctl_server *next;
  tr_ctl_conn *conns;
} tr_ctl_server;

struct tr_ctl_conn {
  uv_pipe_t pipe;
  tr_ctl_server *srv;
  tr_host *h;
  tr_repl *r;
  char *buf;
  size_t len;
  int closing; /* 2: close after the current request */
  int quiet;   /* no more output */
  int closed;  /* uv_close called */
  int quit_pending; /* QUIT came while a line ran: BYE at the next prompt */
  size_t dropped;
  tr_ctl_conn *next;
};

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
  char data[];
} wreq;

static void on_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void conn_shutdown(tr_ctl_conn *c);

static void send_raw(tr_ctl_conn *c, const char *tag, const char *text, size_t len) {
  if (c->quiet || c->closed) return;
  if (c->pipe.write_queue_size > 2 * OUT_HIGH_WATER) {
    /* replies to its requests (PONG, COMPLETE, ERR) pile up too: let it go */
    tr__log(c->h, "control: dropped a client that does not read its replies");
    conn_shutdown(c);
    return;
  }
  size_t tl = strlen(tag);
  wreq *w = malloc(sizeof *w + tl + 1 + len + 1);
  if (!w) return;
  memcpy(w->data, tag, tl);
  size_t n = tl;
  if (len || strcmp(tag, "LINE") == 0) w->data[n++] = ' ';
  memcpy(w->data + n, text, len);
  n += len;
  w->data[n++] = '\n';
  w->buf = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &w->buf, 1, on_written)) free(w);
}

static void conn_out(void *ud, int kind, const char *text, size_t len);
static void on_shutdown(uv_shutdown_t *sh, int status);

/* From inside the session's output: no more input or output; the session
 * is freed when the last lines are out (not now: its code is running). */
static void conn_shutdown(tr_ctl_conn *c) {
  c->quiet = 1;
  uv_read_stop((uv_stream_t *)&c->pipe);
  uv_shutdown_t *sh = malloc(sizeof *sh);
  if (!sh || uv_shutdown(sh, (uv_stream_t *)&c->pipe, on_shutdown)) free(sh);
}

static void conn_close_cb(uv_handle_t *hd) {
  tr_ctl_conn *c = hd->data;
  free(c->buf);
  free(c);
}

static void conn_close(tr_ctl_conn *c) {
  if (c->closed) return;
  c->closed = c->quiet = 1;
  if (c->srv) {
    for (tr_ctl_conn **pp = &c->srv->conns; *pp; pp = &(*pp)->next)
      if (*pp == c) {
        *pp = c->next;
        break;
      }
    c->srv = NULL;
  }
  tr_repl *r = c->r;
  c->r = NULL;
  if (r) tr__repl_free(r); /* kills only the session's own actor */
  uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
}

static void conn_out(void *ud, int kind, const char *text, size_t len) {
  tr_ctl_conn *c = ud;
  if (c->quiet || c->closed) return;
  switch (kind) {
    case TR_REPL_OUT:
    case TR_REPL_ERR:
      if (c->pipe.write_queue_size > OUT_HIGH_WATER) { /* a client that does not read */
        c->dropped++;
        return;
      }
      if (c->dropped) {
        char note[96];
        int n = snprintf(note, sizeof note, "(%zu lines dropped: the client was not reading)",
                         c->dropped);
        c->dropped = 0;
        send_raw(c, "ERR", note, (size_t)n);
      }
      send_raw(c, kind == TR_REPL_OUT ? "OUT" : "ERR", text, len);
      break;
    case TR_REPL_PROMPT:
      if (c->quit_pending) {
        c->quit_pending = 0;
        send_raw(c, "BYE", "", 0);
        conn_shutdown(c);
        break;
      }
      send_raw(c, "PROMPT", text, len);
      break;
    case TR_REPL_BYE: /* :quit, maybe run from a queued line, outside on_read */
      send_raw(c, "BYE", "", 0);
      conn_shutdown(c);
      break;
  }
}

typedef struct {
  tr_ctl_conn *c;
  int n;
  char **words;
  size_t *lens;
} cands;

static void add_cand(void *ud, const char *w, size_t len) {
  cands *k = ud;
  char **ws = realloc(k->words, (size_t)(k->n + 1) * sizeof *ws);
  if (!ws) return;
  k->words = ws;
  size_t *ls = realloc(k->lens, (size_t)(k->n + 1) * sizeof *ls);
  if (!ls) return;
  k->lens = ls;
  char *copy = malloc(len + 1);
  if (!copy) return;
  memcpy(copy, w, len);
  copy[len] = 0;
  for (size_t i = 0; i < len; i++)
    if (copy[i] == '\n') copy[i] = ' ';
  ws[k->n] = copy;
  ls[k->n] = len;
  k->n++;
}

static void handle_line(tr_ctl_conn *c, const char *line, size_t len) {
  tr_ctl_req q;
  if (tr__control_parse(line, len, &q)) {
    char msg[160];
    int n = snprintf(msg, sizeof msg, "protocol: %s", q.err);
    send_raw(c, "ERR", msg, (size_t)n);
    return;
  }
  switch (q.verb) {
    case TR_CTL_LINE: {
      int rc = tr__repl_input(c->r, q.arg, q.arg_len);
      if (rc == TR_EFULL) send_raw(c, "ERR", "busy: too many lines typed ahead (dropped)", 42);
      break;
    }
    case TR_CTL_COMPLETE: {
      cands k = {c, 0, NULL, NULL};
      tr__repl_complete(c->r, q.arg, q.arg_len, add_cand, &k);
      char num[32];
      int n = snprintf(num, sizeof num, "%d", k.n);
      send_raw(c, "COMPLETE", num, (size_t)n);
      for (int i = 0; i < k.n; i++) {
        send_raw(c, "CAND", k.words[i], k.lens[i]);
        free(k.words[i]);
      }
      free(k.words);
      free(k.lens);
      break;
    }
    case TR_CTL_INTERRUPT: tr__repl_interrupt(c->r); break;
    case TR_CTL_PING: send_raw(c, "PONG", "", 0); break;
    case TR_CTL_QUIT: /* after the running and queued lines */
      if (tr__repl_busy(c->r)) {
        c->quit_pending = 1;
      } else {
        send_raw(c, "BYE", "", 0);
        c->closing = 2;
      }
      break;
  }
}

static void on_shutdown(uv_shutdown_t *sh, int status) {
  (void)status;
  tr_ctl_conn *c = sh->handle->data;
  free(sh);
  conn_close(c);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  (void)hd;
  (void)suggested;
  buf->base = malloc(65536);
  buf->len = buf->base ? 65536 : 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  tr_ctl_conn *c = st->data;
  tr_sched *s = &c->h->sched[0];
  if (nread < 0) { /* EOF, reset: the client went away; the host carries on */
    free(buf->base);
    conn_close(c);
    return;
  }
  s->in_callback++;
  size_t off = 0;
  while (off < (size_t)nread && !c->closing && !c->quiet) {
    const char *nl = memchr(buf->base + off, '\n', (size_t)nread - off);
    size_t n = nl ? (size_t)(nl - (buf->base + off)) : (size_t)nread - off;
    if (c->len + n > TR_CTL_MAX_LINE) {
      send_raw(c, "ERR", "protocol: line too long; closing", 32);
      c->closing = 2;
      break;
    }
    if (n) {
      char *nb = realloc(c->buf, c->len + n + 1);
      if (!nb) {
        c->closing = 2;
        break;
      }
      c->buf = nb;
      memcpy(c->buf + c->len, buf->base + off, n);
      c->len += n;
    }
    off += n;
    if (nl) {
      off++;
      size_t ll = c->len;
      c->len = 0;
      handle_line(c, c->buf ? c->buf : "", ll);
    }
  }
  free(buf->base);
  if (c->closing == 2 && !c->closed) {
    /* let the last lines go out, then close */
    c->closing = 1;
    c->quiet = 1;
    uv_read_stop(st);
    tr_repl *r = c->r;
    c->r = NULL;
    if (r) tr__repl_free(r);
    uv_shutdown_t *sh = malloc(sizeof *sh);
    if (!sh || uv_shutdown(sh, st, on_shutdown)) {
      free(sh);
      conn_close(c);
    }
  }
  s->in_callback--;
}

static void refuse(int fd, const char *why) {
  char msg[200];
  int n = snprintf(msg, sizeof msg, "ERR refused: %s\n", why);
  ssize_t w = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)w;
}

static void on_connection(uv_stream_t *server, int status) {
  tr_ctl_server *srv = server->data;
  if (status < 0) return;
  tr_ctl_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->h = srv->h;
  uv_pipe_init(srv->h->loop, &c->pipe, 0);
  c->pipe.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
    uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
    return;
  }
  int fd = -1;
  struct ucred cr;
  socklen_t cl = sizeof cr;
  uv_fileno((uv_handle_t *)&c->pipe, &fd);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 || cr.uid != geteuid()) {
    if (fd >= 0) refuse(fd, "the control socket only accepts its owner's connections");
    tr__log(srv->h, "control %s: refused a connection from uid %ld", srv->path,
            fd >= 0 && cl == sizeof cr ? (long)cr.uid : -1L);
    c->closed = 1;
    uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
    return;
  }
  if (tr__repl_new(srv->h, conn_out, c, &c->r)) {
    refuse(fd, "cannot start a REPL session");
    c->closed = 1;
    uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
    return;
  }
  c->srv = srv;
  c->next = srv->conns;
  srv->conns = c;
  char hello[64];
  int n = snprintf(hello, sizeof hello, "1 %s", TROUPE_VERSION_STRING);
  send_raw(c, "TROUPE", hello, (size_t)n);
  uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
  tr__repl_start(c->r);
}

static void server_close_cb(uv_handle_t *hd) {
  tr_ctl_server *srv = hd->data;
  free(srv->path);
  free(srv);
}

void tr__control_close_all(tr_host *h) {
  tr_repl_host *rh = h->repl;
  if (!rh) return;
  while (rh->servers) {
    tr_ctl_server *srv = rh->servers;
    rh->servers = srv->next;
    while (srv->conns) conn_close(srv->conns);
    unlink(srv->path);
    uv_close((uv_handle_t *)&srv->pipe, server_close_cb);
  }
}

/* The directory must be the user's and closed to others; a missing last
 * component is created (0700). */
static int check_dir(tr_host *h, const char *path) {
  char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno != ENOENT || mkdir(dir, 0700) != 0 || stat(dir, &st) != 0) {
      tr__log(h, "control: cannot create the directory %s: %s", dir, strerror(errno));
      return TR_ENOTFOUND;
    }
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
    tr__log(h, "control: %s must be a directory you own that others cannot write "
               "(e.g. mkdir -m 700)", dir);
    return TR_EINVAL;
  }
  return 0;
}

/* An existing file at path: a stale socket is removed; anything else stays. */
static int clear_stale(tr_host *h, const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return 0;
  if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
    tr__log(h, "control: %s exists and is not a socket of yours", path);
    return TR_EEXISTS;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return TR_ENOMEM;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  int err = errno;
  close(fd);
  if (rc == 0) {
    tr__log(h, "control: %s is in use by a running host", path);
    return TR_EEXISTS;
  }
  if (err == ECONNREFUSED) unlink(path);
  return 0;
}

int tr_control_listen(tr_host *h, const char *path) {
  if (!h || !path || !*path) return TR_EINVAL;
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    tr__log(h, "control: path too long: %s", path);
    return TR_EINVAL;
  }
  tr_repl_host *rh = tr__repl_host(h);
  if (!rh) return TR_ELOAD;
  int rc = check_dir(h, path);
  if (rc == 0) rc = clear_stale(h, path);
  if (rc) return rc;
  /* a client that goes away mid-write must not kill the host */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  tr_ctl_server *srv = calloc(1, sizeof *srv);
  if (!srv) return TR_ENOMEM;
  srv->h = h;
  srv->path = strdup(path);
  uv_pipe_init(h->loop, &srv->pipe, 0);
  srv->pipe.data = srv;
  mode_t old = umask(0177); /* the socket is created 0600 */
  int e = uv_pipe_bind(&srv->pipe, path);
  umask(old);
  if (e == 0) {
    chmod(path, 0600);
    e = uv_listen((uv_stream_t *)&srv->pipe, 64, on_connection);
  }
  if (e) {
    tr__log(h, "control: cannot listen on %s: %s", path, uv_strerror(e));
    uv_close((uv_handle_t *)&srv->pipe, server_close_cb);
    return e == UV_EADDRINUSE ? TR_EEXISTS : TR_EINVAL;
  }
  srv->next = rh->servers;
  rh->servers = srv;
  return 0;
}
