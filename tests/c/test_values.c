/* Payloads: tr_buf, tr_pack_* and tr_pack_fmt, the tr_msg readers, and
 * tr_msg_format. Readers are built with the internal tr__msg_init (the same
 * thing the host does before a callback), and also checked through an actor. */
#include "helpers.h"

#include "internal.h"

#include <math.h>

/* A reader over b's bytes. */
typedef struct {
  tr_msg m;
} reader;

static tr_msg *rd(reader *r, const tr_buf *b) {
  tr__msg_init(&r->m, b->data, b->len);
  return &r->m;
}
static void rd_done(reader *r) { tr__msg_done(&r->m); }

/* The tr_buf calls accept NULL (as tr_buf_free must, to be safe to call
 * from any cleanup path). */
static void buf_null_is_harmless(void **state) {
  tr_buf_init(NULL);
  tr_buf_reset(NULL);
  tr_buf_free(NULL);
  assert_int_equal(tr_pack_int(NULL, 1), TR_EINVAL);
  tr_buf b;
  tr_buf_init(&b);
  tr_buf_free(&b);
  tr_buf_free(&b); /* twice: still fine */
  assert_int_equal(b.len, 0);
}

static void buf_init_grow_free(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(b.len, 0);
  assert_non_null(b.data);
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  for (int i = 0; i < 20; i++) assert_int_equal(tr_pack_str(&b, big), 0);
  assert_true(b.len > 20 * 999);
  assert_true(b.data != b.inline_);
  reader r;
  tr_msg *m = rd(&r, &b);
  assert_int_equal(tr_msg_count(m), 20);
  const char *p;
  size_t len;
  assert_int_equal(tr_msg_str(m, 19, &p, &len), 0);
  assert_int_equal(len, 999);
  assert_int_equal(p[998], 'x');
  rd_done(&r);
  tr_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(tr_pack_int(&b, 1), 0);
  assert_int_equal(b.len, 1);
  tr_buf_free(&b);
  tr_buf_free(&b); /* twice is fine */
  assert_int_equal(b.len, 0);
}

/* tr_pack_int writes integers itself (no msgpack-c packer): byte for byte
 * what msgpack_pack_int64 writes, at every encoding boundary and around it,
 * and each reads back as the same integer. */
static int msgpack_write_buf(void *data, const char *buf, size_t len) {
  tr_buf *b = data;
  memcpy(b->data + b->len, buf, len);
  b->len += len;
  return 0;
}

static void pack_int_matches_msgpack(void **state) {
  static const int64_t edges[] = {0, 31, 32, 127, 128, 255, 256, 32767, 32768, 65535, 65536,
                                  INT32_MAX, (int64_t)INT32_MAX + 1, UINT32_MAX,
                                  (int64_t)UINT32_MAX + 1, INT64_MAX, -1, -31, -32, -33,
                                  -127, -128, -129, -32767, -32768, -32769, INT32_MIN,
                                  (int64_t)INT32_MIN - 1, INT64_MIN + 1, INT64_MIN};
  int checked = 0;
  for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k++) {
    for (int64_t d = -2; d <= 2; d++) {
      int64_t v;
      if (__builtin_add_overflow(edges[k], d, &v)) continue;
      tr_buf mine, ref;
      tr_buf_init(&mine);
      tr_buf_init(&ref);
      assert_int_equal(tr_pack_int(&mine, v), 0);
      msgpack_packer pk;
      msgpack_packer_init(&pk, &ref, msgpack_write_buf);
      assert_int_equal(msgpack_pack_int64(&pk, v), 0);
      assert_int_equal(mine.len, ref.len);
      assert_memory_equal(mine.data, ref.data, ref.len);
      reader r;
      int64_t back;
      assert_int_equal(tr_msg_int(rd(&r, &mine), 0, &back), 0);
      assert_true(back == v);
      rd_done(&r);
      checked++;
    }
  }
  assert_true(checked > 100);
  /* appended after other values, and growing a buffer out of its inline part */
  tr_buf b;
  tr_buf_init(&b);
  for (int i = 0; i < 100; i++) assert_int_equal(tr_pack_int(&b, INT64_MIN + i), 0);
  assert_int_equal(b.len, 900);
  assert_true(b.data != b.inline_);
  reader r;
  tr_msg *m = rd(&r, &b);
  assert_int_equal(tr_msg_count(m), 100); /* every one (msg_many_values) */
  int64_t v;
  assert_int_equal(tr_msg_int(m, 31, &v), 0);
  assert_true(v == INT64_MIN + 31);
  assert_int_equal(tr_msg_int(m, 99, &v), 0);
  assert_true(v == INT64_MIN + 99);
  rd_done(&r);
  tr_buf_free(&b);
}

