/* Payloads: building (tr_buf + msgpack-c's packer) and reading (tr_msg). */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

void tr_buf_init(tr_buf *b) {
  if (!b) return;
  b->data = b->inline_;
  b->len = 0;
  b->cap = sizeof b->inline_;
}

void tr_buf_reset(tr_buf *b) {
  if (b) b->len = 0;
}

void tr_buf_free(tr_buf *b) {
  if (!b) return;
  if (b->data && b->data != b->inline_) free(b->data);
  tr_buf_init(b);
}

int tr__buf_reserve(tr_buf *b, size_t extra) {
  if (b->data == NULL) tr_buf_init(b);
  /* the limit first: a buffer that doubled past it must not keep growing */
  if (b->len + extra > TR_MAX_PAYLOAD) return TR_EBADVALUE;
  if (b->len + extra <= b->cap) return 0;
  size_t cap = b->cap * 2;
  while (cap < b->len + extra) cap *= 2;
  /* never past the limit (what is below it still fits): a buffer's cap
   * bounds what may be written, so tr_pack_int tests one of the two */
  if (cap > TR_MAX_PAYLOAD) cap = TR_MAX_PAYLOAD;
  char *p;
  if (b->data == b->inline_) {
    p = malloc(cap);
    if (p) memcpy(p, b->data, b->len);
  } else {
    p = realloc(b->data, cap);
  }
  if (!p) return TR_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int tr__buf_write(void *data, const char *buf, size_t len) {
  tr_buf *b = data;
  if (len == 0) return 0; /* buf may be NULL (the empty string): no memcpy */
  if (tr__buf_reserve(b, len)) return -1;
  memcpy(b->data + b->len, buf, len);
  b->len += len;
  return 0;
}

void tr__packer(msgpack_packer *pk, tr_buf *b) { msgpack_packer_init(pk, b, tr__buf_write); }

void tr__addr_be(tr_addr a, char out[8]) {
  for (int i = 7; i >= 0; i--, a >>= 8) out[i] = (char)(a & 0xFF);
}

tr_addr tr__addr_from_be(const char *p) {
  tr_addr a = 0;
  for (int i = 0; i < 8; i++) a = (a << 8) | (unsigned char)p[i];
  return a;
}

#define PACK(b, call)                 \
  do {                                \
    if (!(b)) return TR_EINVAL;       \
    msgpack_packer pk;                \
    tr__packer(&pk, (b));             \
    return call ? TR_ENOMEM : 0;      \
  } while (0)

int tr_pack_nil(tr_buf *b) { PACK(b, msgpack_pack_nil(&pk)); }
int tr_pack_bool(tr_buf *b, int v) {
  PACK(b, (v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)));
}
/* The most common value: written straight into the buffer, byte for byte
 * what msgpack_pack_int64 writes (tests/c/test_values.c compares them), with
 * no packer and no write callback. A failure is TR_ENOMEM, as through the
 * packer. */
static __attribute__((noinline)) int pack_int_grow(tr_buf *b, int64_t v) {
  if (!b) return TR_EINVAL;
  unsigned char t[9];
  size_t n = tr__put_int(t, v);
  if (tr__buf_reserve(b, n)) return TR_ENOMEM;
  memcpy(b->data + b->len, t, n);
  b->len += n;
  return 0;
}
/* (the buffer's growth out of line: the usual case, room in place, needs
 * no stack frame) */
int tr_pack_int(tr_buf *b, int64_t v) {
  /* (a buffer without data, a zeroed one, has cap 0: the slow path; cap
   * never exceeds TR_MAX_PAYLOAD, see tr__buf_reserve) */
  if (b && b->len + 9 <= b->cap) {
    b->len += tr__put_int((unsigned char *)b->data + b->len, v);
    return 0;
  }
  return pack_int_grow(b, v);
}
int tr_pack_double(tr_buf *b, double v) { PACK(b, msgpack_pack_double(&pk, v)); }
int tr_pack_lstr(tr_buf *b, const char *s, size_t len) {
  if (!s && len) return TR_EINVAL;
  PACK(b, (msgpack_pack_str(&pk, len) || msgpack_pack_str_body(&pk, s, len)));
}
int tr_pack_str(tr_buf *b, const char *s) {
  if (!s) return TR_EINVAL;
  return tr_pack_lstr(b, s, strlen(s));
}
int tr_pack_addr(tr_buf *b, tr_addr a) {
  char be[8];
  tr__addr_be(a, be);
  PACK(b, msgpack_pack_ext_with_body(&pk, be, 8, TR_EXT_ADDR));
}
int tr_pack_array(tr_buf *b, uint32_t n) { PACK(b, msgpack_pack_array(&pk, n)); }
int tr_pack_map(tr_buf *b, uint32_t n) { PACK(b, msgpack_pack_map(&pk, n)); }

