/* The small-block arena (host/src/arena.c): size classes and their
 * boundaries, reuse of freed blocks and of empty pages by other classes,
 * pages given back to the system, running out, and a host's Lua state served
 * from it (reallocs across classes and past the largest class). The arena
 * is off under AddressSanitizer (the tests that need it skip there). */
#include "helpers.h"

#include "internal.h"

#define MiB ((size_t)1 << 20)

/* An arena, or skip: it is off in this build (sanitizers) or environment. */
static void arena_on(tr_arena *a, size_t reserve) {
  if (tr_arena_init(a, reserve) != 0) skip();
}

static void arena_classes_and_boundaries(void **state) {
  tr_arena a;
  arena_on(&a, 64 * MiB);
  static unsigned char *blocks[TR_ARENA_MAX + 1];
  for (size_t n = 1; n <= TR_ARENA_MAX; n++) {
    unsigned char *p = tr_arena_alloc(&a, n);
    assert_non_null(p);
    assert_true(tr_arena_owns(&a, p));
    size_t sz = tr_arena_block_size(p);
    assert_int_equal((uintptr_t)p % (sz % 16 ? 8 : 16), 0); /* 16 for a multiple of 16 */
    assert_true(sz >= n);
    assert_int_equal(sz, tr_arena_round(n));
    if (n <= 256) assert_true(sz - n < 8); /* 8-byte steps */
    else if (n <= 512) assert_true(sz - n < 16); /* 16-byte steps */
    else assert_true(sz - n < 128);
    memset(p, (int)(n & 0xff), n);
    blocks[n] = p;
  }
  /* each block kept its bytes: none overlaps another */
  for (size_t n = 1; n <= TR_ARENA_MAX; n++)
    for (size_t i = 0; i < n; i++) assert_int_equal(blocks[n][i], n & 0xff);
  /* exact boundaries */
  assert_int_equal(tr_arena_round(1), 8);
  assert_int_equal(tr_arena_round(16), 16);
  assert_int_equal(tr_arena_round(17), 24);
  assert_int_equal(tr_arena_round(56), 56); /* a Lua table */
  assert_int_equal(tr_arena_round(256), 256);
  assert_int_equal(tr_arena_round(257), 272);
  assert_int_equal(tr_arena_round(512), 512);
  assert_int_equal(tr_arena_round(513), 640);
  assert_int_equal(tr_arena_round(1024), 1024);
  assert_null(tr_arena_alloc(&a, TR_ARENA_MAX + 1)); /* not the arena's */
  for (size_t n = 1; n <= TR_ARENA_MAX; n++) tr_arena_free(&a, blocks[n]);
  assert_int_equal(a.bytes, 0);
  tr_arena_destroy(&a);
}

static void arena_owns_only_its_blocks(void **state) {
  tr_arena a;
  arena_on(&a, 8 * MiB);
  void *m = malloc(32);
  assert_false(tr_arena_owns(&a, m));
  assert_false(tr_arena_owns(&a, NULL));
  void *p = tr_arena_alloc(&a, 32);
  assert_true(tr_arena_owns(&a, p));
  tr_arena_free(&a, p);
  tr_arena_destroy(&a);
  tr_arena off; /* destroyed or off: owns nothing, gives nothing */
  memset(&off, 0, sizeof off);
  assert_false(tr_arena_owns(&off, m));
  assert_false(tr_arena_owns(&off, p));
  assert_null(tr_arena_alloc(&off, 16));
  free(m);
}

/* Freed blocks come back first (same class); an emptied page serves another
 * class without more memory being committed. */
