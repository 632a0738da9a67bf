/* The control socket's line parser (tr__control_parse): every verb, and the
 * malformed lines it must reject without reading past the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "control.h"
#include "troupe.h"

static int parse(const char *s, tr_ctl_req *q) { return tr__control_parse(s, strlen(s), q); }

static void verbs(void **st) {
  (void)st;
  tr_ctl_req q;
  assert_int_equal(parse("LINE acct:call(\"withdraw\", 20)", &q), 0);
  assert_int_equal(q.verb, TR_CTL_LINE);
  assert_int_equal(q.arg_len, strlen("acct:call(\"withdraw\", 20)"));
  assert_memory_equal(q.arg, "acct:call", 9);
  assert_int_equal(parse("LINE", &q), 0);
  assert_int_equal(q.verb, TR_CTL_LINE);
  assert_int_equal(q.arg_len, 0);
  assert_int_equal(parse("LINE ", &q), 0);
  assert_int_equal(q.arg_len, 0);
  assert_int_equal(parse("COMPLETE ac", &q), 0);
  assert_int_equal(q.verb, TR_CTL_COMPLETE);
  assert_int_equal(parse("INTERRUPT", &q), 0);
  assert_int_equal(q.verb, TR_CTL_INTERRUPT);
  assert_int_equal(parse("PING", &q), 0);
  assert_int_equal(parse("QUIT", &q), 0);
  assert_int_equal(q.verb, TR_CTL_QUIT);
}

static void malformed(void **st) {
  (void)st;
  tr_ctl_req q;
  assert_int_equal(parse("", &q), TR_EINVAL);
  assert_int_equal(parse(" LINE x", &q), TR_EINVAL);
  assert_int_equal(parse("line x", &q), TR_EINVAL);
  assert_int_equal(parse("BOGUS", &q), TR_EINVAL);
  assert_non_null(strstr(q.err, "unknown request 'BOGUS'"));
  assert_int_equal(parse("PING now", &q), TR_EINVAL);
  assert_int_equal(parse("INTERRUPTX", &q), TR_EINVAL);
  assert_int_equal(parse("\x01\x02\xff", &q), TR_EINVAL);
  assert_int_equal(tr__control_parse("LINE a\0b", 8, &q), TR_EINVAL);
  assert_non_null(strstr(q.err, "NUL"));
  assert_int_equal(tr__control_parse(NULL, 0, &q), TR_EINVAL);
  static char big[TR_CTL_MAX_LINE + 2];
  memset(big, 'x', sizeof big);
  memcpy(big, "LINE ", 5);
  assert_int_equal(tr__control_parse(big, sizeof big, &q), TR_EINVAL);
  assert_int_equal(tr__control_parse(big, TR_CTL_MAX_LINE, &q), 0);
  /* a long unknown verb is cut in the message */
  memset(big, 'A', 200);
  assert_int_equal(tr__control_parse(big, 200, &q), TR_EINVAL);
  assert_true(strlen(q.err) < sizeof q.err);
}

int main(int argc, char **argv) {
  const struct CMUnitTest all[] = {cmocka_unit_test(verbs), cmocka_unit_test(malformed)};
  if (argc > 1) cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(all, NULL, NULL);
}
