/* A small open-addressing hash map from non-zero uint64 keys to pointers.
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

#endif
