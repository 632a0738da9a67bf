/* An out-of-tree program built against an installed troupe: a C actor and a
 * Lua actor on one host, called from C, and the Lua actor calling the C one.
 * Prints one line per answer; exits 0 only if every answer is right. */
#include <stdio.h>
#include <string.h>
#include <troupe.h>

static int add(tr_ctx *ctx, const tr_msg *args) {
  int64_t a, b;
  if (tr_msg_int(args, 0, &a) || tr_msg_int(args, 1, &b))
    return tr_ctx_error(ctx, TR_EBADVALUE, "add needs two integers");
  return tr_pack_int(tr_ctx_reply(ctx), a + b);
}

static const tr_method adder_methods[] = {{"add", add}, {NULL, NULL}};
static const tr_behaviour adder = {.name = "Adder", .methods = adder_methods};

static const char *lua_code =
    "return {\n"
    "  init = function(self, adder) self.adder = adder end,\n"
    "  greet = function(self, who) return 'hello, ' .. who end,\n"
    "  sum3 = function(self, a, b, c)\n"
    "    return self.adder:call('add', self.adder:call('add', a, b), c)\n"
    "  end,\n"
    "}\n";

static int good;

static void on_reply(tr_host *h, int status, const tr_msg *reply, void *ud) {
  const char *want = ud;
  char text[128];
  tr_msg_format(reply, -1, text, sizeof text);
  printf("%s %s\n", tr_errname(status), text);
  if (status == TR_OK && strcmp(text, want) == 0) good++;
}

int main(void) {
  tr_host *h;
  if (tr_host_new(&h, NULL) != TR_OK) return 1;
  tr_addr c, l;
  tr_buf args;
  tr_buf_init(&args);
  int rc = tr_spawn(h, &adder, NULL, NULL, &c);
  tr_pack_addr(&args, c);
  if (rc == 0) rc = tr_spawn_lua_string(h, lua_code, "=Greeter", &args, NULL, &l);
  tr_buf_free(&args);
  if (rc) {
    fprintf(stderr, "spawn: %s\n", tr_strerror(rc));
    return 1;
  }
  tr_call_fmt(h, TR_NOADDR, c, "add", on_reply, "5", "ii", 2, 3);
  tr_call_fmt(h, TR_NOADDR, l, "greet", on_reply, "\"hello, world\"", "s", "world");
  tr_call_fmt(h, TR_NOADDR, l, "sum3", on_reply, "60", "iii", 10, 20, 30);
  tr_host_run(h);
  tr_host_free(h);
  printf("troupe %s: %d of 3\n", TROUPE_VERSION_STRING, good);
  return good == 3 ? 0 : 1;
}