/* The scalar fast path of the reader (tr__scalar_next: one case per integer
 * width) against msgpack_unpack, on random payloads of scalar encodings
 * (every integer and float width, str, bin, fixext 8; sometimes a container
 * or a cut-off value, which must make both give up the same way). */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static size_t rand_payload(unsigned char *p) {
  static const unsigned char tags[] = {0x05, 0x7f, 0xe0, 0xff, 0xc0, 0xc2, 0xc3, 0xcc, 0xcd,
                                       0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb, 0xa3,
                                       0xd9, 0xc4, 0xd7, 0x91, 0x81};
  size_t n = 0, values = 1 + rnd() % 4;
  for (size_t v = 0; v < values; v++) {
    unsigned char t = tags[rnd() % sizeof tags];
    p[n++] = t;
    size_t body = 0;
    switch (t) {
      case 0xcc: case 0xd0: body = 1; break;
      case 0xcd: case 0xd1: body = 2; break;
      case 0xce: case 0xd2: case 0xca: body = 4; break;
      case 0xcf: case 0xd3: case 0xcb: body = 8; break;
      case 0xa3: body = 3; break;
      case 0xd9: case 0xc4: p[n++] = 2; body = 2; break;
      case 0xd7: p[n++] = (unsigned char)(rnd() % 3); body = 8; break;
      case 0x91: case 0x81: p[n++] = 0x01; if (t == 0x81) p[n++] = 0x02; break;
      default: break;
    }
    for (size_t k = 0; k < body; k++) p[n++] = (unsigned char)rnd();
  }
  if (rnd() % 8 == 0 && n > 1) n -= 1 + rnd() % (n - 1); /* cut off */
  return n;
}

static void scalar_parse_matches_msgpack(void **state) {
  unsigned char buf[64];
  int compared = 0;
  for (int iter = 0; iter < 200000; iter++) {
    size_t len = rand_payload(buf);
    tr_msg m;
    tr__msg_init(&m, (const char *)buf, len);
    int rc = tr__msg_parse(&m);
    /* reference: the check pass, then msgpack_unpack value by value */
    msgpack_zone z;
    msgpack_zone_init(&z, 256);
    msgpack_object ref[TR_MSG_MAXV];
    int nref = 0, refrc = 1;
    if (len && tr__payload_check((const char *)buf, len)) {
      refrc = -1;
    } else {
      size_t off = 0;
      while (off < len && nref < TR_MSG_MAXV) {
        msgpack_unpack_return r = msgpack_unpack((const char *)buf, len, &off, &z, &ref[nref]);
        if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
          refrc = -1;
          break;
        }
        nref++;
      }
    }
    assert_int_equal(rc, refrc);
    if (rc > 0) {
      assert_int_equal(m.n, nref);
      for (int k = 0; k < nref; k++) {
        assert_int_equal(m.v[k].type, ref[k].type);
        switch (ref[k].type) {
          case MSGPACK_OBJECT_STR: case MSGPACK_OBJECT_BIN:
            assert_int_equal(m.v[k].via.str.size, ref[k].via.str.size);
            assert_memory_equal(m.v[k].via.str.ptr, ref[k].via.str.ptr, ref[k].via.str.size);
            break;
          case MSGPACK_OBJECT_EXT:
            assert_int_equal(m.v[k].via.ext.type, ref[k].via.ext.type);
            assert_int_equal(m.v[k].via.ext.size, ref[k].via.ext.size);
            assert_memory_equal(m.v[k].via.ext.ptr, ref[k].via.ext.ptr, ref[k].via.ext.size);
            break;
          case MSGPACK_OBJECT_ARRAY: case MSGPACK_OBJECT_MAP:
            assert_int_equal(m.v[k].via.array.size, ref[k].via.array.size);
            break;
          case MSGPACK_OBJECT_BOOLEAN:
            assert_int_equal(m.v[k].via.boolean, ref[k].via.boolean);
            break;
          case MSGPACK_OBJECT_NIL: break;
          default: /* integers and floats: the same 8 bytes */
            assert_memory_equal(&m.v[k].via, &ref[k].via, 8);
        }
      }
      compared++;
    }
    /* the inline first step (one scalar, exactly) agrees */
    tr_msg m1;
    tr__msg_init(&m1, (const char *)buf, len);
    assert_int_equal(tr__msg_parse_one(&m1), rc);
    if (rc > 0) {
      assert_int_equal(m1.n, m.n);
      for (int k = 0; k < m.n; k++) {
        assert_int_equal(m1.v[k].type, m.v[k].type);
        if (m.v[k].type == MSGPACK_OBJECT_STR || m.v[k].type == MSGPACK_OBJECT_BIN) {
          assert_int_equal(m1.v[k].via.str.size, m.v[k].via.str.size);
          assert_ptr_equal(m1.v[k].via.str.ptr, m.v[k].via.str.ptr);
        } else if (m.v[k].type == MSGPACK_OBJECT_EXT) {
          assert_int_equal(m1.v[k].via.ext.type, m.v[k].via.ext.type);
          assert_ptr_equal(m1.v[k].via.ext.ptr, m.v[k].via.ext.ptr);
        } else if (m.v[k].type == MSGPACK_OBJECT_BOOLEAN) {
          assert_int_equal(m1.v[k].via.boolean, m.v[k].via.boolean);
        } else if (m.v[k].type != MSGPACK_OBJECT_ARRAY && m.v[k].type != MSGPACK_OBJECT_MAP &&
                   m.v[k].type != MSGPACK_OBJECT_NIL) {
          assert_memory_equal(&m1.v[k].via, &m.v[k].via, 8);
        }
      }
    }
    tr__msg_done(&m1);
    tr__msg_done(&m);
    msgpack_zone_destroy(&z);
  }
  assert_true(compared > 100000);
}

