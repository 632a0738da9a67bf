/* tr_map: a small open-addressing hash map from non-zero uint64 keys to
 * pointers. tr_stab (below): pointers by serial number. tr_map:
 * Linear probing with backward-shift deletion: no tombstones, O(1) average. */
#ifndef TROUPE_MAP_H
#define TROUPE_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tr_map_slot {
  uint64_t key; /* 0: empty */
  void *val;
} tr_map_slot;

typedef struct tr_map {
  tr_map_slot *slots;
  size_t mask; /* capacity - 1; capacity is a power of two */
  size_t n;
} tr_map;

void tr_map_init(tr_map *m);
void tr_map_free(tr_map *m);
static inline size_t tr_map_hash(uint64_t k) {
  k ^= k >> 33;
  k *= UINT64_C(0xff51afd7ed558ccd);
  k ^= k >> 33;
  return (size_t)k;
}
/* inline: it is on every message's path (actor and pending-call lookups) */
static inline void *tr_map_get(const tr_map *m, uint64_t key) {
  if (!m->slots) return NULL;
  for (size_t i = tr_map_hash(key) & m->mask;; i = (i + 1) & m->mask) {
    if (m->slots[i].key == key) return m->slots[i].val;
    if (m->slots[i].key == 0) return NULL;
  }
}
int tr_map_put(tr_map *m, uint64_t key, void *val); /* 0, or -1 on no memory */
void *tr_map_del(tr_map *m, uint64_t key);          /* the value removed, or NULL */
/* Iterate: for (size_t i = 0; i <= m->mask; i++) if (m->slots && m->slots[i].key) ... */

/* A table of pointers by serial number, for keys handed out in increasing
 * order (actors' serials): chunks of TR_STAB_CHUNK consecutive serials, each
 * an array indexed by the serial's low bits, found through a small map from
 * chunk number to chunk. A million actors spawned in a row fill 2,048 chunks
 * one after the other (8 bytes per actor, written in order), where a hash
 * map of actors scattered them over a 32 MB table (a cache and TLB miss per
 * insert and per lookup, most of a spawn's time in that table). A chunk is
 * made when its first serial is put and freed when its last entry goes (one
 * empty chunk is kept for the next: a spawn-and-die loop allocates nothing);
 * so memory follows the live entries, at most a chunk (4 KiB) per live
 * entry when the survivors are far apart. */
#define TR_STAB_SHIFT 9
#define TR_STAB_CHUNK ((size_t)1 << TR_STAB_SHIFT)
/* Past TR_STAB_SMALL chunks (a big table), chunks are cut from slabs of
 * 2 MiB with transparent huge pages requested (tr_big_alloc): a million
 * actors' chunks were ~2,000 page faults of 4 KiB each, now 4 of 2 MiB. A
 * slab goes back to the system when its last chunk is freed. */
#define TR_STAB_SMALL 32
typedef struct tr_stab_slab tr_stab_slab;
typedef struct tr_stab_chunk {
  void *p[TR_STAB_CHUNK];
  size_t n; /* entries in use */
  tr_stab_slab *slab; /* the slab it was cut from; NULL: malloc'd */
} tr_stab_chunk;

typedef struct tr_stab {
  tr_map chunks;          /* chunk number + 1 -> tr_stab_chunk */
  uint64_t last_c;        /* the chunk found last (number + 1; 0: none) */
  tr_stab_chunk *last;
  tr_stab_chunk *spare;   /* an empty chunk kept for the next one made */
  size_t n;               /* entries */
  tr_stab_slab *slabs;    /* every slab (a list) */
} tr_stab;

void tr_stab_init(tr_stab *t);
void tr_stab_free(tr_stab *t);
static inline void *tr_stab_get(const tr_stab *t, uint64_t key) {
  uint64_t c = (key >> TR_STAB_SHIFT) + 1;
  tr_stab_chunk *ch = c == t->last_c ? t->last : (tr_stab_chunk *)tr_map_get(&t->chunks, c);
  return ch ? ch->p[key & (TR_STAB_CHUNK - 1)] : NULL;
}
/* Set key's entry to val (non-NULL): 0, or -1 on no memory. */
int tr_stab_put(tr_stab *t, uint64_t key, void *val);
/* Remove key's entry: the value removed, or NULL. */
void *tr_stab_del(tr_stab *t, uint64_t key);
/* Every entry, in no particular order: fn(ud, val) (fn must not change t). */
void tr_stab_each(const tr_stab *t, void (*fn)(void *ud, void *val), void *ud);

#endif