static void arena_reuses_blocks_and_pages(void **state) {
  tr_arena a;
  arena_on(&a, 64 * MiB);
  void *p = tr_arena_alloc(&a, 100);
  tr_arena_free(&a, p);
  assert_ptr_equal(tr_arena_alloc(&a, 97), p); /* the same class (104) */
  tr_arena_free(&a, p);
  /* three pages' worth of 64-byte blocks */
  size_t per_page = (TR_ARENA_PAGE - 64) / 64, n = 3 * per_page;
  void **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) assert_non_null(v[i] = tr_arena_alloc(&a, 64));
  char *committed = a.committed, *fresh = a.fresh;
  for (size_t i = 0; i < n; i++) tr_arena_free(&a, v[i]);
  assert_int_equal(a.bytes, 0);
  assert_true(a.spare_n >= 2); /* one page of the class stays with it */
  /* another class takes the two spare pages: nothing new is used */
  size_t m = 2 * ((TR_ARENA_PAGE - 64) / 128);
  for (size_t i = 0; i < m; i++) assert_non_null(v[i] = tr_arena_alloc(&a, 128));
  assert_ptr_equal(a.fresh, fresh);
  assert_ptr_equal(a.committed, committed);
  assert_non_null(v[m] = tr_arena_alloc(&a, 128)); /* a third page: a fresh one */
  assert_true(a.fresh > fresh);
  for (size_t i = 0; i <= m; i++) tr_arena_free(&a, v[i]);
  free(v);
  tr_arena_destroy(&a);
}

/* Past TR_ARENA_KEEP empty pages, memory goes back to the system by whole
 * 2 MiB regions of empty pages, and such pages are usable again (zeros); not
 * while tearing down (keep). */
static void arena_returns_pages(void **state) {
  tr_arena a;
  arena_on(&a, 256 * MiB);
  size_t region = (2 * MiB) / TR_ARENA_PAGE;
  size_t per_page = (TR_ARENA_PAGE - 64) / 1024, pages = TR_ARENA_KEEP + 3 * region;
  size_t n = pages * per_page;
  void **v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    assert_non_null(v[i] = tr_arena_alloc(&a, 1024));
    memset(v[i], 0xab, 1024);
  }
  /* a region with one page in use is kept whole */
  for (size_t i = 0; i < n; i++)
    if (i % (per_page * region) != 5) tr_arena_free(&a, v[i]);
  assert_int_equal(a.released, 0);
  for (size_t i = 5; i < n; i += per_page * region) tr_arena_free(&a, v[i]);
  assert_true(a.released >= 2);
  assert_true(a.spare_n > TR_ARENA_KEEP);
  for (size_t i = 0; i < n; i++) {
    unsigned char *p = v[i] = tr_arena_alloc(&a, 1000);
    assert_non_null(p);
    p[999] = 1;
  }
  a.keep = 1;
  size_t released = a.released;
  for (size_t i = 0; i < n; i++) tr_arena_free(&a, v[i]);
  assert_int_equal(a.released, released);
  free(v);
  tr_arena_destroy(&a);
}

/* A full arena says NULL (the callers then use malloc); freeing makes room. */
static void arena_runs_out(void **state) {
  tr_arena a;
  arena_on(&a, 2 * MiB);
  size_t n = 0, cap = 4096;
  void **v = malloc(cap * sizeof *v);
  void *p;
  while ((p = tr_arena_alloc(&a, 1024))) {
    assert_true(n < cap);
    v[n++] = p;
  }
  assert_int_equal(n, (2 * MiB / TR_ARENA_PAGE) * ((TR_ARENA_PAGE - 64) / 1024));
  assert_null(tr_arena_alloc(&a, 16)); /* no page left for another class either */
  tr_arena_free(&a, v[0]);
  assert_ptr_equal(tr_arena_alloc(&a, 1024), v[0]);
  for (size_t i = 0; i < n; i++) tr_arena_free(&a, v[i]);
  free(v);
  tr_arena_destroy(&a);
}

/* A host's own Lua state lives in its scheduler's arena: strings and tables
 * that grow and shrink across classes and past TR_ARENA_MAX keep their
 * contents, and the collector's frees come back to the arena. */