static void pack_scalars_roundtrip(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_nil(&b), 0);
  assert_int_equal(tr_pack_bool(&b, 1), 0);
  assert_int_equal(tr_pack_bool(&b, 0), 0);
  assert_int_equal(tr_pack_int(&b, -5), 0);
  assert_int_equal(tr_pack_int(&b, INT64_MAX), 0);
  assert_int_equal(tr_pack_int(&b, INT64_MIN), 0);
  assert_int_equal(tr_pack_double(&b, 2.5), 0);
  assert_int_equal(tr_pack_str(&b, "héllo"), 0);
  assert_int_equal(tr_pack_lstr(&b, "a\0b", 3), 0);
  assert_int_equal(tr_pack_addr(&b, UINT64_C(0x0001000000000abc)), 0);
  assert_int_equal(tr_pack_lstr(&b, NULL, 0), 0); /* the empty string */
  reader r;
  tr_msg *m = rd(&r, &b);
  assert_int_equal(tr_msg_count(m), 11);
  assert_int_equal(tr_msg_type(m, 0), TR_T_NIL);
  assert_int_equal(tr_msg_type(m, 1), TR_T_BOOL);
  assert_int_equal(tr_msg_type(m, 3), TR_T_INT);
  assert_int_equal(tr_msg_type(m, 6), TR_T_FLOAT);
  assert_int_equal(tr_msg_type(m, 7), TR_T_STR);
  assert_int_equal(tr_msg_type(m, 9), TR_T_ADDR);
  assert_int_equal(tr_msg_type(m, 11), TR_T_NONE);
  assert_int_equal(tr_msg_type(m, -1), TR_T_NONE);
  int bv;
  assert_int_equal(tr_msg_bool(m, 1, &bv), 0);
  assert_int_equal(bv, 1);
  assert_int_equal(tr_msg_bool(m, 2, &bv), 0);
  assert_int_equal(bv, 0);
  int64_t i;
  assert_int_equal(tr_msg_int(m, 3, &i), 0);
  assert_int_equal(i, -5);
  assert_int_equal(tr_msg_int(m, 4, &i), 0);
  assert_true(i == INT64_MAX);
  assert_int_equal(tr_msg_int(m, 5, &i), 0);
  assert_true(i == INT64_MIN);
  double d;
  assert_int_equal(tr_msg_num(m, 6, &d), 0);
  assert_true(d == 2.5);
  assert_int_equal(tr_msg_num(m, 3, &d), 0); /* integers are numbers too */
  assert_true(d == -5.0);
  const char *p;
  size_t len;
  assert_int_equal(tr_msg_str(m, 7, &p, &len), 0);
  assert_int_equal(len, strlen("héllo"));
  assert_memory_equal(p, "héllo", len);
  assert_int_equal(tr_msg_str(m, 8, &p, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(p, "a\0b", 3);
  tr_addr a;
  assert_int_equal(tr_msg_addr(m, 9, &a), 0);
  assert_true(a == UINT64_C(0x0001000000000abc));
  assert_int_equal(tr_msg_str(m, 10, &p, &len), 0);
  assert_int_equal(len, 0);
  /* the raw bytes are the buffer's */
  size_t blen;
  assert_ptr_equal(tr_msg_bytes(m, &blen), b.data);
  assert_int_equal(blen, b.len);
  rd_done(&r);
  tr_buf_free(&b);
}

static void msg_type_errors(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "sidb", "str", 3, 1.5, 1), 0);
  reader r;
  tr_msg *m = rd(&r, &b);
  int64_t i = 123;
  double d = 0;
  int bv = 9;
  const char *p = NULL;
  size_t len = 77;
  tr_addr a = 5;
  assert_int_equal(tr_msg_int(m, 0, &i), TR_EBADVALUE); /* a string */
  assert_int_equal(i, 123);                             /* untouched */
  assert_int_equal(tr_msg_int(m, 2, &i), TR_EBADVALUE); /* a float is not an integer */
  assert_int_equal(tr_msg_num(m, 0, &d), TR_EBADVALUE);
  assert_int_equal(tr_msg_bool(m, 1, &bv), TR_EBADVALUE);
  assert_int_equal(bv, 9);
  assert_int_equal(tr_msg_str(m, 1, &p, &len), TR_EBADVALUE);
  assert_null(p);
  assert_int_equal(len, 77);
  assert_int_equal(tr_msg_addr(m, 0, &a), TR_EBADVALUE);
  assert_int_equal(a, 5);
  /* missing values */
  assert_int_equal(tr_msg_int(m, 4, &i), TR_EBADVALUE);
  assert_int_equal(tr_msg_str(m, 99, &p, &len), TR_EBADVALUE);
  assert_int_equal(tr_msg_int(m, -1, &i), TR_EBADVALUE);
  /* out pointers are optional */
  assert_int_equal(tr_msg_int(m, 1, NULL), 0);
  assert_int_equal(tr_msg_str(m, 0, NULL, NULL), 0);
  /* no reader at all */
  assert_int_equal(tr_msg_count(NULL), 0);
  assert_int_equal(tr_msg_int(NULL, 0, &i), TR_EBADVALUE);
  assert_int_equal(tr_msg_type(NULL, 0), TR_T_NONE);
  assert_null(tr_msg_bytes(NULL, &len));
  rd_done(&r);
  tr_buf_free(&b);
}

