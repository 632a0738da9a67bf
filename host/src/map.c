#include "map.h"

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
