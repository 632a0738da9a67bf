/* Embedding troupe in a C program that owns its uv loop: a C actor and a Lua
 * actor call each other, then everything is stopped and freed.
 *
 *   Greeter (C):  greet(name)  -> "hello, <name>"
 *                 ask(relay)   -> calls the Lua actor's shout("C"), answers later
 *   Relay (Lua):  shout(name)  -> calls Greeter's greet(name), upper-cases it */
#include <stdio.h>
#include <string.h>
#include <troupe.h>

typedef struct {
  tr_addr greeter;
  int answers;
} app;

static int greet(tr_ctx *ctx, const tr_msg *args) {
  const char *name;
  size_t len;
  if (tr_msg_str(args, 0, &name, &len))
    return tr_ctx_error(ctx, TR_EBADVALUE, "greet needs a name");
  char out[128];
  snprintf(out, sizeof out, "hello, %.*s", (int)len, name);
  return tr_pack_str(tr_ctx_reply(ctx), out);
}

/* ask(relay): defer our reply until the Lua actor has answered us. */
typedef struct {
  tr_token token;
} ask_state;

static void on_shout(tr_host *h, int status, const tr_msg *reply, void *ud) {
  tr_token *tok = ud;
  tr_buf b;
  tr_buf_init(&b);
  const char *s;
  size_t len;
  if (status == TR_OK && tr_msg_str(reply, 0, &s, &len) == 0) {
    tr_pack_lstr(&b, s, len);
    tr_token_reply(h, tok, &b);
  } else {
    tr_pack_str(&b, tr_errname(status));
    tr_token_fail(h, tok, &b);
  }
  tr_buf_free(&b);
}

static int ask(tr_ctx *ctx, const tr_msg *args) {
  ask_state *st = tr_ctx_state(ctx);
  tr_addr relay;
  if (tr_msg_addr(args, 0, &relay)) return tr_ctx_error(ctx, TR_EBADVALUE, "ask needs an address");
  int rc = tr_ctx_defer(ctx, &st->token);
  if (rc) return rc;
  return tr_call_fmt(tr_ctx_host(ctx), tr_ctx_self(ctx), relay, "shout", on_shout, &st->token,
                     "s", "C");
}

static const tr_method greeter_methods[] = {{"greet", greet}, {"ask", ask}, {NULL, NULL}};
static const tr_behaviour greeter = {
    .name = "Greeter", .state_size = sizeof(ask_state), .methods = greeter_methods};

static const char *relay_code =
    "return {\n"
    "  _NAME = 'Relay',\n"
    "  init = function(self, greeter) self.greeter = greeter end,\n"
    "  shout = function(self, name)\n"
    "    return string.upper(self.greeter:call('greet', name))\n"
    "  end,\n"
    "}\n";

static void print_reply(tr_host *h, int status, const tr_msg *reply, void *ud) {
  app *a = ud;
  char text[256];
  tr_msg_format(reply, -1, text, sizeof text);
  printf("%s: %s %s\n", status == TR_OK ? "reply" : "error", tr_errname(status), text);
  a->answers++;
}

int main(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  tr_host_options opts;
  tr_host_options_init(&opts);
  opts.loop = &loop; /* run the host on the program's own loop */
  tr_host *h;
  int rc = tr_host_new(&h, &opts);
  if (rc) {
    fprintf(stderr, "tr_host_new: %s\n", tr_strerror(rc));
    return 1;
  }
  app a = {0};
  tr_buf args;
  tr_buf_init(&args);
  rc = tr_spawn(h, &greeter, NULL, NULL, &a.greeter);
  tr_addr relay;
  tr_pack_addr(&args, a.greeter);
  if (rc == 0) rc = tr_spawn_lua_string(h, relay_code, "=relay", &args, NULL, &relay);
  tr_buf_free(&args);
  if (rc) {
    fprintf(stderr, "spawn: %s\n", tr_strerror(rc));
    tr_host_free(h);
    return 1;
  }
  /* C (outside any actor) -> Lua -> C */
  tr_call_fmt(h, TR_NOADDR, relay, "shout", print_reply, &a, "s", "embedder");
  /* C -> C actor -> Lua actor -> C actor (deferred reply) */
  tr_call_fmt(h, TR_NOADDR, a.greeter, "ask", print_reply, &a, "a", relay);
  /* an unknown method is a clean error */
  tr_call_fmt(h, TR_NOADDR, relay, "nope", print_reply, &a, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("%d answers\n", a.answers);
  tr_host_free(h);
  rc = uv_loop_close(&loop);
  if (rc) fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(rc));
  return a.answers == 3 && rc == 0 ? 0 : 1;
}