static void pack_fmt_every_code(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "n b i I d s S a", 1, -7, (int64_t)1 << 40, 0.25, "s", "xyz", (size_t)2,
                               (tr_addr)42),
                   0);
  reader r;
  tr_msg *m = rd(&r, &b);
  assert_int_equal(tr_msg_count(m), 8);
  assert_int_equal(tr_msg_type(m, 0), TR_T_NIL);
  int bv;
  int64_t i;
  double d;
  const char *p;
  size_t len;
  tr_addr a;
  assert_int_equal(tr_msg_bool(m, 1, &bv), 0);
  assert_int_equal(bv, 1);
  assert_int_equal(tr_msg_int(m, 2, &i), 0);
  assert_int_equal(i, -7);
  assert_int_equal(tr_msg_int(m, 3, &i), 0);
  assert_true(i == (int64_t)1 << 40);
  assert_int_equal(tr_msg_num(m, 4, &d), 0);
  assert_true(d == 0.25);
  assert_int_equal(tr_msg_str(m, 5, &p, &len), 0);
  assert_int_equal(len, 1);
  assert_int_equal(tr_msg_str(m, 6, &p, &len), 0);
  assert_int_equal(len, 2);
  assert_memory_equal(p, "xy", 2);
  assert_int_equal(tr_msg_addr(m, 7, &a), 0);
  assert_int_equal(a, 42);
  rd_done(&r);
  tr_buf_free(&b);
}