static void arena_serves_lua_state(void **state) {
  tr_host_options o;
  tr_host_options_init(&o);
  o.schedulers = 1;
  tr_host *h;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  tr_arena *ar = &h->sched[0].arena;
  if (!ar->base) {
    tr_host_free(h);
    skip();
  }
  size_t before = ar->bytes;
  assert_true(before > 0); /* the state's own objects */
  assert_int_equal(
      tr_host_dostring(h,
                       "keep = {}\n"
                       "for n = 1, 2100, 7 do\n"
                       "  local s = string.rep('x', n)\n"
                       "  local t = {}\n"
                       "  for i = 1, n // 8 do t[i] = i end\n"          /* array grows */
                       "  for i = n // 8, 1, -1 do t[i] = nil end\n"
                       "  t.k = s; collectgarbage('step')\n"           /* shrink on rehash */
                       "  assert(#s == n and t.k == s)\n"
                       "  keep[#keep + 1] = s\n"
                       "end\n"
                       "for i, s in ipairs(keep) do assert(#s == 1 + (i - 1) * 7) end\n",
                       "=arena"),
      TR_OK);
  size_t full = ar->bytes;
  assert_true(full > before);
  assert_int_equal(tr_host_dostring(h, "keep = nil; collectgarbage(); collectgarbage()", "=gc"),
                   TR_OK);
  assert_true(ar->bytes < full);
  tr_host_free(h);
}

/* Big blocks: their own mappings, grown and shrunk keeping their bytes; a
 * host's Lua state moves arrays across TR_BIG_MIN both ways (a table grown
 * to a million slots, shrunk by a rehash, strings and tables freed). */
static void arena_big_blocks(void **state) {
  size_t n = TR_BIG_MIN;
  unsigned char *p = tr_big_alloc(n);
  assert_non_null(p);
  memset(p, 0x5a, n);
  p = tr_big_realloc(p, n, 8 * n); /* grown (maybe moved) */
  assert_non_null(p);
  for (size_t i = 0; i < n; i += 4096) assert_int_equal(p[i], 0x5a);
  memset(p + n, 0xa5, 7 * n);
  p = tr_big_realloc(p, 8 * n, n + 1); /* shrunk */
  assert_non_null(p);
  assert_int_equal(p[n - 1], 0x5a);
  assert_int_equal(p[n], 0xa5);
  tr_big_free(p, n + 1);

  tr_host_options o;
  tr_host_options_init(&o);
  o.schedulers = 1;
  tr_host *h;
  assert_int_equal(tr_host_new(&h, &o), TR_OK);
  if (!h->sched[0].arena.base) {
    tr_host_free(h);
    skip();
  }
  assert_int_equal(
      tr_host_dostring(h,
                       "local t = {}\n"
                       "for i = 1, 1000000 do t[i] = i end\n"            /* array: 16 MB */
                       "for i = 1, 1000000 do assert(t[i] == i) end\n"
                       "for i = 2, 1000000 do t[i] = nil end\n"
                       "t.x = 1; t.y = 2; t.z = 3\n"                   /* a rehash shrinks it */
                       "collectgarbage()\n"
                       "assert(t[1] == 1 and t.x == 1 and t.z == 3)\n"
                       "local h = {}\n"
                       "for i = 1, 100000 do h['k' .. i] = i end\n"     /* a big hash part */
                       "for i = 1, 100000 do assert(h['k' .. i] == i) end\n"
                       "local s = string.rep('ab', 300000)\n"          /* a big string */
                       "assert(#s == 600000 and s:sub(-2) == 'ab')\n"
                       "t, h, s = nil, nil, nil\n"
                       "collectgarbage(); collectgarbage()\n",
                       "=big"),
      TR_OK);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(arena_classes_and_boundaries),
      cmocka_unit_test(arena_owns_only_its_blocks),
      cmocka_unit_test(arena_reuses_blocks_and_pages),
      cmocka_unit_test(arena_returns_pages),
      cmocka_unit_test(arena_runs_out),
      cmocka_unit_test(arena_serves_lua_state),
      cmocka_unit_test(arena_big_blocks),
  };
  RUN_TESTS(tests, argc, argv);
}
