/* pingpong_c: the pingpong workload with both actors written in C.
 *
 * A client C actor makes N calls to a server C actor with tr_call() and a
 * callback; the server answers with its integer argument + 1; the callback
 * checks the reply and issues the next call. The client answers the run call
 * (deferred through a token) when all N replies are checked.
 *
 *   pingpong_c [N]          (default N = 1,000,000; or env BENCH_N)
 * Prints "BENCH pingpong_c <rate> calls/s"; exits 1 on a wrong result. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <troupe.h>

/* ---- server: ping(i) -> i + 1 */
static int server_ping(tr_ctx *ctx, const tr_msg *args) {
  int64_t i;
  if (tr_msg_int(args, 0, &i)) return tr_ctx_error(ctx, TR_EBADVALUE, "ping needs an integer");
  return tr_pack_int(tr_ctx_reply(ctx), i + 1);
}

static const tr_method server_methods[] = {{"ping", server_ping}, {NULL, NULL}};
static const tr_behaviour server_behaviour = {.name = "Server", .methods = server_methods};

/* ---- client: init(server), run(n) -> n (deferred until every reply is checked) */
typedef struct {
  tr_addr self, server;
  int64_t n, i;      /* calls to make; the call in flight */
  tr_token token;    /* the run call's reply */
  tr_buf args;
  char error[160];
} client_state;

static void client_finish(tr_host *h, client_state *st) {
  tr_buf b;
  tr_buf_init(&b);
  if (st->error[0]) {
    tr_pack_str(&b, st->error);
    tr_token_fail(h, &st->token, &b);
  } else {
    tr_pack_int(&b, st->n);
    tr_token_reply(h, &st->token, &b);
  }
  tr_buf_free(&b);
  tr_buf_free(&st->args);
}

static void on_pong(tr_host *h, int status, const tr_msg *reply, void *ud);

static int client_next(tr_host *h, client_state *st) {
  tr_buf_reset(&st->args);
  tr_pack_int(&st->args, st->i);
  return tr_call(h, st->self, st->server, "ping", &st->args, TR_TIMEOUT_DEFAULT, on_pong, st);
}

static void on_pong(tr_host *h, int status, const tr_msg *reply, void *ud) {
  client_state *st = ud;
  int64_t v = 0;
  if (status != TR_OK || tr_msg_int(reply, 0, &v) || v != st->i + 1) {
    snprintf(st->error, sizeof st->error, "call %" PRId64 ": status %s, reply %" PRId64
             ", want %" PRId64, st->i, tr_errname(status), v, st->i + 1);
    client_finish(h, st);
    return;
  }
  if (st->i == st->n) {
    client_finish(h, st);
    return;
  }
  st->i++;
  int rc = client_next(h, st);
  if (rc) {
    snprintf(st->error, sizeof st->error, "tr_call %" PRId64 ": %s", st->i, tr_strerror(rc));
    client_finish(h, st);
  }
}

static int client_init(tr_ctx *ctx, const tr_msg *args) {
  client_state *st = tr_ctx_state(ctx);
  st->self = tr_ctx_self(ctx);
  tr_buf_init(&st->args);
  if (tr_msg_addr(args, 0, &st->server))
    return tr_ctx_error(ctx, TR_EBADVALUE, "the client needs the server's address");
  return 0;
}

static int client_run(tr_ctx *ctx, const tr_msg *args) {
  client_state *st = tr_ctx_state(ctx);
  if (tr_msg_int(args, 0, &st->n) || st->n < 1)
    return tr_ctx_error(ctx, TR_EBADVALUE, "run needs a positive count");
  int rc = tr_ctx_defer(ctx, &st->token);
  if (rc) return rc;
  st->i = 1;
  st->error[0] = 0;
  rc = client_next(tr_ctx_host(ctx), st);
  if (rc) {
    snprintf(st->error, sizeof st->error, "tr_call 1: %s", tr_strerror(rc));
    client_finish(tr_ctx_host(ctx), st);
  }
  return 0;
}

static const tr_method client_methods[] = {{"run", client_run}, {NULL, NULL}};
static const tr_behaviour client_behaviour = {.name = "Client",
                                              .state_size = sizeof(client_state),
                                              .init = client_init,
                                              .methods = client_methods};

/* ---- main */
typedef struct {
  int done, status;
  int64_t checked;
  uint64_t t_end;
  char text[256];
} result;

static void on_done(tr_host *h, int status, const tr_msg *reply, void *ud) {
  result *r = ud;
  r->t_end = uv_hrtime();
  r->done = 1;
  r->status = status;
  if (status == TR_OK) tr_msg_int(reply, 0, &r->checked);
  else tr_msg_format(reply, -1, r->text, sizeof r->text);
  tr_host_exit(h, 0);
}

int main(int argc, char **argv) {
  const char *arg = argc > 1 ? argv[1] : getenv("BENCH_N");
  int64_t n = arg ? strtoll(arg, NULL, 10) : 1000000;
  if (n < 1) {
    fprintf(stderr, "pingpong_c: N must be positive\n");
    return 2;
  }
  tr_host *h;
  int rc = tr_host_new(&h, NULL);
  if (rc) {
    fprintf(stderr, "pingpong_c: tr_host_new: %s\n", tr_strerror(rc));
    return 1;
  }
  tr_addr server, client;
  tr_buf args;
  tr_buf_init(&args);
  rc = tr_spawn(h, &server_behaviour, NULL, NULL, &server);
  if (rc == 0) rc = tr_pack_addr(&args, server);
  if (rc == 0) rc = tr_spawn(h, &client_behaviour, &args, NULL, &client);
  tr_buf_reset(&args);
  result r = {0};
  if (rc == 0) rc = tr_pack_int(&args, n);
  uint64_t t0 = uv_hrtime();
  if (rc == 0) rc = tr_call(h, TR_NOADDR, client, "run", &args, TR_TIMEOUT_INFINITE, on_done, &r);
  tr_buf_free(&args);
  if (rc) {
    fprintf(stderr, "pingpong_c: setup: %s\n", tr_strerror(rc));
    tr_host_free(h);
    return 1;
  }
  tr_host_run(h);
  tr_host_free(h);
  if (!r.done) {
    fprintf(stderr, "CHECK FAILED: pingpong_c: the run call was never answered\n");
    return 1;
  }
  if (r.status != TR_OK || r.checked != n) {
    fprintf(stderr, "CHECK FAILED: pingpong_c: %s %s (checked %" PRId64 " of %" PRId64 ")\n",
            tr_errname(r.status), r.text, r.checked, n);
    return 1;
  }
  double secs = (double)(r.t_end - t0) / 1e9;
  if (secs <= 0) secs = 1e-9;
  printf("BENCH pingpong_c %.0f calls/s\n", (double)n / secs);
  return 0;
}