static void pack_fmt_nested(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "[i [s s] {s i s [i i]}] {s {s b}} []{}", 1, "a", "b", "k", 2,
                               "list", 3, 4, "outer", "inner", 1),
                   0);
  reader r;
  tr_msg *m = rd(&r, &b);
  assert_int_equal(tr_msg_count(m), 4);
  assert_int_equal(tr_msg_type(m, 0), TR_T_ARRAY);
  assert_int_equal(tr_msg_type(m, 1), TR_T_MAP);
  assert_int_equal(tr_msg_type(m, 2), TR_T_ARRAY);
  assert_int_equal(tr_msg_type(m, 3), TR_T_MAP);
  char text[256];
  tr_msg_format(m, -1, text, sizeof text);
  assert_string_equal(text, "{1, {\"a\", \"b\"}, {k = 2, list = {3, 4}}}, {outer = {inner = true}}, {}, {}");
  /* the structure as msgpack-c sees it */
  const msgpack_object *o = &m->v[0];
  assert_int_equal(o->via.array.size, 3);
  assert_int_equal(o->via.array.ptr[2].type, MSGPACK_OBJECT_MAP);
  assert_int_equal(o->via.array.ptr[2].via.map.size, 2);
  rd_done(&r);
  tr_buf_free(&b);
}

static void pack_fmt_bad_formats(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "x", 1), TR_EINVAL);
  assert_int_equal(tr_pack_fmt(&b, "[i", 1), TR_EINVAL);    /* unclosed */
  assert_int_equal(tr_pack_fmt(&b, "{s}", "k"), TR_EINVAL); /* a key without a value */
  assert_int_equal(tr_pack_fmt(&b, "[i}", 1), TR_EINVAL);   /* mismatched */
  assert_int_equal(tr_pack_fmt(&b, "i]", 1), TR_EINVAL);    /* stray closer */
  assert_int_equal(tr_pack_fmt(&b, "[i]]", 1), TR_EINVAL);  /* one closer too many */
  assert_int_equal(tr_pack_fmt(&b, "{s i}}", "k", 1), TR_EINVAL);
  assert_int_equal(tr_pack_fmt(NULL, "i", 1), TR_EINVAL);
  assert_int_equal(tr_pack_fmt(&b, NULL), TR_EINVAL);
  assert_int_equal(tr_pack_fmt(&b, "s", (const char *)NULL), TR_EINVAL);
  /* an empty format packs nothing */
  tr_buf_reset(&b);
  assert_int_equal(tr_pack_fmt(&b, ""), 0);
  assert_int_equal(b.len, 0);
  tr_buf_free(&b);
}

static void pack_null_arguments(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_nil(NULL), TR_EINVAL);
  assert_int_equal(tr_pack_int(NULL, 1), TR_EINVAL);
  assert_int_equal(tr_pack_str(NULL, "x"), TR_EINVAL);
  assert_int_equal(tr_pack_str(&b, NULL), TR_EINVAL);
  assert_int_equal(tr_pack_lstr(&b, NULL, 3), TR_EINVAL);
  assert_int_equal(tr_pack_array(NULL, 1), TR_EINVAL);
  assert_int_equal(tr_pack_map(NULL, 1), TR_EINVAL);
  assert_int_equal(b.len, 0);
  tr_buf_free(&b);
}

