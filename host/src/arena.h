/* A small-block allocator for one thread (one per scheduler): size classes
 * served from 64 KiB pages (one class per page, a free list per page, as in
 * mimalloc or jemalloc's slabs), the pages cut from one range of address
 * space reserved up front and made usable 2 MiB at a time with transparent
 * huge pages requested. Why: a million actors are ~700 MB of small blocks,
 * and with glibc's malloc every new 4 KiB page of them is a page fault, which
 * costs microseconds in a paravirtualised VM; here most are 2 MiB faults.
 *
 * The caller knows each block's size, so blocks carry no header; whether a
 * pointer is the arena's is one range check (tr_arena_owns), so callers may
 * mix arena blocks with malloc'd ones (blocks bigger than TR_ARENA_MAX, or
 * made before the arena, or after it ran out). An empty page goes back to a
 * pool shared by all classes. Memory goes back to the system only by whole
 * 2 MiB regions (every page of one empty, and more than TR_ARENA_KEEP pages
 * pooled): returning single pages split the huge pages, and a million dead
 * INIT envelopes' pages made every later access to the actors' memory slow
 * (their teardown took 10 s instead of 1). Single-threaded: its scheduler's
 * thread, or the thread that tears the host down once the others stopped.
 *
 * Off (tr_arena_alloc always NULL, callers use malloc) under AddressSanitizer
 * (whose checks need malloc), when TROUPE_ARENA=0 is in the environment, or
 * when the address space cannot be reserved. */
#ifndef TROUPE_ARENA_H
#define TROUPE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define TR_ARENA_PAGE ((size_t)64 << 10)
#define TR_ARENA_MAX 1024  /* larger blocks are not the arena's */
#define TR_ARENA_NCLS 52
#define TR_ARENA_KEEP 256  /* empty pages kept ready (16 MiB) before any is returned */

typedef struct tr_apage tr_apage;

/* At the start of every page in use. */
struct tr_apage {
  void *free;             /* freed blocks (a list through their first word) */
  tr_apage *prev, *next;  /* in the class's avail list, when `listed` */
  uint32_t used;          /* blocks handed out */
  uint32_t bump;          /* offset of the first block never handed out */
  uint32_t size;          /* block size */
  uint8_t cls;
  uint8_t listed;
};

typedef struct tr_arena {
  char *base;       /* the reserved range [base, end); NULL: the arena is off */
  char *end;
  char *committed;  /* [base, committed) is readable and writable */
  char *fresh;      /* [fresh, committed): pages never used yet */
  tr_apage *avail[TR_ARENA_NCLS]; /* per class: its pages with a free block */
  tr_apage **spare; /* empty pages, for any class (a stack) */
  size_t spare_n, spare_cap;
  uint8_t *rfree;   /* per 2 MiB region: how many of its pages are spare */
  size_t released;  /* regions returned to the system so far (MADV_DONTNEED) */
  size_t bytes;     /* in blocks handed out (their class sizes) */
  int keep;         /* tearing down: return nothing to the system any more */
} tr_arena;

/* Reserve `reserve` bytes of address space (rounded up to 2 MiB). Returns 0,
 * or -1 with the arena off (then every tr_arena_alloc is NULL). */
int tr_arena_init(tr_arena *a, size_t reserve);
/* Unmap everything: every block is gone. */
void tr_arena_destroy(tr_arena *a);
/* A block of at least n bytes (1 <= n <= TR_ARENA_MAX), or NULL (too big,
 * the arena is off or full): the caller then uses malloc. Aligned to 16
 * bytes when its class (tr_arena_round(n)) is a multiple of 16, else to 8.
 * The usual case (a class up to 256 bytes with a page that has room) is
 * inline; the rest is tr__arena_alloc. */
void *tr__arena_alloc(tr_arena *a, size_t n);
void tr__arena_full(tr_arena *a, tr_apage *pg);
/* A block of page pg (which has room); a page left full leaves the list. */
static inline void *tr__apage_take(tr_arena *a, tr_apage *pg) {
  void *p = pg->free;
  if (p) {
    pg->free = *(void **)p;
  } else {
    p = (char *)pg + pg->bump;
    pg->bump += pg->size;
  }
  pg->used++;
  a->bytes += pg->size;
  if (!pg->free && pg->bump + pg->size > TR_ARENA_PAGE) tr__arena_full(a, pg);
  return p;
}
static inline void *tr_arena_alloc(tr_arena *a, size_t n) {
  tr_apage *pg;
  if (n - 1 >= 256 || !(pg = a->avail[(n - 1) >> 3])) return tr__arena_alloc(a, n);
  return tr__apage_take(a, pg);
}
/* p from tr_arena_alloc of this arena. */
void tr_arena_free(tr_arena *a, void *p);
/* The usable size of arena block p (its class size). */
size_t tr_arena_block_size(const void *p);
/* The size of the block tr_arena_alloc(n) gives (n itself past TR_ARENA_MAX). */
size_t tr_arena_round(size_t n);

/* Big blocks (TR_BIG_MIN bytes and more, a huge page: a Lua state's large arrays, such
 * as the registry's or a table indexed by a million actors): a mapping
 * each, with transparent huge pages requested, grown in place or moved by
 * mremap (no copy). Through malloc they were 4 KiB pages, a page fault
 * each (~14,000 for a million actors). Headerless: the caller passes the
 * size, and a block is big by its size alone. NULL when out of memory. */
#define TR_BIG_MIN ((size_t)2 << 20)
void *tr_big_alloc(size_t n);
void *tr_big_realloc(void *p, size_t osize, size_t nsize); /* both >= TR_BIG_MIN */
void tr_big_free(void *p, size_t n);

static inline int tr_arena_owns(const tr_arena *a, const void *p) {
  return (uintptr_t)p - (uintptr_t)a->base < (uintptr_t)(a->committed - a->base);
}

#endif