/* Count the values of one container level in a format: "[ii{sd}]" -> 3 from
 * the position after '['. */
static int fmt_count(const char *f, char close) {
  int n = 0, depth = 0;
  for (; *f; f++) {
    if (*f == '[' || *f == '{') {
      if (depth == 0) n++;
      depth++;
    } else if (*f == ']' || *f == '}') {
      if (depth == 0) return *f == close ? n : -1;
      depth--;
    } else if (*f == ' ') {
      continue;
    } else if (depth == 0) {
      n++;
    }
  }
  return -1;
}

static int pack_vfmt(tr_buf *b, const char *fmt, va_list *ap) {
  int rc = 0, depth = 0; /* depth: to refuse a closer without its opener */
  for (const char *f = fmt; *f && rc == 0; f++) {
    switch (*f) {
      case ' ': break;
      case 'n': rc = tr_pack_nil(b); break;
      case 'b': rc = tr_pack_bool(b, va_arg(*ap, int)); break;
      case 'i': rc = tr_pack_int(b, va_arg(*ap, int)); break;
      case 'I': rc = tr_pack_int(b, va_arg(*ap, int64_t)); break;
      case 'd': rc = tr_pack_double(b, va_arg(*ap, double)); break;
      case 's': rc = tr_pack_str(b, va_arg(*ap, const char *)); break;
      case 'S': {
        const char *s = va_arg(*ap, const char *);
        size_t len = va_arg(*ap, size_t);
        rc = tr_pack_lstr(b, s, len);
        break;
      }
      case 'a': rc = tr_pack_addr(b, va_arg(*ap, tr_addr)); break;
      case '[': {
        int n = fmt_count(f + 1, ']');
        rc = n < 0 ? TR_EINVAL : tr_pack_array(b, (uint32_t)n);
        depth++;
        break;
      }
      case '{': {
        int n = fmt_count(f + 1, '}');
        rc = (n < 0 || n % 2) ? TR_EINVAL : tr_pack_map(b, (uint32_t)n / 2);
        depth++;
        break;
      }
      case ']': case '}': rc = depth-- > 0 ? 0 : TR_EINVAL; break;
      default: rc = TR_EINVAL;
    }
  }
  return rc;
}

int tr_pack_fmt(tr_buf *b, const char *fmt, ...) {
  if (!b || !fmt) return TR_EINVAL;
  va_list ap;
  va_start(ap, fmt);
  int rc = pack_vfmt(b, fmt, &ap);
  va_end(ap);
  return rc;
}

int tr__pack_vfmt(tr_buf *b, const char *fmt, va_list *ap) { return pack_vfmt(b, fmt, ap); }

/* ---- reading -------------------------------------------------------------------- */
/* Checks that data[0..len) is a sequence of complete MessagePack values
 * without building anything. msgpack_unpack allocates a container's elements
 * from its declared count before reading them, so 5 bytes declaring a map of
 * 4 billion entries would ask for ~100 GB; after this walk every declared
 * element is known to exist, so decoding allocates O(len). One pass, no
 * recursion: `pending` counts the values still to read (each needs at least
 * a byte, which bounds it). The same walk finds the owned addresses of a
 * payload for the references its envelope holds (tr__payload_owned: fn for
 * each). Returns how many it found (always 0 for the check), or -1. */
