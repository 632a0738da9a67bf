#include "map.h"

#include "arena.h"

#include <stdlib.h>

void tr_map_init(tr_map *m) {
  m->slots = NULL;
  m->mask = 0;
  m->n = 0;
}

void tr_map_free(tr_map *m) {
  free(m->slots);
  tr_map_init(m);
}

static int tr_map_grow(tr_map *m) {
  size_t cap = m->slots ? (m->mask + 1) * 2 : 16;
  tr_map_slot *ns = calloc(cap, sizeof *ns);
  if (!ns) return -1;
  for (size_t i = 0; m->slots && i <= m->mask; i++) {
    if (!m->slots[i].key) continue;
    size_t j = tr_map_hash(m->slots[i].key) & (cap - 1);
    while (ns[j].key) j = (j + 1) & (cap - 1);
    ns[j] = m->slots[i];
  }
  free(m->slots);
  m->slots = ns;
  m->mask = cap - 1;
  return 0;
}

int tr_map_put(tr_map *m, uint64_t key, void *val) {
  if (!m->slots || (m->n + 1) * 4 > (m->mask + 1) * 3)
    if (tr_map_grow(m)) return -1;
  size_t i = tr_map_hash(key) & m->mask;
  while (m->slots[i].key && m->slots[i].key != key) i = (i + 1) & m->mask;
  if (!m->slots[i].key) m->n++;
  m->slots[i].key = key;
  m->slots[i].val = val;
  return 0;
}

void *tr_map_del(tr_map *m, uint64_t key) {
  if (!m->slots) return NULL;
  size_t i = tr_map_hash(key) & m->mask;
  while (m->slots[i].key != key) {
    if (!m->slots[i].key) return NULL;
    i = (i + 1) & m->mask;
  }
  void *val = m->slots[i].val;
  /* backward-shift: pull later entries of the same probe run into the hole */
  size_t hole = i;
  for (size_t j = (i + 1) & m->mask; m->slots[j].key; j = (j + 1) & m->mask) {
    size_t home = tr_map_hash(m->slots[j].key) & m->mask;
    /* can slot j move to hole? yes if home is not in (hole, j] cyclically */
    int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!between) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].key = 0;
  m->slots[hole].val = NULL;
  m->n--;
  return val;
}

/* ---- tr_stab ------------------------------------------------------------------------- */
#define SLAB_BYTES ((size_t)2 << 20)
struct tr_stab_slab {
  tr_stab_slab *prev, *next; /* in t->slabs */
  tr_stab_chunk *free;       /* freed chunks (a list through p[0]) */
  size_t used;               /* chunks handed out */
  size_t bump;               /* chunks[bump..] never handed out (zeros) */
  tr_stab_chunk chunks[];
};
#define SLAB_CHUNKS ((SLAB_BYTES - sizeof(tr_stab_slab)) / sizeof(tr_stab_chunk))

/* An empty chunk (every entry NULL, n 0), or NULL. */
static tr_stab_chunk *chunk_new(tr_stab *t) {
  if (t->chunks.n < TR_STAB_SMALL) return calloc(1, sizeof(tr_stab_chunk));
  tr_stab_slab *sl = t->slabs;
  while (sl && !sl->free && sl->bump == SLAB_CHUNKS) sl = sl->next;
  if (!sl) {
    sl = tr_big_alloc(SLAB_BYTES); /* (zeros) */
    if (!sl) return calloc(1, sizeof(tr_stab_chunk));
    sl->prev = NULL;
    sl->next = t->slabs;
    if (t->slabs) t->slabs->prev = sl;
    t->slabs = sl;
  }
  tr_stab_chunk *ch;
  if (sl->free) {
    ch = sl->free;
    sl->free = ch->p[0];
    ch->p[0] = NULL;
  } else {
    ch = &sl->chunks[sl->bump++];
  }
  sl->used++;
  ch->slab = sl;
  return ch;
}

static void chunk_free(tr_stab *t, tr_stab_chunk *ch) {
  tr_stab_slab *sl = ch->slab;
  if (!sl) {
    free(ch);
    return;
  }
  ch->p[0] = sl->free;
  sl->free = ch;
  if (--sl->used) return;
  if (sl->prev) sl->prev->next = sl->next;
  else t->slabs = sl->next;
  if (sl->next) sl->next->prev = sl->prev;
  tr_big_free(sl, SLAB_BYTES);
}

void tr_stab_init(tr_stab *t) {
  tr_map_init(&t->chunks);
  t->last_c = 0;
  t->last = NULL;
  t->spare = NULL;
  t->n = 0;
  t->slabs = NULL;
}

void tr_stab_free(tr_stab *t) {
  for (size_t i = 0; t->chunks.slots && i <= t->chunks.mask; i++)
    if (t->chunks.slots[i].key) chunk_free(t, t->chunks.slots[i].val);
  tr_map_free(&t->chunks);
  if (t->spare) chunk_free(t, t->spare);
  tr_stab_init(t);
}

int tr_stab_put(tr_stab *t, uint64_t key, void *val) {
  uint64_t c = (key >> TR_STAB_SHIFT) + 1;
  tr_stab_chunk *ch = c == t->last_c ? t->last : tr_map_get(&t->chunks, c);
  if (!ch) {
    ch = t->spare ? t->spare : chunk_new(t); /* (the spare is all NULL) */
    if (!ch || tr_map_put(&t->chunks, c, ch)) {
      if (ch && ch != t->spare) chunk_free(t, ch);
      return -1;
    }
    if (ch == t->spare) t->spare = NULL;
  }
  t->last_c = c;
  t->last = ch;
  void **slot = &ch->p[key & (TR_STAB_CHUNK - 1)];
  if (!*slot) {
    ch->n++;
    t->n++;
  }
  *slot = val;
  return 0;
}

void *tr_stab_del(tr_stab *t, uint64_t key) {
  uint64_t c = (key >> TR_STAB_SHIFT) + 1;
  tr_stab_chunk *ch = c == t->last_c ? t->last : tr_map_get(&t->chunks, c);
  if (!ch) return NULL;
  void **slot = &ch->p[key & (TR_STAB_CHUNK - 1)];
  void *val = *slot;
  if (!val) return NULL;
  *slot = NULL;
  t->n--;
  if (--ch->n == 0) {
    tr_map_del(&t->chunks, c);
    if (t->last == ch) {
      t->last_c = 0;
      t->last = NULL;
    }
    if (!t->spare) t->spare = ch;
    else chunk_free(t, ch);
  }
  return val;
}

void tr_stab_each(const tr_stab *t, void (*fn)(void *ud, void *val), void *ud) {
  for (size_t i = 0; t->chunks.slots && i <= t->chunks.mask; i++) {
    tr_stab_chunk *ch = t->chunks.slots[i].val;
    if (!t->chunks.slots[i].key) continue;
    for (size_t k = 0; k < TR_STAB_CHUNK; k++)
      if (ch->p[k]) fn(ud, ch->p[k]);
  }
}