static void msg_map_fields(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "{s i s s s d i s} i", "n", 5, "name", "bob", "f", 1.5, 7,
                               "intkey", 3),
                   0);
  reader r;
  tr_msg *m = rd(&r, &b);
  int64_t i;
  const char *p;
  size_t len;
  assert_int_equal(tr_msg_field_int(m, 0, "n", &i), 0);
  assert_int_equal(i, 5);
  assert_int_equal(tr_msg_field_str(m, 0, "name", &p, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(p, "bob", 3);
  assert_int_equal(tr_msg_field_int(m, 0, "name", &i), TR_EBADVALUE); /* wrong type */
  assert_int_equal(tr_msg_field_str(m, 0, "n", &p, &len), TR_EBADVALUE);
  assert_int_equal(tr_msg_field_int(m, 0, "f", &i), TR_EBADVALUE);
  assert_int_equal(tr_msg_field_int(m, 0, "missing", &i), TR_EBADVALUE);
  assert_int_equal(tr_msg_field_int(m, 1, "n", &i), TR_EBADVALUE);  /* not a map */
  assert_int_equal(tr_msg_field_int(m, 5, "n", &i), TR_EBADVALUE);  /* no value 5 */
  assert_int_equal(tr_msg_field_int(m, 0, NULL, &i), TR_EBADVALUE);
  char text[128];
  tr_msg_format(m, 0, text, sizeof text);
  assert_string_equal(text, "{n = 5, name = \"bob\", f = 1.5, [7] = \"intkey\"}");
  rd_done(&r);
  tr_buf_free(&b);
}

static void msg_format_text(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "n b i d d s s", 0, -12, 2.0, -0.5, "q\"uo\\te", "a\nb"), 0);
  assert_int_equal(tr_pack_lstr(&b, "\x01", 1), 0);
  assert_int_equal(tr_pack_fmt(&b, "{s i}", "not an ident", 1), 0);
  reader r;
  tr_msg *m = rd(&r, &b);
  char text[256];
  size_t n = tr_msg_format(m, -1, text, sizeof text);
  const char *want =
      "nil, false, -12, 2.0, -0.5, \"q\\\"uo\\\\te\", \"a\\nb\", \"\\1\", {[\"not an ident\"] = 1}";
  assert_string_equal(text, want);
  assert_int_equal(n, strlen(want));
  /* one value */
  tr_msg_format(m, 2, text, sizeof text);
  assert_string_equal(text, "-12");
  tr_msg_format(m, 3, text, sizeof text);
  assert_string_equal(text, "2.0");
  /* a missing index: empty */
  n = tr_msg_format(m, 50, text, sizeof text);
  assert_int_equal(n, 0);
  assert_string_equal(text, "");
  rd_done(&r);
  tr_buf_free(&b);
}

static void msg_format_truncates(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "s i", "abcdefghij", 12345), 0);
  reader r;
  tr_msg *m = rd(&r, &b);
  char small[6];
  memset(small, '#', sizeof small);
  size_t n = tr_msg_format(m, -1, small, sizeof small);
  assert_int_equal(n, strlen("\"abcdefghij\", 12345"));
  assert_string_equal(small, "\"abcd");
  /* no buffer: only the length */
  assert_int_equal(tr_msg_format(m, -1, NULL, 0), n);
  char one[1] = {'#'};
  tr_msg_format(m, -1, one, 1);
  assert_int_equal(one[0], 0);
  rd_done(&r);
  tr_buf_free(&b);
}

static void msg_corrupt_payload(void **state) {
  const char bad[] = {(char)0xc1}; /* never used in MessagePack */
  tr_msg m;
  tr__msg_init(&m, bad, sizeof bad);
  assert_int_equal(tr_msg_count(&m), 0);
  assert_int_equal(tr_msg_type(&m, 0), TR_T_NONE);
  int64_t i;
  assert_int_equal(tr_msg_int(&m, 0, &i), TR_EBADVALUE);
  char text[64];
  tr_msg_format(&m, -1, text, sizeof text);
  assert_string_equal(text, "<corrupt payload>");
  tr__msg_done(&m);
  /* a truncated value */
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, "truncated string");
  tr__msg_init(&m, b.data, b.len - 3);
  assert_int_equal(tr_msg_count(&m), 0);
  tr__msg_done(&m);
  /* one integer then a corrupt byte, or cut short: no value 0 either (the
   * inline reading of a lone scalar must not answer for these) */
  tr_buf_reset(&b);
  tr_pack_int(&b, 100000);
  tr__msg_init(&m, b.data, b.len - 1);
  assert_int_equal(tr_msg_int(&m, 0, &i), TR_EBADVALUE);
  tr__msg_done(&m);
  tr_buf_reset(&b);
  tr_pack_int(&b, 100000);
  b.data[b.len++] = (char)0xc1;
  tr__msg_init(&m, b.data, b.len);
  assert_int_equal(tr_msg_int(&m, 0, &i), TR_EBADVALUE);
  assert_int_equal(tr_msg_count(&m), 0);
  tr__msg_done(&m);
  tr_buf_reset(&b);
  tr_pack_int(&b, 100000);
  tr__msg_init(&m, b.data, b.len);
  assert_int_equal(tr_msg_int(&m, 0, &i), 0);
  assert_int_equal(i, 100000);
  assert_int_equal(tr_msg_count(&m), 1);
  tr__msg_done(&m);
  tr_buf_free(&b);
}