static inline __attribute__((always_inline)) int payload_walk(const char *data, size_t len,
                                                              void (*fn)(void *, tr_addr),
                                                              void *ud) {
  int owned = 0;
  const unsigned char *p = (const unsigned char *)data;
  size_t off = 0, pending = 0;
  while (off < len || pending) {
    if (off >= len) return -1;
    if (pending == 0) pending = 1;
    pending--;
    unsigned b = p[off++];
    uint64_t skip = 0, items = 0;
    size_t lenbytes = 0;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) {
      if (b == 0xc1) return -1; /* never used */
    } else if (b <= 0x8f) {
      items = 2u * (b & 0x0f);
    } else if (b <= 0x9f) {
      items = b & 0x0f;
    } else if (b <= 0xbf) {
      skip = b & 0x1f;
    } else {
      switch (b) {
        case 0xc4: case 0xd9: lenbytes = 1; break;          /* bin8, str8 */
        case 0xc5: case 0xda: lenbytes = 2; break;          /* bin16, str16 */
        case 0xc6: case 0xdb: lenbytes = 4; break;          /* bin32, str32 */
        case 0xc7: lenbytes = 1; skip = 1; break;           /* ext8 (+type) */
        case 0xc8: lenbytes = 2; skip = 1; break;
        case 0xc9: lenbytes = 4; skip = 1; break;
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;                         /* fixext 1..16 (+type) */
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7:                                          /* fixext 8: addresses */
          if (fn && len - off >= 9 && p[off] == TR_EXT_OWNED) {
            fn(ud, tr__addr_from_be((const char *)p + off + 1));
            owned++;
          }
          skip = 9;
          break;
        case 0xd8: skip = 17; break;
        case 0xdc: case 0xde: lenbytes = 2; break;          /* array16, map16 */
        case 0xdd: case 0xdf: lenbytes = 4; break;          /* array32, map32 */
        default: return -1;
      }
    }
    if (lenbytes) {
      if (len - off < lenbytes) return -1;
      uint64_t n = 0;
      for (size_t k = 0; k < lenbytes; k++) n = (n << 8) | p[off++];
      if (b == 0xdc || b == 0xdd) items = n;
      else if (b == 0xde || b == 0xdf) items = 2 * n;
      else skip += n;
    }
    if (skip > len - off) return -1;
    off += (size_t)skip;
    if (items > len - off || pending + items > len - off) return -1;
    pending += (size_t)items;
  }
  return owned;
}

int tr__payload_check(const char *data, size_t len) {
  return payload_walk(data, len, NULL, NULL);
}

int tr__payload_owned(const char *data, size_t len, void (*fn)(void *ud, tr_addr a),
                      void *ud) {
  return payload_walk(data, len, fn, ud);
}

void tr__msg_zone_free(tr_msg *m) {
  if (m->zone_init) msgpack_zone_destroy(&m->zone_storage);
  m->zone_init = 0;
}

int tr__msg_parse(tr_msg *m) {
  if (m->parsed) return m->parsed;
  m->parsed = 1;
  if (m->len == 0) return 1;
  /* scalars only (the common case): no check pass, no zone (locals: the
   * objects written must not make the compiler reload m's fields) */
  size_t off = 0, len = m->len;
  const char *data = m->data;
  int n = 0;
  while (off < len && n < TR_MSG_MAXV && tr__scalar_next(data, len, &off, &m->v[n])) n++;
  m->n = n;
  if (off == m->len) return 1;
  m->n = 0; /* a container, more values than fit in place, or corrupt: the general path */
  if (tr__payload_check(m->data, m->len)) {
    m->parsed = -1;
    return -1;
  }
  msgpack_zone_init(&m->zone_storage, 1024);
  m->zone_init = 1;
  m->zone = &m->zone_storage;
  off = 0;
  size_t cap = TR_MSG_MAXV;
  while (off < m->len) {
    if ((size_t)m->n == cap) { /* more values than fit in place: a bigger array, in the zone */
      msgpack_object *w = cap <= (size_t)INT_MAX / 2
                              ? msgpack_zone_malloc(m->zone, 2 * cap * sizeof *w)
                              : NULL;
      if (!w) {
        m->parsed = -1;
        m->n = 0;
        return -1;
      }
      memcpy(w, m->v, cap * sizeof *w);
      m->v = w;
      cap *= 2;
    }
    msgpack_unpack_return r = msgpack_unpack(m->data, m->len, &off, m->zone, &m->v[m->n]);
    if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
      m->parsed = -1;
      m->n = 0;
      return -1;
    }
    m->n++;
  }
  return 1;
}

/* inline, like obj_type: each reader is a handful of tests once parsed */
static inline __attribute__((always_inline)) const msgpack_object *msg_at(const tr_msg *cm,
                                                                          int i) {
  tr_msg *m = (tr_msg *)cm;
  if (!m || (m->parsed <= 0 && tr__msg_parse_one(m) < 0) || i < 0 || i >= m->n) return NULL;
  return &m->v[i];
}

int tr_msg_count(const tr_msg *cm) {
  tr_msg *m = (tr_msg *)cm;
  if (!m || tr__msg_parse(m) < 0) return 0;
  return m->n;
}

