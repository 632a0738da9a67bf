/* The tables of map.h: tr_stab (pointers by serial, the actor table): chunks
 * made on first use and freed when empty, the spare chunk, iteration. */
#include "helpers.h"

#include "internal.h"

static void *val_of(uint64_t k) { return (void *)(uintptr_t)(k * 16 + 8); }

static void count_each(void *ud, void *val) {
  size_t *n = ud;
  assert_true(((uintptr_t)val & 15) == 8);
  (*n)++;
}

static void stab_put_get_del(void **state) {
  (void)state;
  tr_stab t;
  tr_stab_init(&t);
  assert_null(tr_stab_get(&t, 1));
  assert_null(tr_stab_del(&t, 1));
  const uint64_t n = 5 * TR_STAB_CHUNK + 7;
  for (uint64_t k = 1; k <= n; k++) assert_int_equal(tr_stab_put(&t, k, val_of(k)), 0);
  assert_int_equal(t.n, n);
  assert_int_equal(t.chunks.n, 6);
  for (uint64_t k = 1; k <= n; k++) assert_ptr_equal(tr_stab_get(&t, k), val_of(k));
  assert_null(tr_stab_get(&t, n + 1));
  assert_null(tr_stab_get(&t, UINT64_C(1) << 47)); /* a chunk never made */
  /* replacing an entry does not count it twice */
  assert_int_equal(tr_stab_put(&t, 3, val_of(3)), 0);
  assert_int_equal(t.n, n);
  size_t seen = 0;
  tr_stab_each(&t, count_each, &seen);
  assert_int_equal(seen, n);
  /* empty the second chunk: it goes (kept as the spare), the others stay */
  for (uint64_t k = TR_STAB_CHUNK; k < 2 * TR_STAB_CHUNK; k++)
    assert_ptr_equal(tr_stab_del(&t, k), val_of(k));
  assert_int_equal(t.chunks.n, 5);
  assert_non_null(t.spare);
  assert_null(tr_stab_get(&t, TR_STAB_CHUNK + 1));
  assert_null(tr_stab_del(&t, TR_STAB_CHUNK + 1));
  assert_ptr_equal(tr_stab_get(&t, 2 * TR_STAB_CHUNK), val_of(2 * TR_STAB_CHUNK));
  /* a new chunk takes the spare (all empty) */
  uint64_t far = 1000 * TR_STAB_CHUNK + 5;
  assert_int_equal(tr_stab_put(&t, far, val_of(far)), 0);
  assert_null(t.spare);
  assert_ptr_equal(tr_stab_get(&t, far), val_of(far));
  for (uint64_t k = 1000 * TR_STAB_CHUNK; k < 1001 * TR_STAB_CHUNK; k++)
    if (k != far) assert_null(tr_stab_get(&t, k));
  /* everything out, in another order than it went in */
  for (uint64_t k = n; k >= 1; k--)
    if (k < TR_STAB_CHUNK || k >= 2 * TR_STAB_CHUNK) assert_ptr_equal(tr_stab_del(&t, k), val_of(k));
  assert_ptr_equal(tr_stab_del(&t, far), val_of(far));
  assert_int_equal(t.n, 0);
  assert_int_equal(t.chunks.n, 0);
  seen = 0;
  tr_stab_each(&t, count_each, &seen);
  assert_int_equal(seen, 0);
  tr_stab_free(&t);
}

/* a spawn-and-die pattern across a chunk boundary: put, del, next serial */
static void stab_churn(void **state) {
  (void)state;
  tr_stab t;
  tr_stab_init(&t);
  assert_int_equal(tr_stab_put(&t, 1, val_of(1)), 0); /* a long-lived one */
  for (uint64_t k = 2; k < 10 * TR_STAB_CHUNK; k++) {
    assert_int_equal(tr_stab_put(&t, k, val_of(k)), 0);
    assert_ptr_equal(tr_stab_get(&t, k), val_of(k));
    assert_ptr_equal(tr_stab_del(&t, k), val_of(k));
    assert_null(tr_stab_get(&t, k));
  }
  assert_int_equal(t.n, 1);
  assert_int_equal(t.chunks.n, 1);
  assert_ptr_equal(tr_stab_get(&t, 1), val_of(1));
  tr_stab_free(&t); /* frees a chunk still in use */
}

/* a big table: chunks past TR_STAB_SMALL come from slabs; chunks emptied
 * and made again reuse slab room; emptied, every slab goes */
static void stab_slabs(void **state) {
  (void)state;
  tr_stab t;
  tr_stab_init(&t);
  const uint64_t chunks = TR_STAB_SMALL + 1200; /* more than one slab's worth */
  const uint64_t n = chunks * TR_STAB_CHUNK;
  for (uint64_t k = 1; k < n; k += 3) assert_int_equal(tr_stab_put(&t, k, val_of(k)), 0);
  assert_non_null(t.slabs);
  for (uint64_t k = 1; k < n; k++) {
    if ((k - 1) % 3) assert_null(tr_stab_get(&t, k));
    else assert_ptr_equal(tr_stab_get(&t, k), val_of(k));
  }
  /* every other chunk emptied, then refilled at other serials */
  for (uint64_t c = 0; c < chunks; c += 2)
    for (uint64_t k = c * TR_STAB_CHUNK; k < (c + 1) * TR_STAB_CHUNK; k++)
      if (k && (k - 1) % 3 == 0) assert_ptr_equal(tr_stab_del(&t, k), val_of(k));
  for (uint64_t c = 0; c < chunks; c += 2) {
    uint64_t k = (chunks + 10 + c) * TR_STAB_CHUNK + 1;
    assert_int_equal(tr_stab_put(&t, k, val_of(k)), 0);
    for (uint64_t j = k - 1; j < k - 1 + TR_STAB_CHUNK; j++)
      if (j != k) assert_null(tr_stab_get(&t, j)); /* a reused chunk is empty */
  }
  size_t seen = 0, want = t.n;
  tr_stab_each(&t, count_each, &seen);
  assert_int_equal(seen, want);
  /* everything out: every slab goes back */
  for (uint64_t k = 1; k < 2 * chunks * TR_STAB_CHUNK + 20 * TR_STAB_CHUNK; k++) tr_stab_del(&t, k);
  assert_int_equal(t.n, 0);
  assert_int_equal(t.chunks.n, 0);
  tr_stab_free(&t);
  assert_null(t.slabs);
  /* freed while full */
  for (uint64_t k = 1; k < n; k += 100) assert_int_equal(tr_stab_put(&t, k, val_of(k)), 0);
  tr_stab_free(&t);
  assert_null(t.slabs);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(stab_slabs),
      cmocka_unit_test(stab_put_get_del),
      cmocka_unit_test(stab_churn),
  };
  RUN_TESTS(tests, argc, argv);
}
