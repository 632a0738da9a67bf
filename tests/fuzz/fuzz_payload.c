/* libFuzzer harness: arbitrary bytes as a message payload, fed to both
 * payload decoders — the C reader (every tr_msg_* accessor and
 * tr_msg_format) and the Lua decoder (the values a Lua handler would get).
 * Built by tests/fuzz/CMakeLists.txt (-DTROUPE_FUZZ=ON, clang); run with
 * scripts/fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "troupe.h"

static tr_host *host;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (tr_host_new(&host, NULL)) abort();
  return 0;
}

static void read_all(const tr_msg *m) {
  static const char *keys[] = {"reason", "a", "", "code"};
  int n = tr_msg_count(m);
  if (n < 0 || (size_t)n > m->len) abort(); /* (every value takes a byte at least) */
  for (int i = -1; i <= n; i++) {
    tr_type t = tr_msg_type(m, i);
    if ((i < 0 || i == n) && t != TR_T_NONE) abort();
    int64_t iv;
    double d;
    int b;
    const char *p;
    size_t len;
    tr_addr a;
    int ri = tr_msg_int(m, i, &iv);
    int rn = tr_msg_num(m, i, &d);
    tr_msg_bool(m, i, &b);
    if (tr_msg_str(m, i, &p, &len) == 0 && len) {
      volatile char c = p[0];
      c = p[len - 1];
      (void)c;
    }
    tr_msg_addr(m, i, &a);
    if ((t == TR_T_INT) != (ri == 0)) abort();
    if ((t == TR_T_INT || t == TR_T_FLOAT) != (rn == 0)) abort();
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
      tr_msg_field_int(m, i, keys[k], &iv);
      if (tr_msg_field_str(m, i, keys[k], &p, &len) == 0 && len) {
        volatile char c = p[len - 1];
        (void)c;
      }
    }
    /* formatting: no buffer, tiny buffers, a big one; the length it wants
     * must not depend on the room it got */
    char small[8], big[4096];
    size_t w0 = tr_msg_format(m, i, NULL, 0);
    size_t w1 = tr_msg_format(m, i, small, 1);
    size_t w8 = tr_msg_format(m, i, small, sizeof small);
    size_t wb = tr_msg_format(m, i, big, sizeof big);
    if (w0 != w1 || w1 != w8 || w8 != wb) abort();
    if (strlen(small) >= sizeof small || strlen(big) >= sizeof big) abort();
    if (wb < sizeof big && strlen(big) != wb) abort();
  }
  size_t blen;
  const char *bytes = tr_msg_bytes(m, &blen);
  (void)bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the C reader: a fresh reader per payload, as a C handler gets */
  tr_msg m;
  tr__msg_init(&m, (const char *)data, size);
  read_all(&m);
  int n = tr_msg_count(&m);
  tr__msg_done(&m);
  /* the Lua decoder */
  int ln = tr__lua_decode_payload(host, (const char *)data, size);
  /* what the Lua decoder accepts, the C reader reads as as many values (the
   * C reader also takes what Lua refuses: an unknown extension type) */
  if (ln >= 0 && n != ln) abort();
  return 0;
}