static inline __attribute__((always_inline)) tr_type obj_type(const msgpack_object *o) {
  if (!o) return TR_T_NONE;
  switch (o->type) {
    case MSGPACK_OBJECT_NIL: return TR_T_NIL;
    case MSGPACK_OBJECT_BOOLEAN: return TR_T_BOOL;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      return o->via.u64 > INT64_MAX ? TR_T_FLOAT : TR_T_INT;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return TR_T_INT;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return TR_T_FLOAT;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: return TR_T_STR;
    case MSGPACK_OBJECT_ARRAY: return TR_T_ARRAY;
    case MSGPACK_OBJECT_MAP: return TR_T_MAP;
    case MSGPACK_OBJECT_EXT:
      /* TR_EXT_ADDR, TR_EXT_WEAK or TR_EXT_OWNED */
      return (uint8_t)(o->via.ext.type - TR_EXT_ADDR) <= TR_EXT_OWNED - TR_EXT_ADDR &&
                     o->via.ext.size == 8
                 ? TR_T_ADDR
                 : TR_T_OTHER;
  }
  return TR_T_OTHER;
}

tr_type tr_msg_type(const tr_msg *m, int i) { return obj_type(msg_at(m, i)); }

/* obj_type(o) == TR_T_INT without its switch: the commonest reader (o not NULL) */
static inline __attribute__((always_inline)) int obj_int_at(const msgpack_object *o,
                                                            int64_t *out) {
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 > INT64_MAX) return TR_EBADVALUE;
  } else if (o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER) {
    return TR_EBADVALUE;
  }
  if (out) *out = o->via.i64;
  return 0;
}

static inline __attribute__((always_inline)) int obj_int(const msgpack_object *o, int64_t *out) {
  return o ? obj_int_at(o, out) : TR_EBADVALUE;
}

static int obj_str(const msgpack_object *o, const char **p, size_t *len) {
  if (obj_type(o) != TR_T_STR) return TR_EBADVALUE;
  if (p) *p = o->via.str.ptr ? o->via.str.ptr : ""; /* msgpack leaves NULL for "" */
  if (len) *len = o->via.str.size;
  return 0;
}

static __attribute__((noinline)) int msg_int_parse(const tr_msg *m, int i, int64_t *out) {
  return obj_int(msg_at(m, i), out);
}
/* (the parse out of line: a read of a parsed payload needs no stack frame) */
int tr_msg_int(const tr_msg *m, int i, int64_t *out) {
  /* (n > 0 only once parsed: tr__msg_parse sets parsed first and n back to
   * 0 on an error, tr__msg_try_one both together) */
  if (m && (unsigned)i < (unsigned)m->n) return obj_int_at(&m->v[i], out);
  return msg_int_parse(m, i, out);
}

int tr_msg_num(const tr_msg *m, int i, double *out) {
  const msgpack_object *o = msg_at(m, i);
  tr_type t = obj_type(o);
  if (t == TR_T_INT) {
    if (out) *out = (double)o->via.i64;
    return 0;
  }
  if (t != TR_T_FLOAT) return TR_EBADVALUE;
  if (out)
    *out = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double)o->via.u64 : o->via.f64;
  return 0;
}

int tr_msg_bool(const tr_msg *m, int i, int *out) {
  const msgpack_object *o = msg_at(m, i);
  if (obj_type(o) != TR_T_BOOL) return TR_EBADVALUE;
  if (out) *out = o->via.boolean;
  return 0;
}

int tr_msg_str(const tr_msg *m, int i, const char **p, size_t *len) {
  return obj_str(msg_at(m, i), p, len);
}

int tr_msg_addr(const tr_msg *m, int i, tr_addr *out) {
  const msgpack_object *o = msg_at(m, i);
  if (obj_type(o) != TR_T_ADDR) return TR_EBADVALUE;
  if (out) *out = tr__addr_from_be(o->via.ext.ptr);
  return 0;
}

static const msgpack_object *field(const tr_msg *m, int i, const char *key) {
  const msgpack_object *o = msg_at(m, i);
  if (!o || o->type != MSGPACK_OBJECT_MAP || !key) return NULL;
  size_t kl = strlen(key);
  for (uint32_t j = 0; j < o->via.map.size; j++) {
    const msgpack_object *k = &o->via.map.ptr[j].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
        (kl == 0 || memcmp(k->via.str.ptr, key, kl) == 0)) /* an empty str's ptr is NULL */
      return &o->via.map.ptr[j].val;
  }
  return NULL;
}

int tr_msg_field_int(const tr_msg *m, int i, const char *key, int64_t *out) {
  return obj_int(field(m, i, key), out);
}

int tr_msg_field_str(const tr_msg *m, int i, const char *key, const char **p,
                     size_t *len) {
  return obj_str(field(m, i, key), p, len);
}

const char *tr_msg_bytes(const tr_msg *m, size_t *len) {
  if (!m) return NULL;
  if (len) *len = m->len;
  return m->data;
}

