/* The small-block allocator of arena.h. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define TR_ARENA_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_ARENA_SANITIZED 1
#endif
#endif

#define HUGE_SZ ((size_t)2 << 20) /* a transparent huge page; the commit step */
#define HDR 64                    /* the page header's room: blocks start after it */

/* 8-byte steps to 256 (Lua objects, actor records: a 56-byte Lua table
 * takes 56, not 64), 16-byte steps to 512, then 4 classes up to 1024. Pages
 * start their blocks at HDR, so a block is 16-byte aligned when its class
 * is a multiple of 16 and 8-byte aligned otherwise (no object of such a
 * size needs more). */
static const uint32_t cls_size[TR_ARENA_NCLS] = {
    8,   16,  24,  32,  40,  48,  56,  64,  72,  80,  88,  96,  104, 112, 120, 128,
    136, 144, 152, 160, 168, 176, 184, 192, 200, 208, 216, 224, 232, 240, 248, 256,
    272, 288, 304, 320, 336, 352, 368, 384, 400, 416, 432, 448, 464, 480, 496, 512,
    640, 768, 896, 1024};

static inline unsigned size_class(size_t n) {
  if (n <= 256) return n ? (unsigned)((n - 1) >> 3) : 0;
  if (n <= 512) return 32 + (unsigned)((n - 257) >> 4);
  return 48 + (unsigned)((n - 513) >> 7);
}

static inline tr_apage *page_of(const void *p) {
  return (tr_apage *)((uintptr_t)p & ~(uintptr_t)(TR_ARENA_PAGE - 1));
}