/* Any number of values, not just the TR_MSG_MAXV read in place: scalars
 * only, with a container among them, and a corrupt byte after 40. */
static void msg_many_values(void **state) {
  tr_buf b;
  tr_buf_init(&b);
  reader r;
  for (int total = TR_MSG_MAXV - 1; total <= 3 * TR_MSG_MAXV + 5; total += 17) {
    tr_buf_reset(&b);
    for (int k = 0; k < total; k++) tr_pack_int(&b, 1000 + k);
    tr_msg *m = rd(&r, &b);
    assert_int_equal(tr_msg_count(m), total);
    int64_t i;
    for (int k = 0; k < total; k++) {
      assert_int_equal(tr_msg_int(m, k, &i), 0);
      assert_int_equal(i, 1000 + k);
    }
    assert_int_equal(tr_msg_type(m, total), TR_T_NONE);
    rd_done(&r);
  }
  /* a map at value 70 (the general path from the start) */
  tr_buf_reset(&b);
  for (int k = 0; k < 70; k++) tr_pack_str(&b, "v");
  assert_int_equal(tr_pack_fmt(&b, "{si}", "k", 7), 0);
  tr_pack_int(&b, 71);
  tr_msg *m = rd(&r, &b);
  assert_int_equal(tr_msg_count(m), 72);
  assert_int_equal(tr_msg_type(m, 70), TR_T_MAP);
  int64_t i;
  assert_int_equal(tr_msg_int(m, 71, &i), 0);
  assert_int_equal(i, 71);
  char text[64];
  assert_true(tr_msg_format(m, 69, text, sizeof text) > 0);
  assert_string_equal(text, "\"v\"");
  rd_done(&r);
  /* a corrupt byte after 40 good values: the whole payload is refused */
  tr_buf_reset(&b);
  for (int k = 0; k < 40; k++) tr_pack_int(&b, k);
  b.data[b.len++] = (char)0xc1;
  m = rd(&r, &b);
  assert_int_equal(tr_msg_count(m), 0);
  assert_int_equal(tr_msg_int(m, 0, &i), TR_EBADVALUE);
  rd_done(&r);
  tr_buf_free(&b);
}

static void msg_unsigned_and_other(void **state) {
  /* a uint64 above INT64_MAX reads as a number, not an integer */
  const char u64[] = {(char)0xcf, (char)0xff, (char)0xff, (char)0xff, (char)0xff,
                      (char)0xff, (char)0xff, (char)0xff, (char)0xff};
  tr_msg m;
  tr__msg_init(&m, u64, sizeof u64);
  assert_int_equal(tr_msg_type(&m, 0), TR_T_FLOAT);
  int64_t i;
  double d;
  assert_int_equal(tr_msg_int(&m, 0, &i), TR_EBADVALUE);
  assert_int_equal(tr_msg_num(&m, 0, &d), 0);
  assert_true(d > 1.8e19);
  tr__msg_done(&m);
  /* an extension that is not an address */
  const char ext[] = {(char)0xd4, 5, 0};
  tr__msg_init(&m, ext, sizeof ext);
  assert_int_equal(tr_msg_type(&m, 0), TR_T_OTHER);
  char text[32];
  tr_msg_format(&m, -1, text, sizeof text);
  assert_string_equal(text, "<ext 5>");
  tr__msg_done(&m);
}

/* An owned actor's address as the Lua encoder writes it (extension type 3)
 * reads and prints as a strong address; the walk that finds the references
 * an envelope holds sees it at any depth, and only it. */