/* ---- formatting (for logs, the REPL and error messages) ---------------------------- */
static size_t put(char *out, size_t cap, size_t pos, const char *s, size_t n) {
  if (pos < cap) {
    size_t k = cap - pos - 1 < n ? cap - pos - 1 : n;
    memcpy(out + pos, s, k);
    out[pos + k] = 0;
  }
  return pos + n;
}

static size_t putf(char *out, size_t cap, size_t pos, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  return put(out, cap, pos, tmp, n < 0 ? 0 : (size_t)n);
}

static int is_ident(const char *p, size_t n) {
  if (n == 0 || (p[0] >= '0' && p[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

size_t tr__format_object(tr_host *h, const msgpack_object *o, char *out, size_t cap,
                         size_t pos, int depth) {
  if (depth > 16) return put(out, cap, pos, "...", 3);
  switch (o->type) {
    case MSGPACK_OBJECT_NIL: return put(out, cap, pos, "nil", 3);
    case MSGPACK_OBJECT_BOOLEAN:
      return o->via.boolean ? put(out, cap, pos, "true", 4) : put(out, cap, pos, "false", 5);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return putf(out, cap, pos, "%" PRIu64, o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return putf(out, cap, pos, "%" PRId64, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
      char tmp[64];
      snprintf(tmp, sizeof tmp, "%.14g", o->via.f64);
      if (!strpbrk(tmp, ".eEin")) strcat(tmp, ".0");
      return put(out, cap, pos, tmp, strlen(tmp));
    }
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: {
      pos = put(out, cap, pos, "\"", 1);
      for (uint32_t i = 0; i < o->via.str.size; i++) {
        unsigned char c = (unsigned char)o->via.str.ptr[i];
        if (c == '"' || c == '\\') pos = putf(out, cap, pos, "\\%c", c);
        else if (c == '\n') pos = put(out, cap, pos, "\\n", 2);
        else if (c < 32 || c == 127) pos = putf(out, cap, pos, "\\%d", c);
        else pos = put(out, cap, pos, (const char *)&c, 1);
      }
      return put(out, cap, pos, "\"", 1);
    }
    case MSGPACK_OBJECT_ARRAY:
      pos = put(out, cap, pos, "{", 1);
      for (uint32_t i = 0; i < o->via.array.size; i++) {
        if (i) pos = put(out, cap, pos, ", ", 2);
        pos = tr__format_object(h, &o->via.array.ptr[i], out, cap, pos, depth + 1);
      }
      return put(out, cap, pos, "}", 1);
    case MSGPACK_OBJECT_MAP:
      pos = put(out, cap, pos, "{", 1);
      for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (i) pos = put(out, cap, pos, ", ", 2);
        if (k->type == MSGPACK_OBJECT_STR && is_ident(k->via.str.ptr, k->via.str.size)) {
          pos = put(out, cap, pos, k->via.str.ptr, k->via.str.size);
        } else {
          pos = put(out, cap, pos, "[", 1);
          pos = tr__format_object(h, k, out, cap, pos, depth + 1);
          pos = put(out, cap, pos, "]", 1);
        }
        pos = put(out, cap, pos, " = ", 3);
        pos = tr__format_object(h, &o->via.map.ptr[i].val, out, cap, pos, depth + 1);
      }
      return put(out, cap, pos, "}", 1);
    case MSGPACK_OBJECT_EXT:
      if ((o->via.ext.type == TR_EXT_ADDR || o->via.ext.type == TR_EXT_WEAK ||
           o->via.ext.type == TR_EXT_OWNED) &&
          o->via.ext.size == 8) {
        char tmp[128];
        size_t n = tr_addr_format(h, tr__addr_from_be(o->via.ext.ptr), tmp, sizeof tmp);
        return put(out, cap, pos, tmp, n < sizeof tmp ? n : sizeof tmp - 1);
      }
      return putf(out, cap, pos, "<ext %d>", o->via.ext.type);
  }
  return pos;
}

size_t tr_msg_format(const tr_msg *cm, int i, char *out, size_t cap) {
  tr_msg *m = (tr_msg *)cm;
  if (out && cap) out[0] = 0;
  if (!out) cap = 0;
  if (!m) return 0;
  if (tr__msg_parse(m) < 0) return put(out, cap, 0, "<corrupt payload>", 17);
  size_t pos = 0;
  for (int j = (i < 0 ? 0 : i); j < m->n && (i < 0 || j == i); j++) {
    if (j > (i < 0 ? 0 : i)) pos = put(out, cap, pos, ", ", 2);
    pos = tr__format_object(NULL, &m->v[j], out, cap, pos, 0);
  }
  return pos;
}