int tr_arena_init(tr_arena *a, size_t reserve) {
  memset(a, 0, sizeof *a);
#ifdef TR_ARENA_SANITIZED
  (void)reserve;
  return -1;
#else
  const char *env = getenv("TROUPE_ARENA");
  if (env && strcmp(env, "0") == 0) return -1;
  reserve = (reserve + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
  if (!reserve) return -1;
  /* address space only (no memory, no commit charge) until committed; one
   * huge page more so that the range can start on a huge page boundary */
  char *m = mmap(NULL, reserve + HUGE_SZ, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return -1;
  char *base = (char *)(((uintptr_t)m + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1));
  if (base > m) munmap(m, (size_t)(base - m));
  if (m + reserve + HUGE_SZ > base + reserve)
    munmap(base + reserve, (size_t)(m + reserve + HUGE_SZ - (base + reserve)));
  /* huge pages past the first 2 MiB: a small program keeps small pages */
  if (reserve > HUGE_SZ) madvise(base + HUGE_SZ, reserve - HUGE_SZ, MADV_HUGEPAGE);
  a->base = a->committed = a->fresh = base;
  a->end = base + reserve;
  return 0;
#endif
}

void tr_arena_destroy(tr_arena *a) {
  if (a->base) munmap(a->base, (size_t)(a->end - a->base));
  free(a->spare);
  free(a->rfree);
  memset(a, 0, sizeof *a);
}

/* Make the next 2 MiB usable. */
static int commit_more(tr_arena *a) {
  if (a->committed == a->end) return -1;
  size_t pages = (size_t)(a->committed + HUGE_SZ - a->base) / TR_ARENA_PAGE;
  if (pages > a->spare_cap) { /* every page may become spare: room for all of them */
    size_t cap = a->spare_cap ? a->spare_cap * 2 : 64;
    while (cap < pages) cap *= 2;
    tr_apage **ns = realloc(a->spare, cap * sizeof *ns);
    if (!ns) return -1;
    a->spare = ns;
    a->spare_cap = cap;
  }
  size_t regions = (size_t)(a->committed + HUGE_SZ - a->base) / HUGE_SZ;
  uint8_t *rf = realloc(a->rfree, regions); /* (rarely: once per 2 MiB) */
  if (!rf) return -1;
  a->rfree = rf;
  rf[regions - 1] = 0;
  if (mprotect(a->committed, HUGE_SZ, PROT_READ | PROT_WRITE)) return -1;
  a->committed += HUGE_SZ;
  return 0;
}

#define REGION_PAGES (HUGE_SZ / TR_ARENA_PAGE)

static size_t region_of(const tr_arena *a, const void *pg) {
  return (size_t)((const char *)pg - a->base) / HUGE_SZ;
}

static void list_push(tr_arena *a, tr_apage *pg) {
  tr_apage **head = &a->avail[pg->cls];
  pg->prev = NULL;
  pg->next = *head;
  if (*head) (*head)->prev = pg;
  *head = pg;
  pg->listed = 1;
}

static void list_remove(tr_arena *a, tr_apage *pg) {
  if (pg->prev) pg->prev->next = pg->next;
  else a->avail[pg->cls] = pg->next;
  if (pg->next) pg->next->prev = pg->prev;
  pg->prev = pg->next = NULL;
  pg->listed = 0;
}

/* A page for class c: a spare one, else a fresh one. */
static tr_apage *page_new(tr_arena *a, unsigned c) {
  tr_apage *pg;
  if (a->spare_n) {
    pg = a->spare[--a->spare_n];
    a->rfree[region_of(a, pg)]--;
  } else {
    if (a->fresh == a->committed && commit_more(a)) return NULL;
    pg = (tr_apage *)a->fresh;
    a->fresh += TR_ARENA_PAGE;
  }
  pg->free = NULL;
  pg->used = 0;
  pg->bump = HDR;
  pg->size = cls_size[c];
  pg->cls = (uint8_t)c;
  list_push(a, pg);
  return pg;
}

void tr__arena_full(tr_arena *a, tr_apage *pg) { list_remove(a, pg); }

void *tr__arena_alloc(tr_arena *a, size_t n) {
  if (n > TR_ARENA_MAX || !a->base) return NULL;
  unsigned c = size_class(n);
  tr_apage *pg = a->avail[c];
  if (!pg && !(pg = page_new(a, c))) return NULL;
  return tr__apage_take(a, pg);
}

void tr_arena_free(tr_arena *a, void *p) {
  tr_apage *pg = page_of(p);
  *(void **)p = pg->free;
  pg->free = p;
  pg->used--;
  a->bytes -= pg->size;
  if (!pg->listed) {
    list_push(a, pg); /* it was full: it has room again */
    return;
  }
  /* empty: to the pool, unless it is its class's only page with room (a
   * block allocated and freed over and over would make and drop a page) */
  if (pg->used || (!pg->prev && !pg->next)) return;
  list_remove(a, pg);
  a->spare[a->spare_n++] = pg; /* room for every page was made when committed */
  size_t r = region_of(a, pg);
  if (++a->rfree[r] == REGION_PAGES && a->spare_n > TR_ARENA_KEEP && !a->keep) {
    /* the whole region back to the system (a huge page, not split); a page
     * of it used again reads zeros */
    madvise(a->base + r * HUGE_SZ, HUGE_SZ, MADV_DONTNEED);
    a->released++;
  }
}

size_t tr_arena_block_size(const void *p) { return page_of(p)->size; }

size_t tr_arena_round(size_t n) { return n <= TR_ARENA_MAX ? cls_size[size_class(n)] : n; }

/* ---- big blocks --------------------------------------------------------------------- */
static size_t big_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

void *tr_big_alloc(size_t n) {
  n = big_round(n);
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  madvise(p, n, MADV_HUGEPAGE);
  return p;
}

void *tr_big_realloc(void *p, size_t osize, size_t nsize) {
  size_t o = big_round(osize), n = big_round(nsize);
  if (o == n) return p;
  void *q = mremap(p, o, n, MREMAP_MAYMOVE);
  if (q == MAP_FAILED) return NULL;
  if (n > o) madvise(q, n, MADV_HUGEPAGE);
  return q;
}

void tr_big_free(void *p, size_t n) { munmap(p, big_round(n)); }