static void put_ext_addr(tr_buf *b, int type, tr_addr a) {
  char raw[10];
  raw[0] = (char)0xd7;
  raw[1] = (char)type;
  tr__addr_be(a, raw + 2);
  assert_int_equal(tr__buf_write(b, raw, sizeof raw), 0);
}
static tr_addr g_seen[8];
static int g_nseen;
static void seen(void *ud, tr_addr a) {
  (void)ud;
  if (g_nseen < 8) g_seen[g_nseen] = a;
  g_nseen++;
}
static void msg_owned_address(void **state) {
  tr_addr a = 0x0000000000000007ull, b = 0x0001000000000009ull;
  tr_buf buf, plain;
  tr_buf_init(&buf);
  tr_buf_init(&plain);
  put_ext_addr(&buf, TR_EXT_OWNED, a);        /* 0: owned */
  tr_pack_array(&buf, 2);                     /* 1: {owned, {k = owned}} */
  put_ext_addr(&buf, TR_EXT_OWNED, b);
  tr_pack_map(&buf, 1);
  tr_pack_str(&buf, "k");
  put_ext_addr(&buf, TR_EXT_OWNED, a);
  tr_pack_addr(&buf, b);                      /* 2: strong, not owned */
  put_ext_addr(&buf, TR_EXT_WEAK, a);         /* 3: weak */
  reader r;
  tr_msg *m = rd(&r, &buf);
  assert_int_equal(tr_msg_count(m), 4);
  assert_int_equal(tr_msg_type(m, 0), TR_T_ADDR);
  tr_addr got = 0;
  assert_int_equal(tr_msg_addr(m, 0, &got), 0);
  assert_true(got == a);
  char t1[128], t2[128];
  tr_msg_format(m, 0, t1, sizeof t1);
  tr_pack_addr(&plain, a);
  reader r2;
  tr_msg_format(rd(&r2, &plain), 0, t2, sizeof t2);
  assert_string_equal(t1, t2); /* printed as the strong address it is */
  rd_done(&r2);
  rd_done(&r);
  assert_int_equal(tr__payload_check(buf.data, buf.len), 0);
  g_nseen = 0;
  assert_int_equal(tr__payload_owned(buf.data, buf.len, seen, NULL), 3);
  assert_int_equal(g_nseen, 3);
  assert_true(g_seen[0] == a && g_seen[1] == b && g_seen[2] == a);
  /* cut short: not a payload, nothing to count on */
  assert_int_equal(tr__payload_owned(buf.data, buf.len - 3, NULL, NULL), -1);
  tr_buf_free(&buf);
  tr_buf_free(&plain);
}

/* The same values travel through an actor and come back unchanged. */
static void values_through_an_actor(void **state) {
  reset_globals();
  tr_host *h = new_host(NULL, 0, 0);
  tr_addr a = spawn_counter(h, 0);
  tr_buf b;
  tr_buf_init(&b);
  assert_int_equal(tr_pack_fmt(&b, "i s [b n d] {s a}", 1, "two", 1, 3.5, "who", a), 0);
  reply_rec r = {0};
  assert_int_equal(tr_call(h, TR_NOADDR, a, "echo", &b, TR_TIMEOUT_DEFAULT, rec_reply, &r), 0);
  tr_host_run(h);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.status, TR_OK);
  char want[256];
  snprintf(want, sizeof want, "1, \"two\", {true, nil, 3.5}, {who = <actor %llu>}",
           (unsigned long long)TR_ADDR_SERIAL(a));
  assert_string_equal(r.s, want);
  /* value 1 of the reply is the argument count */
  assert_non_null(strstr(r.text, "}\", 4"));
  tr_buf_free(&b);
  tr_host_free(h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(buf_null_is_harmless),
      cmocka_unit_test(buf_init_grow_free),
      cmocka_unit_test(pack_scalars_roundtrip),
      cmocka_unit_test(pack_int_matches_msgpack),
      cmocka_unit_test(scalar_parse_matches_msgpack),
      cmocka_unit_test(msg_type_errors),
      cmocka_unit_test(pack_fmt_every_code),
      cmocka_unit_test(pack_fmt_nested),
      cmocka_unit_test(pack_fmt_bad_formats),
      cmocka_unit_test(pack_null_arguments),
      cmocka_unit_test(msg_map_fields),
      cmocka_unit_test(msg_format_text),
      cmocka_unit_test(msg_format_truncates),
      cmocka_unit_test(msg_corrupt_payload),
      cmocka_unit_test(msg_unsigned_and_other),
      cmocka_unit_test(msg_many_values),
      cmocka_unit_test(msg_owned_address),
      cmocka_unit_test(values_through_an_actor),
  };
  RUN_TESTS(tests, argc, argv);
}
