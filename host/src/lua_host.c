/* The Lua side of the host: the `troupe` module, Lua actors (one coroutine per
 * running handler), and the Lua <-> MessagePack value codec. */
#include "internal.h"

#include <dlfcn.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MT_ADDR "troupe.address"
#define MT_ADDR_OWNED "troupe.address.owned"
#define MT_WEAK "troupe.weak"
#define MT_ERROR "troupe.error"
#define MT_FAIL "troupe.failure"
#define MT_TOKEN "troupe.token"
#define MT_TIMER "troupe.timer"
#define MT_CBEH "troupe.cbehaviour"
#define MT_STATE "troupe.state"

#define CO_POOL 64
#define MAX_DEPTH 32

extern const char tr__prelude_lua[];
extern const char tr__supervisor_lua[];

typedef struct tr_lbeh {
  struct tr_lbeh *next;
  char *name;
  int ref; /* the behaviour table */
  int errors_reply; /* _ON_ERROR = "reply": a raising handler does not crash it */
} tr_lbeh;

typedef struct tr_lstate {
  tr_host *h;
  tr_sched *s;   /* the scheduler whose Lua actors this state runs */
  lua_State *L;
  int owns_host; /* created by require "troupe" in a plain interpreter */
  int cache_ref; /* weak table: addr -> address userdata */
  tr_addr own_max; /* the highest address of this scheduler's actors ever put
                    * in the cache: a spawn's newer one cannot be there */
  int behs_ref;  /* table: behaviour table -> lightuserdata tr_lbeh (strong:
                  * a behaviour table once used is never collected) */
  const void *last_beh_p; /* the behaviour table lbeh_for_table found last, */
  struct tr_lbeh *last_beh; /* ... and its record */
  int files_ref; /* table: path -> behaviour table */
  int named_ref; /* table: name -> behaviour table (troupe.behaviour(name, t)) */
  int proxies_ref; /* weak-keyed: env -> proxy env */
  int init_ref;  /* prelude's init runner */
  int stop_ref;  /* prelude's stop runner */
  int start_ref; /* prelude's on_start runner (after an init run directly) */
  int k_init_ref, k_on_start_ref; /* the strings "init" and "on_start" */
  struct tr_lmem *mem; /* allocation accounting (malloc'd: outlives the state) */
  int module_ref;
  lua_State *pool[CO_POOL];
  int pool_ref[CO_POOL];
  const struct tr_lbeh *pool_lb[CO_POOL]; /* whose behaviour table is in slot 1 (co_get) */
  const char *pool_nm[CO_POOL]; /* the name in slot 2 (NULL: nil) */
  size_t pool_nl[CO_POOL];
  lua_State *nm_co; /* the coroutine whose slot 2 tr__lua_deliver set last, */
  const char *nm_p; /* ... the bytes of that name */
  size_t nm_l;
  int pool_n;
  /* registry slots for actors' self tables (self_ref_new): reserved in
   * blocks, a free one holds false */
  int *sref;
  int sref_n, sref_cap;
  int sref_next; /* the registry's border + 1 as last seen (0: not yet) */
  tr_lbeh *lbehs;
  msgpack_zone zone;
  /* metatables compared by pointer: luaL_getmetatable would look their
   * names up (with a strcmp in Lua's string cache) on every message */
  int mtref[5];
  const void *mtp[5];
  struct encoder *enc; /* reused by encode_values when not busy */
  int enc_busy;
  /* the coroutine the running handler resumes now (the innermost, through
   * the troupe coroutine.resume/wrap), and whether a wait there can be
   * passed up to the scheduler (no C call boundary at any level above) */
  lua_State *nest;
  int nest_ok;
  /* method names as Lua strings (registry refs), direct-mapped: interning a
   * name from an envelope (hash, string table, GC check) cost ~140
   * instructions per message */
  struct {
    int ref; /* 0: empty */
    uint8_t len;
    char name[23];
  } names[64];
} tr_lstate;

enum { MTI_ADDR = 0, MTI_OWNED, MTI_WEAK, MTI_ERROR, MTI_FAIL };

static void set_mt(tr_lstate *ls, lua_State *L, int i) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->mtref[i]);
  lua_setmetatable(L, -2);
}

/* Which of our metatables (MTI_*) the value at idx has, or -1. */
static int mt_of(tr_lstate *ls, lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return -1;
  const void *p = lua_topointer(L, -1);
  lua_pop(L, 1);
  for (int i = 0; i < 5; i++)
    if (ls->mtp[i] == p) return i;
  return -1;
}

/* Allocation accounting. Kept outside the Lua state so that it stays valid
 * while lua_close frees the state's own blocks. */
typedef struct tr_lmem {
  tr_actor *charge; /* the actor allocations are charged to */
  lua_Alloc orig_alloc;
  void *orig_ud;
  int64_t total;    /* bytes the state holds (as seen since attach); written by
                     * its scheduler's thread only, read by the others */
  size_t hostcap;
  tr_host *h;       /* the host cap is shared by the schedulers' states */
  tr_arena *arena;  /* the scheduler's, for a state the host made (and closes) */
} tr_lmem;

/* Lua bytes held by all of the host's states (others' figures are recent). */
static int64_t host_lua_bytes(tr_host *h) {
  int64_t sum = 0;
  for (unsigned i = 0; i < h->nsched; i++) {
    struct tr_lmem *m = h->sched[i].lmem;
    if (m) sum += __atomic_load_n(&m->total, __ATOMIC_RELAXED);
  }
  return sum;
}

/* Address userdata. The tag lets to_addr recognise ours without fetching the
 * metatable (which cost ~150 instructions per check on the send path). */
#define TR_LADDR_MAGIC 0x7472616464723030ull /* "traddr00"; weak: "traddr01" */
/* The low two bits of the magic: the kind of address (its extension type
 * in a payload is TR_EXT_ADDR + kind). */
enum { TR_LK_STRONG = 0, TR_LK_WEAK = 1, TR_LK_OWNED = 2 /* strong, holds a reference */ };
typedef struct {
  uint64_t magic; /* TR_LADDR_MAGIC | kind: 16 bytes in all (a Lua block of 48
                   * where a separate flag made it 64; one per actor) */
  tr_addr a;
} tr_laddr;
typedef struct {
  tr_lstate *ls;
  uint64_t req;
  tr_addr caller;
  int answered;
} tr_ltoken;

static tr_lstate *LS(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }
static tr_sched *SCH(tr_lstate *ls) { return ls->s; }

static tr_lstate *check_ls(lua_State *L) {
  tr_lstate *ls = LS(L);
  if (!ls->h) luaL_error(L, "troupe: the host is closed");
  return ls;
}

/* The actor whose handler is running on thread L (NULL from main code). */
/* The actor whose code runs on L: its handler's coroutine, or a coroutine
 * that handler runs now (see "coroutines inside handlers"). */
static tr_actor *running_actor(tr_lstate *ls, lua_State *L) {
  tr_actor *a = SCH(ls)->current;
  if (a && a->lang == TR_LANG_LUA && (a->co == L || (L == ls->nest && L))) return a;
  return NULL;
}

/* Can a's code on L wait here, yielding up to the scheduler? Not below a
 * C call boundary (a table.sort comparator, a string.gsub function, a
 * metamethod called from C), at whatever depth of nested coroutines. */
static int can_wait(tr_lstate *ls, tr_actor *a, lua_State *L) {
  return lua_isyieldable(L) && (L == a->co || ls->nest_ok);
}

static int cannot_wait(lua_State *L, const char *what) {
  return luaL_error(L, "troupe.%s cannot wait here: a C function (such as table.sort or "
                       "string.gsub) called this code, and a wait cannot cross it",
                    what);
}

static tr_actor *current_actor(tr_lstate *ls) {
  tr_actor *a = ls->h ? SCH(ls)->current : NULL;
  return a && a->lang == TR_LANG_LUA ? a : NULL;
}

/* ---- error values -------------------------------------------------------------------- */
static void push_error(lua_State *L, int code, const char *msg, const char *tb) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, tr_errname(code));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, msg ? msg : tr_strerror(code));
  lua_setfield(L, -2, "message");
  if (tb) {
    lua_pushstring(L, tb);
    lua_setfield(L, -2, "traceback");
  }
  luaL_setmetatable(L, MT_ERROR);
}

static int raise_error(lua_State *L, int code, const char *msg) {
  push_error(L, code, msg, NULL);
  return lua_error(L);
}

static int raise_errorf(lua_State *L, int code, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return raise_error(L, code, buf);
}

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "?"), luaL_optstring(L, -1, "?"));
  return 1;
}

/* ---- addresses -------------------------------------------------------------------------- */
/* A strong address of an owned actor, in any state of the host, is an
 * MT_ADDR_OWNED userdata holding one strong reference (released by
 * addr_gc); one per address and state (the cache), made by push_addr. How
 * push_addr learns that the actor is owned: */
enum {
  PA_LOOKUP = 0, /* look it up (another scheduler's actor under its lock) */
  PA_OWNED,      /* it is (a TR_EXT_OWNED value): take a reference */
  PA_ADOPT       /* it is, and the caller holds a reference for it (a spawn) */
};

/* The address userdata at the top becomes an owned one (it holds `held`
 * references already: 0 or 1). */
static void make_owned(tr_lstate *ls, lua_State *L, tr_laddr *u, int held) {
  if (!held) tr__refs_add(ls->s, u->a, 1);
  u->magic = TR_LADDR_MAGIC | TR_LK_OWNED;
  set_mt(ls, L, MTI_OWNED);
}

static void push_addr(tr_lstate *ls, lua_State *L, tr_addr a, int mode) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->cache_ref);
  if (lua_rawgeti(L, -1, (lua_Integer)a) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    if (mode != PA_LOOKUP && ls->h) {
      tr_laddr *u = lua_touserdata(L, -1);
      if ((u->magic & 3) != TR_LK_OWNED) make_owned(ls, L, u, mode == PA_ADOPT);
      else if (mode == PA_ADOPT) tr__refs_add(ls->s, a, -1); /* it holds one already */
    }
    return;
  }
  lua_pop(L, 1);
  tr_laddr *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->magic = TR_LADDR_MAGIC;
  u->a = a;
  int owned = 0;
  if (ls->h) {
    tr_actor *act = tr__lookup(ls->s, a);
    if (act) {
      owned = act->owned;
    } else if (tr__foreign(ls->s, a)) {
      owned = mode != PA_LOOKUP || tr__owned_any(ls->s, a);
    }
    if (!owned && mode == PA_ADOPT) tr__refs_add(ls->s, a, -1); /* (gone already) */
  }
  if (owned) make_owned(ls, L, u, mode == PA_ADOPT);
  else set_mt(ls, L, MTI_ADDR);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, (lua_Integer)a);
  lua_remove(L, -2);
  if (ls->s && (a >> 48) == ls->s->index && a > ls->own_max) ls->own_max = a;
}

/* The address of act, an actor this scheduler made just now (a local
 * spawn): as push_addr(PA_LOOKUP), without the lookups when the cache
 * cannot hold it yet (its serial is newer than any there: ~100
 * instructions per spawn). */
static void push_addr_new(tr_lstate *ls, lua_State *L, tr_actor *act) {
  tr_addr a = act->addr;
  if (a <= ls->own_max || !ls->h) {
    push_addr(ls, L, a, PA_LOOKUP);
    return;
  }
  ls->own_max = a;
  tr_laddr *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->magic = TR_LADDR_MAGIC;
  u->a = a;
  if (act->owned) make_owned(ls, L, u, 0);
  else set_mt(ls, L, MTI_ADDR);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->cache_ref);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, (lua_Integer)a);
  lua_pop(L, 1);
}

static void push_weak(tr_lstate *ls, lua_State *L, tr_addr a) {
  tr_laddr *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->magic = TR_LADDR_MAGIC | TR_LK_WEAK;
  u->a = a;
  set_mt(ls, L, MTI_WEAK);
}

/* An address (strong, weak or owned: *kind) at idx, or TR_NOADDR. */
static tr_addr to_addr(tr_lstate *ls, lua_State *L, int idx, int *kind) {
  (void)ls;
  tr_laddr *p = lua_touserdata(L, idx); /* (a light userdata's raw length is 0) */
  if (!p || lua_rawlen(L, idx) != sizeof *p ||
      (p->magic | 3) != (TR_LADDR_MAGIC | 3))
    return TR_NOADDR;
  if (kind) *kind = (int)(p->magic & 3);
  return p->a;
}

static tr_addr check_addr(lua_State *L, int idx) {
  tr_addr a = to_addr(NULL, L, idx, NULL); /* (to_addr does not use ls) */
  if (a == TR_NOADDR) luaL_typeerror(L, idx, "troupe address");
  return a;
}

static int addr_gc(lua_State *L) {
  tr_lstate *ls = LS(L);
  tr_laddr *u = lua_touserdata(L, 1);
  if (ls->h) tr__refs_add(ls->s, u->a, -1); /* (nothing while the host closes) */
  return 0;
}

static int addr_tostring(lua_State *L) {
  tr_lstate *ls = LS(L);
  int kind = 0;
  tr_addr a = to_addr(ls, L, 1, &kind);
  int weak = kind == TR_LK_WEAK;
  char buf[160];
  tr_addr_format(ls->h, a, buf, sizeof buf);
  if (weak) {
    size_t n = strlen(buf);
    if (n > 7) lua_pushfstring(L, "<weak %s", buf + 7);
    else lua_pushstring(L, buf);
  } else {
    lua_pushstring(L, buf);
  }
  return 1;
}

static int addr_eq(lua_State *L) {
  tr_lstate *ls = LS(L);
  tr_addr a = to_addr(ls, L, 1, NULL), b = to_addr(ls, L, 2, NULL);
  lua_pushboolean(L, a != TR_NOADDR && a == b);
  return 1;
}

/* ---- value codec: Lua -> MessagePack ------------------------------------------------------- */
typedef struct {
  int is_int;
  lua_Integer i;
  const char *s;
} path_seg;

typedef struct encoder {
  lua_State *L;
  tr_lstate *ls;
  msgpack_packer pk;
  int depth;
  const void *seen[MAX_DEPTH + 1];
  path_seg path[MAX_DEPTH + 1];
  char err[384];
  int code;
  int owned;    /* an owned address was written (s->own_hint) */
  tr_buf *out;  /* where pk writes */
  int overflow; /* a write was refused (the payload went over the maximum) */
} encoder;

/* msgpack write callback: remembers a refused write, so a payload over the
 * maximum is refused as a whole instead of being sent truncated */
static int enc_write(void *data, const char *buf, size_t len) {
  encoder *e = data;
  int rc = tr__buf_write(e->out, buf, len);
  if (rc) e->overflow = 1;
  return rc;
}

static void enc_fail(encoder *e, const char *label, int argno, const char *what) {
  size_t pos = 0;
  pos += (size_t)snprintf(e->err + pos, sizeof e->err - pos, "%s %d", label, argno);
  for (int d = 0; d < e->depth && pos < sizeof e->err; d++) {
    path_seg *p = &e->path[d];
    if (p->is_int)
      pos += (size_t)snprintf(e->err + pos, sizeof e->err - pos, "[%lld]", (long long)p->i);
    else if (p->s)
      pos += (size_t)snprintf(e->err + pos, sizeof e->err - pos, " .%s", p->s);
    else
      pos += (size_t)snprintf(e->err + pos, sizeof e->err - pos, "[?]");
  }
  if (pos < sizeof e->err) snprintf(e->err + pos, sizeof e->err - pos, ": %s", what);
  e->code = TR_EBADVALUE;
}

static int enc_value(encoder *e, int idx, const char *label, int argno);

static int enc_table(encoder *e, int idx, const char *label, int argno) {
  lua_State *L = e->L;
  const void *p = lua_topointer(L, idx);
  for (int d = 0; d < e->depth; d++)
    if (e->seen[d] == p) {
      enc_fail(e, label, argno, "cyclic table cannot be sent");
      return -1;
    }
  if (e->depth >= MAX_DEPTH) {
    enc_fail(e, label, argno, "table nested too deeply to send");
    return -1;
  }
  if (!lua_checkstack(L, 4)) {
    enc_fail(e, label, argno, "out of Lua stack");
    return -1;
  }
  lua_Unsigned n = lua_rawlen(L, idx);
  size_t count = 0;
  int array = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    if (array) {
      if (!lua_isinteger(L, -2)) array = 0;
      else {
        lua_Integer k = lua_tointeger(L, -2);
        if (k < 1 || (lua_Unsigned)k > n) array = 0;
      }
    }
    lua_pop(L, 1);
  }
  array = array && count == n && n > 0;
  e->seen[e->depth] = p;
  if (array) {
    msgpack_pack_array(&e->pk, (size_t)n);
    for (lua_Unsigned i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i);
      e->path[e->depth] = (path_seg){1, (lua_Integer)i, NULL};
      e->depth++;
      int rc = enc_value(e, lua_gettop(L), label, argno);
      e->depth--;
      lua_pop(L, 1);
      if (rc) return rc;
    }
    return 0;
  }
  msgpack_pack_map(&e->pk, count);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    path_seg seg = {0, 0, NULL};
    if (lua_type(L, top - 1) == LUA_TSTRING) seg.s = lua_tostring(L, top - 1);
    else if (lua_isinteger(L, top - 1)) seg = (path_seg){1, lua_tointeger(L, top - 1), NULL};
    e->path[e->depth] = seg;
    e->depth++;
    int rc = enc_value(e, top - 1, label, argno);
    if (!rc) rc = enc_value(e, top, label, argno);
    e->depth--;
    if (rc) {
      lua_pop(L, 2);
      return rc;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int enc_value(encoder *e, int idx, const char *label, int argno) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: msgpack_pack_nil(&e->pk); return 0;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) msgpack_pack_true(&e->pk);
      else msgpack_pack_false(&e->pk);
      return 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) msgpack_pack_int64(&e->pk, lua_tointeger(L, idx));
      else msgpack_pack_double(&e->pk, lua_tonumber(L, idx));
      return 0;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      msgpack_pack_str(&e->pk, len);
      msgpack_pack_str_body(&e->pk, s, len);
      return 0;
    }
    case LUA_TTABLE: return enc_table(e, idx, label, argno);
    case LUA_TUSERDATA: {
      int kind = 0;
      tr_addr a = to_addr(e->ls, L, idx, &kind);
      if (a != TR_NOADDR) {
        char be[8];
        tr__addr_be(a, be);
        msgpack_pack_ext_with_body(&e->pk, be, 8, (int8_t)(TR_EXT_ADDR + kind));
        if (kind == TR_LK_OWNED) e->owned = 1;
        return 0;
      }
      enc_fail(e, label, argno, "userdata cannot be sent");
      return -1;
    }
    default: {
      char what[64];
      snprintf(what, sizeof what, "%s cannot be sent", luaL_typename(L, idx));
      enc_fail(e, label, argno, what);
      return -1;
    }
  }
}

/* Encode stack values [first, last] into b. Returns 0, or TR_EBADVALUE with
 * the reason in err. */
static int encode_values(tr_lstate *ls, lua_State *L, int first, int last, tr_buf *b,
                         const char *label, int argbase, char *err, size_t errcap) {
  encoder *e = ls->enc_busy ? NULL : ls->enc;
  if (!e) {
    e = malloc(sizeof *e);
    if (!e) return TR_ENOMEM;
    if (!ls->enc_busy) ls->enc = e;
  }
  int mine = e == ls->enc;
  if (mine) ls->enc_busy = 1;
  e->L = L;
  e->ls = ls;
  e->depth = 0;
  e->code = 0;
  e->owned = 0;
  e->out = b;
  e->overflow = 0;
  msgpack_packer_init(&e->pk, e, enc_write);
  int rc = 0;
  for (int i = first; i <= last && rc == 0; i++)
    if (enc_value(e, i, label, argbase + (i - first))) rc = e->code ? e->code : TR_EBADVALUE;
  if (rc == 0 && (e->overflow || b->len > TR_MAX_PAYLOAD)) {
    snprintf(e->err, sizeof e->err, "%s: message larger than the maximum (%u bytes)", label,
             (unsigned)TR_MAX_PAYLOAD);
    rc = TR_EBADVALUE;
  }
  if (rc && err) snprintf(err, errcap, "%s", e->err);
  /* owned addresses in it: the envelope made from these bytes takes the
   * references (see tr_sched.own_hint) */
  if (ls->h && rc == 0 && e->owned) ls->s->own_hint = b->data;
  if (mine) ls->enc_busy = 0;
  else free(e);
  return rc;
}

/* The encoder's fast path: scalars (nil, booleans, numbers, strings,
 * addresses) written straight into out, byte for byte what msgpack-c's packer
 * writes for them. Returns the length, or -1 when a value is of another kind
 * or out is too small: the caller then takes encode_values, which also makes
 * the error messages. With an owned address among them the length has
 * ENC_OWNED added: the caller's envelope takes references for it. */
#define ENC_OWNED (1 << 30)
static int enc_scalars(tr_lstate *ls, lua_State *L, int first, int last, char *out,
                       size_t cap) {
  size_t pos = 0;
  int owned = 0;
  for (int i = first; i <= last; i++) {
    if (cap - pos < 10) return -1;
    char *p = out + pos;
    int isint = lua_isinteger(L, i); /* the commonest argument: one API call less */
    switch (isint ? LUA_TNUMBER : lua_type(L, i)) {
      case LUA_TNIL: p[0] = (char)0xc0; pos += 1; break;
      case LUA_TBOOLEAN: p[0] = (char)(lua_toboolean(L, i) ? 0xc3 : 0xc2); pos += 1; break;
      case LUA_TNUMBER:
        if (isint) {
          pos += tr__put_int((unsigned char *)p, (int64_t)lua_tointeger(L, i));
        } else {
          double v = (double)lua_tonumber(L, i);
          uint64_t u;
          memcpy(&u, &v, 8);
          p[0] = (char)0xcb;
          tr__put_be((unsigned char *)p + 1, u, 8);
          pos += 9;
        }
        break;
      case LUA_TSTRING: {
        size_t len;
        const char *str = lua_tolstring(L, i, &len);
        size_t hdr = len < 32 ? 1 : len < 256 ? 2 : len < 65536 ? 3 : 5;
        if (cap - pos < hdr + len) return -1;
        if (hdr == 1) p[0] = (char)(0xa0 | len);
        else {
          p[0] = (char)(hdr == 2 ? 0xd9 : hdr == 3 ? 0xda : 0xdb);
          tr__put_be((unsigned char *)p + 1, len, (int)hdr - 1);
        }
        if (len) memcpy(p + hdr, str, len);
        pos += hdr + len;
        break;
      }
      case LUA_TUSERDATA: {
        int kind = 0;
        tr_addr a = to_addr(ls, L, i, &kind);
        if (a == TR_NOADDR) return -1;
        p[0] = (char)0xd7;
        p[1] = (char)(TR_EXT_ADDR + kind);
        tr__addr_be(a, p + 2);
        pos += 10;
        if (kind == TR_LK_OWNED) owned = ENC_OWNED;
        break;
      }
      default: return -1;
    }
  }
  return (int)pos | owned;
}

/* An envelope for `method` whose payload is stack values [first, last], by
 * the fast path; NULL when they need the general encoder. */
static tr_env *env_scalars(tr_sched *s, tr_lstate *ls, lua_State *L, const char *method,
                           size_t mlen, int first, int last) {
  if (mlen + 1 + 10 > TR_ENV_INLINE) return NULL;
  tr_env *e = tr__env_new(s, method, mlen, NULL, 0); /* inline buffer */
  if (!e) return NULL;
  int n = enc_scalars(ls, L, first, last, TR_ENV_PAYLOAD(e), TR_ENV_INLINE - mlen - 1);
  if (n < 0) {
    tr__env_free(s, e);
    return NULL;
  }
  if (__builtin_expect(n & ENC_OWNED, 0)) { /* owned addresses: references for them */
    e->len = (uint32_t)(n & ~ENC_OWNED);
    tr__env_own(s, e);
    return e;
  }
  e->len = (uint32_t)n;
  return e;
}

static void encode_or_raise(tr_lstate *ls, lua_State *L, int first, int last, tr_buf *b,
                            const char *label) {
  char err[384];
  int rc = encode_values(ls, L, first, last, b, label, 1, err, sizeof err);
  if (rc) {
    tr_buf_free(b);
    raise_error(L, rc, rc == TR_EBADVALUE ? err : tr_strerror(rc));
  }
}

/* ---- value codec: MessagePack -> Lua ------------------------------------------------------ */
/* Push a scalar read by tr__scalar_next (no stack check: the caller's). */
static int push_scalar(tr_lstate *ls, lua_State *L, const msgpack_object *o) {
  switch (o->type) {
    case MSGPACK_OBJECT_NIL: lua_pushnil(L); return 0;
    case MSGPACK_OBJECT_BOOLEAN: lua_pushboolean(L, o->via.boolean); return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o->via.u64 > (uint64_t)INT64_MAX) lua_pushnumber(L, (lua_Number)o->via.u64);
      else lua_pushinteger(L, (lua_Integer)o->via.u64);
      return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: lua_pushinteger(L, (lua_Integer)o->via.i64); return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: lua_pushnumber(L, o->via.f64); return 0;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: lua_pushlstring(L, o->via.str.ptr, o->via.str.size); return 0;
    case MSGPACK_OBJECT_EXT:
      if (o->via.ext.type == TR_EXT_ADDR) {
        push_addr(ls, L, tr__addr_from_be(o->via.ext.ptr), PA_LOOKUP);
        return 0;
      }
      if (o->via.ext.type == TR_EXT_OWNED) { /* its reference, before the envelope's goes */
        push_addr(ls, L, tr__addr_from_be(o->via.ext.ptr), PA_OWNED);
        return 0;
      }
      if (o->via.ext.type == TR_EXT_WEAK) {
        push_weak(ls, L, tr__addr_from_be(o->via.ext.ptr));
        return 0;
      }
      return -1;
    default: return -1;
  }
}

static int dec_object(tr_lstate *ls, lua_State *L, const msgpack_object *o, int depth) {
  if (depth > MAX_DEPTH + 2 || !lua_checkstack(L, 3)) return -1;
  switch (o->type) {
    case MSGPACK_OBJECT_ARRAY:
      lua_createtable(L, (int)o->via.array.size, 0);
      for (uint32_t i = 0; i < o->via.array.size; i++) {
        if (dec_object(ls, L, &o->via.array.ptr[i], depth + 1)) return -1;
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      return 0;
    case MSGPACK_OBJECT_MAP:
      lua_createtable(L, 0, (int)o->via.map.size);
      for (uint32_t i = 0; i < o->via.map.size; i++) {
        if (dec_object(ls, L, &o->via.map.ptr[i].key, depth + 1)) return -1;
        if (dec_object(ls, L, &o->via.map.ptr[i].val, depth + 1)) return -1;
        if (lua_isnil(L, -2) || (lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2)))
          lua_pop(L, 2); /* nil or NaN keys cannot be stored */
        else lua_rawset(L, -3);
      }
      return 0;
    case MSGPACK_OBJECT_EXT:
      if (o->via.ext.size != 8) return -1;
      return push_scalar(ls, L, o);
    default:
      return push_scalar(ls, L, o);
  }
}


/* Push every value of a payload onto L. Returns the count, or -1 if corrupt
 * (the stack is restored). */
/* room: stack slots the caller knows are free (it checks for the rest). */
static int push_payload_r(tr_lstate *ls, lua_State *L, const char *data, size_t len, int room) {
  int n = 0;
  size_t off = 0;
  /* fast path: scalars read straight from the bytes (no check pass, no
   * zone); anything else starts over on the general path below */
  int fast = 1;
  while (off < len) {
    msgpack_object o;
    if (n >= room) {
      if (!lua_checkstack(L, 20)) {
        fast = 0;
        break;
      }
      room = n + 20;
    }
    if (!tr__scalar_next(data, len, &off, &o) || push_scalar(ls, L, &o)) {
      fast = 0;
      break;
    }
    n++;
  }
  if (fast) return n;
  lua_pop(L, n);
  int top = lua_gettop(L);
  n = 0;
  off = 0;
  msgpack_zone_clear(&ls->zone);
  if (tr__payload_check(data, len)) return -1;
  while (off < len) {
    msgpack_object o;
    msgpack_unpack_return r = msgpack_unpack(data, len, &off, &ls->zone, &o);
    if ((r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) ||
        dec_object(ls, L, &o, 0)) {
      lua_settop(L, top);
      return -1;
    }
    n++;
  }
  return n;
}

static int push_payload(tr_lstate *ls, lua_State *L, const char *data, size_t len) {
  return push_payload_r(ls, L, data, len, 0);
}

/* ---- coroutine pool ---------------------------------------------------------------------
 * Every coroutine run_handler resumes holds two values below the function
 * it starts with (the handler, a runner, the init or stop runner): slot 1
 * its actor's behaviour table, slot 2 the method name of the last single
 * message it ran (or nil). tr__lua_deliver looks the handler up with them,
 * and a coroutine back in the pool keeps both (pool_lb, pool_nm): the next
 * message of the same behaviour and name finds them in place. (Behaviour
 * tables are never collected: behs_ref holds them.) */
#define CO_BELOW 2

/* A coroutine with [behaviour of lb, name or nil]; *nm, *nl: the name's
 * bytes (kept alive by slot 2) or NULL. */
static lua_State *co_get(tr_lstate *ls, int *ref, const tr_lbeh *lb, const char **nm,
                         size_t *nl) {
  lua_State *co;
  if (ls->pool_n > 0) {
    int i = --ls->pool_n;
    *ref = ls->pool_ref[i];
    co = ls->pool[i];
    *nm = ls->pool_nm[i];
    *nl = ls->pool_nl[i];
    if (ls->pool_lb[i] == lb) return co;
    if (ls->pool_lb[i]) { /* another behaviour's: the name stays */
      lua_rawgeti(co, LUA_REGISTRYINDEX, lb->ref);
      lua_replace(co, 1);
      return co;
    }
  } else {
    co = lua_newthread(ls->L);
    *ref = luaL_ref(ls->L, LUA_REGISTRYINDEX);
  }
  *nm = NULL;
  *nl = 0;
  lua_rawgeti(co, LUA_REGISTRYINDEX, lb->ref);
  lua_pushnil(co);
  return co;
}

/* co goes back to the pool (reusable and not dead) with lb's behaviour
 * table and the name below it kept (lb NULL: emptied), else is reset and
 * let go. reusable 2: co holds nothing above those two already. */
static void co_put(tr_lstate *ls, lua_State *co, int ref, int reusable, const tr_lbeh *lb) {
  if (reusable && lua_status(co) == LUA_OK && ls->pool_n < CO_POOL) {
    int i = ls->pool_n++;
    ls->pool[i] = co;
    ls->pool_ref[i] = ref;
    ls->pool_lb[i] = lb;
    if (lb) {
      if (reusable != 2) lua_settop(co, CO_BELOW);
      if (co == ls->nm_co) { /* its name as the message path set it */
        ls->pool_nm[i] = ls->nm_p;
        ls->pool_nl[i] = ls->nm_l;
      } else {
        ls->pool_nm[i] = lua_tolstring(co, 2, &ls->pool_nl[i]); /* (a string or nil) */
      }
      return;
    }
    lua_settop(co, 0);
    ls->pool_nm[i] = NULL;
  } else {
    lua_resetthread(co);
    luaL_unref(ls->L, LUA_REGISTRYINDEX, ref);
  }
  if (co == ls->nm_co) ls->nm_co = NULL; /* (a new thread may come at its address) */
}

/* ---- self refs --------------------------------------------------------------------------- */
/* An actor's self table is kept in the registry, read there by
 * lua_rawgeti(LUA_REGISTRYINDEX, a->self_ref) at each handler. luaL_ref cost
 * ~450 instructions per spawn while the registry grows (no free slot: it
 * asks lua_rawlen for the border, a search through the hash part) and
 * luaL_unref ~320 per death. The host keeps the registry's border itself
 * instead (sref_next): every integer slot below it is taken (by an actor,
 * by luaL_ref or holding false), so the registry keeps a single border and
 * luaL_ref, when it has no free ref of its own, hands out the border + 1:
 * a slot the host finds taken when it gets there, and steps over. A dead
 * actor's slot goes back to the host's list holding false (never nil). */
#define SREF_BLOCK 256

static int sref_push(tr_lstate *ls, int r) {
  if (ls->sref_n == ls->sref_cap) {
    int cap = ls->sref_cap ? ls->sref_cap * 2 : SREF_BLOCK;
    int *n = realloc(ls->sref, (size_t)cap * sizeof *n);
    if (!n) return -1;
    ls->sref = n;
    ls->sref_cap = cap;
  }
  ls->sref[ls->sref_n++] = r;
  return 0;
}

/* The value at the top of L goes to a free slot (popped): its ref. */
static int self_ref_new(tr_lstate *ls, lua_State *L) {
  int r;
  if (ls->sref_n) {
    r = ls->sref[--ls->sref_n];
  } else if (!ls->sref_next) { /* the first: where the border is now */
    r = luaL_ref(L, LUA_REGISTRYINDEX);
    ls->sref_next = r + 1;
    return r;
  } else {
    while (lua_rawgeti(L, LUA_REGISTRYINDEX, ls->sref_next) != LUA_TNIL) { /* luaL_ref's */
      lua_pop(L, 1);
      ls->sref_next++;
    }
    lua_pop(L, 1);
    r = ls->sref_next++;
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, r);
  return r;
}

static void self_ref_free(tr_lstate *ls, lua_State *L, int r) {
  if (r == LUA_NOREF || r == LUA_REFNIL) return;
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, r);
  if (sref_push(ls, r)) luaL_unref(L, LUA_REGISTRYINDEX, r);
}

/* ---- Lua actors ----------------------------------------------------------------------- */
const char *tr__lua_behaviour_name(tr_actor *a) {
  return a->lb && a->lb->name ? a->lb->name : "Actor";
}

static int is_failure(tr_lstate *ls, lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TTABLE && mt_of(ls, L, idx) == MTI_FAIL;
}

/* The message a->cur is finished; answer it from the values on co. */
static void finish_message(tr_sched *s, tr_actor *a, lua_State *co, int nres) {
  tr_lstate *ls = s->ls;
  tr_env *e = a->cur;
  a->cur = NULL;
  if (e && e->kind == TR_K_INIT) {
    a->started = 1;
    a->starting = 0;
  }
  if (e && e->kind == TR_K_CALL && e->req) {
    int top = lua_gettop(co);
    int first = top - nres + 1;
    int n;
    { /* the fast path: scalars (a failure's table never is one) */
      char out[96];
      if ((n = enc_scalars(ls, co, first, top, out, sizeof out)) >= 0) {
        if (__builtin_expect(n & ENC_OWNED, 0)) { /* the reply takes references for them */
          n &= ~ENC_OWNED;
          s->own_hint = out;
        }
        tr__reply_in(s, e, a->addr, TR_OK, out, (size_t)n); /* the call becomes the reply */
        return;
      }
    }
    tr_buf b;
    tr_buf_init(&b);
    int status = TR_OK;
    char err[384];
    int rc;
    if (nres >= 1 && is_failure(ls, co, first)) {
      status = TR_FAILED;
      lua_getfield(co, first, "value");
      rc = encode_values(ls, co, lua_gettop(co), lua_gettop(co), &b, "failure value", 1, err,
                         sizeof err);
      lua_pop(co, 1);
    } else {
      rc = encode_values(ls, co, first, top, &b, "reply value", 1, err, sizeof err);
    }
    if (rc) {
      tr__reply_error(s, a->addr, e->from, e->req, rc, err, NULL);
    } else {
      tr__reply_in(s, e, a->addr, status, b.data, b.len); /* the call becomes the reply */
      e = NULL;
    }
    tr_buf_free(&b);
  }
  tr__env_free(s, e);
}

/* Run (or continue) the handler coroutine of a. */
static void co_done(tr_lstate *ls, tr_actor *a, lua_State *co, int reusable) {
  co_put(ls, co, a->co_ref, reusable, a->lb);
  a->co = NULL;
  a->co_ref = LUA_NOREF;
  if (a->cold->cpu_limit_ms) a->cold->cpu_ns = 0;
}

static int tolstring_p(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* CPU time of the calling thread, ns: a cpu_limit counts what the handler
 * used, not the time the machine gave to others meanwhile. */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return uv_hrtime();
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_handler(tr_sched *s, tr_actor *a, lua_State *co, int nargs);

/* Push the behaviour's hook named by the registry ref key if it can be read
 * without running code (1), or nothing (0) when the behaviour table at beh
 * has a metatable: its __index may run code, which the prelude's runners
 * run as part of the hook, as the behaviour's own code. */
static int hook_raw(lua_State *co, int beh, int key) {
  if (lua_getmetatable(co, beh)) {
    lua_pop(co, 1);
    return 0;
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, key);
  lua_rawget(co, beh);
  return 1;
}

/* a's init function returned (or it had none) and a->starting: on_start
 * runs next in co, through the prelude's start runner, unless the behaviour
 * certainly has none. co holds the behaviour table at 1 (below what init
 * returned). 1: on_start runs (run_handler went on with it); 0: nothing to
 * run. */
static int start_hook(tr_sched *s, tr_actor *a, lua_State *co) {
  tr_lstate *ls = s->ls;
  a->starting = 0;
  lua_settop(co, CO_BELOW);
  if (hook_raw(co, 1, ls->k_on_start_ref) && !lua_toboolean(co, CO_BELOW + 1)) return 0;
  lua_settop(co, CO_BELOW);
  lua_rawgeti(co, LUA_REGISTRYINDEX, ls->start_ref);
  lua_pushvalue(co, 1);
  lua_rawgeti(co, LUA_REGISTRYINDEX, a->self_ref);
  run_handler(s, a, co, 2);
  return 1;
}

/* Run (or continue) the handler coroutine of a. */
static void run_handler(tr_sched *s, tr_actor *a, lua_State *co, int nargs) {
  tr_lstate *ls = s->ls;
  int nres = 0;
  a->co = co;
  tr_actor_cold *c = a->cold; /* (a limit is set at spawn: c is its own then) */
  uint64_t t0 = c->cpu_limit_ms ? thread_cpu_ns() : 0;
  tr_actor *charged = ls->mem->charge;
  ls->mem->charge = a;
  tr__preempt_enter(s, a, co);
  int st = lua_resume(co, ls->L, nargs, &nres);
  int preempted = tr__preempt_leave(s, co);
  if (st == LUA_OK) nres -= CO_BELOW; /* (lua_resume counts the values below the function) */
  ls->mem->charge = charged;
  if (c->cpu_limit_ms) c->cpu_ns += thread_cpu_ns() - t0;
  char why[160];
  if (a->oom || st == LUA_ERRMEM) {
    snprintf(why, sizeof why, "went over its memory limit (%lld bytes)",
             (long long)(c->mem_limit ? c->mem_limit : (int64_t)s->h->mem_limit));
    lua_settop(co, 0);
    tr__actor_died(s, a, TR_EOOM, why, NULL);
    return;
  }
  /* over its CPU limit: preempted (a yield with no wait), or stopped by the
   * hook inside a C function (an error) */
  if (c->cpu_limit_ms && c->cpu_ns > (uint64_t)c->cpu_limit_ms * 1000000u &&
      ((st == LUA_YIELD && a->wait == TR_W_NONE) || (st != LUA_OK && st != LUA_YIELD))) {
    snprintf(why, sizeof why, "handler ran longer than its CPU limit (%lld ms)",
             (long long)c->cpu_limit_ms);
    lua_settop(co, 0);
    tr__actor_died(s, a, TR_ETIMEOUT, why, NULL);
    return;
  }
  if (preempted) s->break_idle = 1; /* a slice went by: let libuv poll */
  if (st == LUA_YIELD) {
    if (nres) lua_pop(co, nres); /* (a wait yields none) */
    if (a->wait == TR_W_NONE) tr__set_wait(a, TR_W_YIELD); /* preempted, or a bare yield */
    return;
  }
  tr_env *cur = a->cur;
  if (st == LUA_OK && cur && cur->kind == TR_K_STOP) { /* the stop runner's verdict */
    int go = nres > 0 && lua_toboolean(co, -1);
    a->cur = NULL;
    tr__env_free(s, cur);
    co_done(ls, a, co, 1);
    tr__stop_finish(s, a, !go);
    return;
  }
  if (st == LUA_OK) {
    int reuse = nres ? 1 : 2; /* 2: it holds the two values below the function only */
    if (__builtin_expect(a->starting, 0)) { /* init returned: on_start next */
      if (start_hook(s, a, co)) return;
      nres = 0;
      reuse = 1;
    }
    finish_message(s, a, co, nres);
    co_done(ls, a, co, reuse);
    return;
  }
  /* the handler raised */
  if (is_failure(ls, co, -1)) { /* error(troupe.fail(v)): its own error, not a crash */
    finish_message(s, a, co, 1);
    co_done(ls, a, co, 0);
    return;
  }
  const char *msg;
  if (lua_type(co, -1) == LUA_TTABLE && luaL_getmetafield(co, -1, "__tostring") != LUA_TNIL) {
    /* __tostring is the actor's code: it may raise, and co (dead) has no
     * pcall to land in, so it runs protected on the main thread */
    lua_pop(co, 1);
    lua_pushcfunction(ls->L, tolstring_p);
    lua_pushvalue(co, -1);
    lua_xmove(co, ls->L, 1);
    if (lua_pcall(ls->L, 1, 1, 0) == LUA_OK) {
      lua_xmove(ls->L, co, 1);
      msg = lua_tostring(co, -1);
    } else {
      lua_pop(ls->L, 1);
      msg = lua_pushstring(co, "(error object whose __tostring failed)");
    }
  } else if (lua_type(co, -1) == LUA_TSTRING || lua_type(co, -1) == LUA_TNUMBER) {
    msg = lua_tostring(co, -1);
  } else {
    msg = lua_pushfstring(co, "(error object is a %s value)", luaL_typename(co, -1));
  }
  luaL_traceback(ls->L, co, NULL, 0);
  size_t tblen;
  const char *tb = lua_tolstring(ls->L, -1, &tblen);
  static const char runner_frame[] = "\n\t[C]: in ?"; /* the runner's own frame */
  if (tb && tblen >= sizeof runner_frame - 1 &&
      memcmp(tb + tblen - (sizeof runner_frame - 1), runner_frame, sizeof runner_frame - 1) == 0) {
    lua_pushlstring(ls->L, tb, tblen - (sizeof runner_frame - 1));
    lua_replace(ls->L, -2);
    tb = lua_tostring(ls->L, -1);
  }
  char *m = strdup(msg ? msg : "?");
  if (a->lb->errors_reply && cur && cur->kind != TR_K_INIT && cur->kind != TR_K_STOP) {
    /* the behaviour asked for handler errors to go back to the caller: the
     * actor keeps running (and keeps whatever state the handler left) */
    a->cur = NULL;
    if (cur->kind == TR_K_CALL && cur->req)
      tr__reply_error(s, a->addr, cur->from, cur->req, TR_ECRASHED, m, tb);
    else tr__log(s->h, "%s (error in a send handler, actor kept)", m);
    tr__env_free(s, cur);
    co_done(ls, a, co, 0);
  } else {
    tr__actor_died(s, a, TR_ECRASHED, m, tb);
  }
  free(m);
  lua_pop(ls->L, 1);
}

static int gettable_p(lua_State *L) {
  lua_gettable(L, 1);
  return 1;
}

/* Replace the key at the top of L (the string name) by its value in the
 * behaviour table at bidx. A metatable's __index (inherited
 * handlers) may run code that raises: that lookup is protected (the loop
 * callbacks that deliver have no pcall around them). */
static int beh_get(tr_sched *s, lua_State *L, int bidx, const char *name, size_t len) {
  int t = lua_rawget(L, bidx);
  if (t != LUA_TNIL) return t;
  bidx = lua_absindex(L, bidx); /* (the value took the key's place) */
  if (!lua_getmetatable(L, bidx)) return t;
  lua_pop(L, 2); /* the metatable, nil */
  lua_pushcfunction(L, gettable_p);
  lua_pushvalue(L, bidx);
  lua_pushlstring(L, name, len);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    tr__log(s->h, "looking up handler '%s': %s", name,
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(error object)");
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return lua_type(L, -1);
}

/* Method names are short: a loop beats a call to memcmp. */
static inline int same_bytes(const char *x, const char *y, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return 0;
  return 1;
}

static inline uint64_t ld8(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline uint32_t ld4(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* x[0..n) == y[0..n) for n <= 24, by (overlapping) words */
static inline int same_short(const char *x, const char *y, size_t n) {
  if (n >= 8)
    return ld8(x) == ld8(y) && ld8(x + n - 8) == ld8(y + n - 8) &&
           (n <= 16 || ld8(x + 8) == ld8(y + 8));
  if (n >= 4) return ld4(x) == ld4(y) && ld4(x + n - 4) == ld4(y + n - 4);
  return same_bytes(x, y, n);
}

/* Push e's method name as a Lua string. */
static void push_method(tr_lstate *ls, lua_State *L, const tr_env *e) {
  const char *m = TR_ENV_METHOD(e);
  size_t n = e->mlen;
  if (n == 0 || n > sizeof ls->names[0].name) {
    lua_pushlstring(L, m, n);
    return;
  }
  unsigned i = ((unsigned)n * 7u + (unsigned char)m[0] * 31u + (unsigned char)m[n - 1] * 17u +
                (unsigned char)m[n / 2]) & 63u;
  if (ls->names[i].ref && ls->names[i].len == n && same_short(ls->names[i].name, m, n)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->names[i].ref);
    return;
  }
  lua_pushlstring(L, m, n);
  lua_pushvalue(L, -1);
  if (ls->names[i].ref) lua_rawseti(L, LUA_REGISTRYINDEX, ls->names[i].ref);
  else ls->names[i].ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ls->names[i].len = (uint8_t)n;
  memcpy(ls->names[i].name, m, n);
}

/* Might method be one of the hooks, which are not message handlers? */
static inline int maybe_reserved(const tr_env *e) {
  const char *m = TR_ENV_METHOD(e);
  return (e->mlen == 4 || e->mlen == 8 || e->mlen == 10 || e->mlen == 11) &&
         (m[0] == 'i' || m[0] == 'o');
}

/* The value of type t at the top of L was looked up for e's method: is it a
 * handler? If not, it is popped, the sender told (a call) or the drop
 * logged, and e freed. */
static int is_handler(tr_sched *s, tr_actor *a, lua_State *L, int t, tr_env *e) {
  const char *method = TR_ENV_METHOD(e);
  int reserved = maybe_reserved(e) &&
                 (strcmp(method, "init") == 0 || strcmp(method, "on_start") == 0 ||
                  strcmp(method, "on_stopping") == 0 || strcmp(method, "on_stopped") == 0);
  if (t == LUA_TFUNCTION && !reserved && *method) return 1;
  lua_pop(L, 1);
  char who[128], msg[320];
  tr_addr_format(s->h, a->addr, who, sizeof who);
  snprintf(msg, sizeof msg, "%s has no handler '%s'", who, method);
  if (e->kind == TR_K_CALL && e->req)
    tr__reply_error(s, a->addr, e->from, e->req, TR_ENOHANDLER, msg, NULL);
  else if (strcmp(method, "on_down") && strcmp(method, "on_exit"))
    tr__log(s->h, "%s (message dropped)", msg); /* system notices are optional */
  tr__env_free(s, e);
  return 0;
}

/* e's payload could not be read: tell the sender (a call) or log, free e. */
static void bad_payload(tr_sched *s, tr_actor *a, tr_env *e) {
  char msg[160];
  snprintf(msg, sizeof msg, "corrupt payload for '%s'", TR_ENV_METHOD(e));
  if (e->kind == TR_K_CALL && e->req)
    tr__reply_error(s, a->addr, e->from, e->req, TR_EBADVALUE, msg, NULL);
  else tr__log(s->h, "%s (message dropped)", msg);
  tr__env_free(s, e);
}

/* ---- the runner --------------------------------------------------------------------------
 * A Lua actor's plain messages run in one coroutine per turn, not one per
 * message: `runner` (a C function, the coroutine's body) takes message
 * after message from tr__runner_next and calls each handler with
 * lua_callk. A handler that waits (call, sleep, room, a preemption) yields
 * the whole runner; when it is resumed and the handler returns, the
 * continuation finishes that message and the loop goes on. A handler that
 * raises ends the runner like a handler coroutine of its own (run_handler
 * reports it; the runner is not reused). The runner returns when the turn
 * is over, and goes back to the pool.
 * Its stack: 1 the scheduler (light userdata), 2 the behaviour table,
 * 3 self, 4 the last method's name (interned once for a run of equal
 * names), then the handler's call. */
#define RUNNER_BASE 4
#define RUNNER_ROOM 16

static int runner_k(lua_State *co, int status, lua_KContext ctx);


static int runner_loop(lua_State *co) {
  tr_sched *s = lua_touserdata(co, 1);
  tr_lstate *ls = s->ls;
  tr_actor *a = s->current;
  size_t last_len;
  const char *last = lua_tolstring(co, 4, &last_len); /* kept alive by slot 4 */
  tr_env *e;
  while ((e = tr__runner_next(s, a))) {
    a->cur = e;
    /* the watchdog times each handler, not the whole run */
    __atomic_store_n(&s->resume_gen, s->resume_gen + 1, __ATOMIC_RELAXED);
    if (!last || last_len != e->mlen || !same_bytes(last, TR_ENV_METHOD(e), last_len)) {
      push_method(ls, co, e);
      last = lua_tolstring(co, -1, &last_len);
      lua_replace(co, 4);
    }
    lua_pushvalue(co, 4);
    int t = beh_get(s, co, 2, last, last_len);
    if ((t != LUA_TFUNCTION || maybe_reserved(e)) && !is_handler(s, a, co, t, e)) {
      a->cur = NULL;
      continue;
    }
    lua_pushvalue(co, 3);
    int n = push_payload_r(ls, co, TR_ENV_PAYLOAD(e), e->len, RUNNER_ROOM);
    if (n < 0) {
      lua_settop(co, RUNNER_BASE);
      a->cur = NULL;
      bad_payload(s, a, e);
      continue;
    }
    if (e->kind == TR_K_CALL) {
      lua_callk(co, 1 + n, LUA_MULTRET, 0, runner_k);
      finish_message(s, a, co, lua_gettop(co) - RUNNER_BASE);
      lua_settop(co, RUNNER_BASE);
    } else { /* a send: its handler's results are not wanted */
      lua_callk(co, 1 + n, 0, 0, runner_k);
      a->cur = NULL;
      tr__env_free(s, e);
    }
  }
  return 0;
}

/* A handler that waited has returned (a send's with no results: finishing
 * it reads none). */
static int runner_k(lua_State *co, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  tr_sched *s = lua_touserdata(co, 1);
  finish_message(s, s->current, co, lua_gettop(co) - RUNNER_BASE);
  lua_settop(co, RUNNER_BASE);
  return runner_loop(co);
}

/* The runner's coroutine: [behaviour, name, runner, s, behaviour] (the two
 * below it are run_handler's convention, the behaviour above its argument). */
static int runner(lua_State *co) {
  tr_sched *s = lua_touserdata(co, 1);
  tr_actor *a = s->current;
  /* slots for the base, a handler, self and RUNNER_ROOM arguments: each
   * message's payload is pushed without a check of its own */
  if (!lua_checkstack(co, RUNNER_BASE + 2 + RUNNER_ROOM)) luaL_error(co, "stack overflow");
  lua_settop(co, 2);
  lua_rawgeti(co, LUA_REGISTRYINDEX, a->self_ref);
  lua_pushnil(co);
  return runner_loop(co);
}

void tr__lua_run(tr_sched *s, tr_actor *a) {
  int ref;
  const char *nm;
  size_t nl;
  lua_State *co = co_get(s->ls, &ref, a->lb, &nm, &nl);
  lua_pushcfunction(co, runner);
  lua_pushlightuserdata(co, s);
  lua_pushvalue(co, 1);
  a->co_ref = ref;
  run_handler(s, a, co, 2);
}

/* Free stack slots a coroutine from co_get has above the two it holds: a
 * thread's base level has LUA_MINSTACK (lua_newthread), never shrunk below */
#define CO_ROOM (LUA_MINSTACK - CO_BELOW)

void tr__lua_deliver(tr_sched *s, tr_actor *a, tr_env *e) {
  tr_lstate *ls = s->ls;
  int ref;
  const char *nm;
  size_t nl;
  if (e->kind == TR_K_INIT) {
    /* init, then on_start. An init function the behaviour table holds
     * itself (no metatable) runs as the coroutine's body, with on_start
     * looked up after it returns (start_hook); anything else goes through
     * the prelude's init runner (run_init), which does both in Lua (its
     * vararg frame and lookups: ~300 instructions per actor more). */
    lua_State *co = co_get(ls, &ref, a->lb, &nm, &nl); /* [behaviour, name] */
    int direct = 0; /* 1: [behaviour, name, init]: init runs with the behaviour
                     * below it, for start_hook; 2: [behaviour, name]: no init */
    if (hook_raw(co, 1, ls->k_init_ref)) {
      int t = lua_type(co, CO_BELOW + 1);
      if (t == LUA_TFUNCTION) direct = 1;
      else if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(co, CO_BELOW + 1)))
        direct = 2;
    }
    if (direct == 2) {
      lua_settop(co, CO_BELOW);
    } else if (!direct) {
      lua_settop(co, CO_BELOW);
      lua_rawgeti(co, LUA_REGISTRYINDEX, ls->init_ref);
      lua_pushvalue(co, 1);
    }
    if (direct != 2) lua_rawgeti(co, LUA_REGISTRYINDEX, a->self_ref);
    int n = push_payload(ls, co, TR_ENV_PAYLOAD(e), e->len); /* (checked even with no init) */
    a->cur = e;
    a->co_ref = ref;
    if (n < 0) {
      co_put(ls, co, ref, 1, a->lb);
      a->co_ref = LUA_NOREF;
      tr__actor_died(s, a, TR_ECRASHED, "corrupt spawn arguments", NULL);
      return;
    }
    if (direct == 2) { /* no init to run */
      a->co = co;
      if (!start_hook(s, a, co)) {
        finish_message(s, a, co, 0);
        co_done(ls, a, co, 1);
      }
      return;
    }
    a->starting = direct == 1;
    run_handler(s, a, co, (direct ? 1 : 2) + n);
    return;
  }
  if (e->kind == TR_K_STOP) { /* on_stopping (may veto, may wait), on_stopped */
    lua_State *co = co_get(ls, &ref, a->lb, &nm, &nl);
    lua_rawgeti(co, LUA_REGISTRYINDEX, ls->stop_ref);
    lua_pushvalue(co, 1);
    lua_rawgeti(co, LUA_REGISTRYINDEX, a->self_ref);
    a->cur = e;
    a->co_ref = ref;
    run_handler(s, a, co, 2);
    return;
  }
  /* a single message (a backlog goes to the runner; an actor with a CPU
   * limit comes here for each): the handler is looked up in the behaviour
   * table at the coroutine's slot 1, by the name in slot 2 if it is this
   * one's (else this one goes there), and stays above them, where it is
   * called */
  lua_State *co = co_get(ls, &ref, a->lb, &nm, &nl);
  const char *m = TR_ENV_METHOD(e);
  if (nm && nl == e->mlen && (nl <= 24 ? same_short(nm, m, nl) : same_bytes(nm, m, nl))) {
    lua_pushvalue(co, 2);
  } else {
    push_method(ls, co, e);
    lua_copy(co, -1, 2);
    nm = lua_tolstring(co, 2, &nl);
  }
  ls->nm_co = co; /* (co_put reads it back from here) */
  ls->nm_p = nm;
  ls->nm_l = nl;
  int t = beh_get(s, co, 1, m, e->mlen);
  if ((t != LUA_TFUNCTION || maybe_reserved(e)) && !is_handler(s, a, co, t, e)) {
    co_put(ls, co, ref, 1, a->lb);
    return;
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, a->self_ref);
  int n = push_payload_r(ls, co, TR_ENV_PAYLOAD(e), e->len, CO_ROOM - 2);
  if (n < 0) {
    co_put(ls, co, ref, 1, a->lb);
    bad_payload(s, a, e);
    return;
  }
  a->cur = e;
  a->co_ref = ref;
  run_handler(s, a, co, 1 + n);
}

void tr__lua_resume(tr_sched *s, tr_actor *a, tr_env *w) {
  tr_lstate *ls = s->ls;
  lua_State *co = a->co;
  if (!co) {
    tr__env_free(s, w);
    return;
  }
  int n = 0;
  if (w) {
    lua_pushinteger(co, w->status);
    n = 1;
    if (w->kind == TR_K_REPLY) {
      int k = push_payload(ls, co, TR_ENV_PAYLOAD(w), w->len);
      if (k < 0) {
        lua_pop(co, 1);
        lua_pushinteger(co, TR_EBADVALUE);
        lua_pushstring(co, "corrupt reply payload");
        k = 1;
      }
      n += k;
    }
    tr__env_free(s, w);
  }
  run_handler(s, a, co, n);
}

void tr__lua_destroy(tr_sched *s, tr_actor *a) {
  tr_lstate *ls = s->ls;
  if (!ls || !ls->h) return;
  lua_State *L = ls->L;
  if (a->co && a->co_ref != LUA_NOREF) {
    co_put(ls, a->co, a->co_ref, 0, NULL);
  }
  a->co = NULL;
  a->co_ref = LUA_NOREF;
  /* the host is being freed and closes this state afterwards (it made
   * it, or it is another scheduler's): its registry goes with it */
  int closes = tr__closing(ls->h) && (ls->h->owns_lua || s->index != 0);
  if (!closes) {
    self_ref_free(ls, L, a->self_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, a->cold->env_ref);
  }
  a->self_ref = LUA_NOREF;
  if (a->cold != &tr__cold_none) a->cold->env_ref = LUA_NOREF;
}

static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    msg = lua_tostring(L, -1); /* e.g. a troupe error value */
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int tr__lua_hooks(tr_sched *s, tr_actor *a, int which) {
  tr_lstate *ls = s->ls;
  lua_State *L = ls->L;
  const char *name = which == 0 ? "on_stopping" : "on_stopped";
  int top = lua_gettop(L);
  lua_pushcfunction(L, msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->lb->ref);
  lua_pushstring(L, name);
  if (beh_get(s, L, -2, name, strlen(name)) != LUA_TFUNCTION) {
    lua_settop(L, top);
    return 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->self_ref);
  int veto = 0;
  if (lua_pcall(L, 1, 1, top + 1) != LUA_OK) {
    char who[128];
    tr_addr_format(s->h, a->addr, who, sizeof who);
    tr__log(s->h, "%s: %s failed: %s", who, name, lua_tostring(L, -1));
  } else if (which == 0 && lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    veto = 1; /* on_stopping returned false */
  }
  lua_settop(L, top);
  return veto;
}

/* ---- behaviours --------------------------------------------------------------------------- */
/* Globals of handlers go through a proxy env: reads see the actor's own
 * globals first, then the env the code was written in; writes go to the
 * running actor's own table. */
static int proxy_index(lua_State *L) {
  tr_lstate *ls = LS(L);
  tr_actor *a = current_actor(ls);
  if (a && a->cold->env_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->cold->env_ref);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 2);
  }
  lua_pushvalue(L, 2);
  lua_gettable(L, lua_upvalueindex(2));
  return 1;
}

static int proxy_newindex(lua_State *L) {
  tr_lstate *ls = LS(L);
  tr_actor *a = current_actor(ls);
  if (!a) {
    lua_settop(L, 3);
    lua_settable(L, lua_upvalueindex(2));
    return 0;
  }
  tr_actor_cold *c = tr__cold(a);
  if (!c) return luaL_error(L, "not enough memory");
  if (c->env_ref == LUA_NOREF) {
    lua_newtable(L);
    c->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->env_ref);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

/* Push the proxy of the env at idx (made once per env). */
static void push_proxy(tr_lstate *ls, lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->proxies_ref);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TTABLE) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  lua_newtable(L);                 /* proxy */
  lua_createtable(L, 0, 3);        /* its metatable */
  lua_pushlightuserdata(L, ls);
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, proxy_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushlightuserdata(L, ls);
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, proxy_newindex, 2);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_pushvalue(L, -1); /* a proxy is its own proxy */
  lua_pushvalue(L, -1);
  lua_rawset(L, -4);
  lua_remove(L, -2);
}

/* Give every function of the behaviour table at idx the proxy env. */
static void bind_envs(tr_lstate *ls, lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TFUNCTION && !lua_iscfunction(L, -1)) {
      int f = lua_gettop(L);
      for (int i = 1;; i++) {
        const char *name = lua_getupvalue(L, f, i);
        if (!name) break;
        if (strcmp(name, "_ENV") == 0 && lua_type(L, -1) == LUA_TTABLE) {
          /* a fresh cell holding the proxy, joined into the function */
          push_proxy(ls, L, -1);
          luaL_loadstring(L, "local e = ... return function() return e end");
          lua_insert(L, -2);
          lua_call(L, 1, 1);
          lua_upvaluejoin(L, f, i, -1, 1);
          lua_pop(L, 2);
          break;
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
}

static tr_lbeh *lbeh_for_table(tr_lstate *ls, lua_State *L, int idx, const char *name) {
  /* a loop spawning actors of one behaviour: no lookup (the table is kept
   * by behs, so no other table can have its address) */
  const void *p = lua_topointer(L, idx);
  if (p == ls->last_beh_p && p) return ls->last_beh;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->behs_ref);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TLIGHTUSERDATA) {
    tr_lbeh *b = lua_touserdata(L, -1);
    lua_pop(L, 2);
    ls->last_beh_p = p;
    ls->last_beh = b;
    return b;
  }
  lua_pop(L, 1);
  tr_lbeh *b = calloc(1, sizeof *b);
  if (!b) luaL_error(L, "out of memory");
  const char *n = name;
  if (!n) {
    lua_getfield(L, idx, "_NAME");
    n = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  b->name = strdup(n ? n : "Actor");
  lua_getfield(L, idx, "_ON_ERROR");
  b->errors_reply = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "reply") == 0;
  lua_pop(L, 1);
  bind_envs(ls, L, idx);
  lua_pushvalue(L, idx);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  b->next = ls->lbehs;
  ls->lbehs = b;
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, b);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  ls->last_beh_p = p;
  ls->last_beh = b;
  return b;
}

static void basename_noext(const char *path, char *out, size_t cap) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  snprintf(out, cap, "%s", b);
  char *dot = strrchr(out, '.');
  if (dot && dot != out) *dot = 0;
  if (out[0] >= 'a' && out[0] <= 'z') out[0] = (char)(out[0] - 'a' + 'A');
}

/* Load a behaviour from a file or a string of code: push its table. Returns
 * 0, or TR_ELOAD / TR_ENOTFOUND with the message pushed instead. */
static int load_behaviour(tr_lstate *ls, lua_State *L, int from_file, const char *src,
                          const char *chunkname) {
  if (from_file) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->files_ref);
    if (lua_getfield(L, -1, src) == LUA_TTABLE) {
      lua_remove(L, -2);
      return 0;
    }
    lua_pop(L, 2);
  }
  int rc = from_file ? luaL_loadfile(L, src)
                     : luaL_loadbuffer(L, src, strlen(src), chunkname ? chunkname : "=behaviour");
  if (rc != LUA_OK) return rc == LUA_ERRFILE ? TR_ENOTFOUND : TR_ELOAD;
  /* the chunk runs with a proxy of the globals as its _ENV */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  push_proxy(ls, L, -1);
  lua_remove(L, -2);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  lua_pushcfunction(L, msgh);
  lua_insert(L, -2);
  if (lua_pcall(L, 0, 1, -2) != LUA_OK) {
    lua_remove(L, -2);
    return TR_ELOAD;
  }
  lua_remove(L, -2);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: a behaviour must return a table of handlers",
                    from_file ? src : (chunkname ? chunkname : "behaviour"));
    return TR_ELOAD;
  }
  char name[128];
  basename_noext(from_file ? src : (chunkname ? chunkname : "Actor"), name, sizeof name);
  if (chunkname && (chunkname[0] == '=' || chunkname[0] == '@'))
    basename_noext(chunkname + 1, name, sizeof name);
  lua_getfield(L, -1, "_NAME");
  int has_name = lua_isstring(L, -1);
  lua_pop(L, 1);
  if (!has_name) {
    lua_pushstring(L, name);
    lua_setfield(L, -2, "_NAME");
  }
  if (from_file) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->files_ref);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, src);
    lua_pop(L, 1);
  }
  return 0;
}

static tr_actor *spawn_lua_env(tr_lstate *ls, lua_State *L, tr_lbeh *b, tr_env *init,
                               const char *iargs, size_t ilen, uint64_t serial,
                               const tr_spawn_options *o, int *rc) {
  tr_actor *a;
  *rc = tr__spawn_actor(SCH(ls), serial, serial != 0, TR_LANG_LUA, b, o, init, iargs, ilen, &a);
  if (*rc) return NULL;
  lua_createtable(L, 0, 2);
  a->self_ref = self_ref_new(ls, L);
  return a;
}

/* *made: the actor (NULL if it failed) */
static int spawn_lua_made(tr_lstate *ls, lua_State *L, tr_lbeh *b, const char *payload,
                          size_t len, const tr_spawn_options *o, tr_actor **made) {
  tr_sched *s = SCH(ls);
  tr_actor *a;
  int rc;
  *made = NULL;
  if (len <= sizeof a->init_args && payload != s->own_hint) {
    /* small and no references to take: the arguments wait in the record */
    a = spawn_lua_env(ls, L, b, NULL, payload, len, 0, o, &rc);
    if (!a) return rc;
    *made = a;
    return 0;
  }
  tr_env *init = tr__env_new_local(s, NULL, 0, payload, len); /* run and freed here */
  if (!init) return TR_ENOMEM;
  a = spawn_lua_env(ls, L, b, init, NULL, 0, 0, o, &rc);
  if (!a) {
    tr__env_free(s, init);
    return rc;
  }
  *made = a;
  return 0;
}

static int spawn_lua(tr_lstate *ls, lua_State *L, tr_lbeh *b, const char *payload, size_t len,
                     const tr_spawn_options *o, tr_addr *out) {
  tr_actor *a;
  int rc = spawn_lua_made(ls, L, b, payload, len, o, &a);
  if (!rc) *out = a->addr;
  return rc;
}

/* On the scheduler a spawner on another one chose: load the behaviour into
 * this scheduler's state and make the actor at the reserved address. */
int tr__lua_spawn_req(tr_sched *s, tr_spawnreq *q, tr_env *init, const char **why) {
  static __thread char err[512];
  tr_lstate *ls = s->ls;
  if (!ls) return TR_ESTOPPED;
  lua_State *L = ls->L;
  int top = lua_gettop(L);
  int rc = load_behaviour(ls, L, q->from_file, q->src, q->chunkname);
  if (rc) {
    snprintf(err, sizeof err, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "load error");
    *why = err;
    lua_settop(L, top);
    return rc;
  }
  tr_lbeh *b = lbeh_for_table(ls, L, -1, NULL);
  tr_spawn_options o = q->o;
  o.name = q->name;
  tr_actor *a = spawn_lua_env(ls, L, b, init, NULL, 0, q->serial, &o, &rc);
  if (a && a->owned) a->cold->refs += q->refs;
  lua_settop(L, top);
  return rc;
}

/* Spawn a Lua file or source on another scheduler t: the syntax is checked
 * here first, so that a typo is reported to the spawner. */
static int spawn_lua_remote(tr_lstate *ls, lua_State *L, tr_sched *t, int from_file,
                            const char *src, const char *chunkname, const char *args,
                            size_t len, const tr_spawn_options *o, tr_addr *out) {
  /* loaded here too (a file once per state, as on every scheduler) so that
   * what fails to load fails for the spawner */
  const char *hint = SCH(ls)->own_hint; /* (the load runs Lua code) */
  int lrc = load_behaviour(ls, L, from_file, src, chunkname);
  if (lrc) return lrc; /* the message is on the stack */
  SCH(ls)->own_hint = hint;
  lua_getfield(L, -1, "_NAME"); /* load_behaviour named it; no tr_lbeh here: it runs there */
  const char *bn = lua_tostring(L, -1);
  char *behname = bn ? strdup(bn) : NULL;
  lua_pop(L, 2);
  tr_spawnreq *q = calloc(1, sizeof *q);
  if (!q) {
    free(behname);
    return TR_ENOMEM;
  }
  q->behname = behname;
  q->lang = TR_LANG_LUA;
  q->from_file = from_file;
  q->src = strdup(src);
  q->chunkname = chunkname ? strdup(chunkname) : NULL;
  if (o) q->o = *o;
  q->o.name = NULL;
  q->name = o && o->name ? strdup(o->name) : NULL;
  q->refs = o && o->owned ? 1 : 0;
  if (!q->src || (chunkname && !q->chunkname) || (o && o->name && !q->name)) {
    tr__spawnreq_free(q);
    return TR_ENOMEM;
  }
  return tr__spawn_remote(SCH(ls), t, q, args, len, out);
}

int tr__lua_spawn(tr_host *h, int from_file, const char *src, const char *chunkname,
                  const tr_buf *args, const tr_spawn_options *o, tr_addr *out) {
  if (!h || !src) return TR_EINVAL;
  tr_sched *here = tr__here(h);
  tr_lstate *ls = here->ls;
  lua_State *L = ls->L;
  int top = lua_gettop(L);
  tr_sched *t = tr__place(here, o, 1);
  if (!t) return TR_EINVAL;
  if (t != here) {
    int rc = spawn_lua_remote(ls, L, t, from_file, src, chunkname, args ? args->data : NULL,
                              args ? args->len : 0, o, out);
    if (rc == TR_ELOAD || rc == TR_ENOTFOUND) tr__log(h, "%s", lua_tostring(L, -1));
    lua_settop(L, top);
    return rc;
  }
  int rc = load_behaviour(ls, L, from_file, src, chunkname);
  if (rc) {
    tr__log(h, "%s", lua_tostring(L, -1));
    lua_settop(L, top);
    return rc;
  }
  tr_lbeh *b = lbeh_for_table(ls, L, -1, NULL);
  tr_addr a = TR_NOADDR;
  rc = spawn_lua(ls, L, b, args ? args->data : NULL, args ? args->len : 0, o, &a);
  lua_settop(L, top);
  if (rc == 0 && out) *out = a;
  return rc;
}

int tr_spawn_named(tr_host *h, const char *name, const tr_buf *args, const tr_spawn_options *o,
                   tr_addr *out) {
  if (!h || !name) return TR_EINVAL;
  tr_sched *here = tr__here(h);
  tr_lstate *ls = here->ls;
  lua_State *L = ls->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->named_ref);
  int rc;
  if (lua_getfield(L, -1, name) == LUA_TTABLE) {
    if (tr__place(here, o, 0) != here) { /* a named Lua behaviour lives in this state */
      lua_settop(L, top);
      return TR_EINVAL;
    }
    tr_lbeh *b = lbeh_for_table(ls, L, -1, name);
    tr_addr a = TR_NOADDR;
    rc = spawn_lua(ls, L, b, args ? args->data : NULL, args ? args->len : 0, o, &a);
    if (rc == 0 && out) *out = a;
  } else {
    const tr_behaviour *cb = tr__find_cbehaviour(h, name);
    rc = cb ? tr_spawn(h, cb, args, o, out) : TR_ENOTFOUND;
  }
  lua_settop(L, top);
  return rc;
}

int tr_spawn_lua_file(tr_host *h, const char *path, const tr_buf *args,
                      const tr_spawn_options *o, tr_addr *out) {
  return tr__lua_spawn(h, 1, path, NULL, args, o, out);
}

int tr_spawn_lua_string(tr_host *h, const char *code, const char *chunkname,
                        const tr_buf *args, const tr_spawn_options *o, tr_addr *out) {
  return tr__lua_spawn(h, 0, code, chunkname, args, o, out);
}

/* ---- memory accounting ------------------------------------------------------------------ */
/* Every allocation of the state goes through here. Growth is charged to the
 * actor whose handler is running (ls->charge); over its cap, or over the
 * host's cap, the allocation fails, Lua raises "not enough memory" in that
 * handler, and the actor dies with reason out_of_memory. The per-actor
 * figure is approximate: it is the net bytes allocated while the actor ran
 * (the collector may free other actors' garbage during its turn). */
/* The state's blocks come from its scheduler's arena when the host made the
 * state (so it is closed through here): most are small and, for a million
 * actors, page faults were most of a spawn's time. A block the arena does not
 * own (made before the arena was set, bigger than TR_ARENA_MAX, or made when
 * the arena was full) stays with the state's own allocator. */
static void *lua_big(tr_lmem *m, void *ptr, size_t osize, size_t nsize);

static void *lua_block(tr_lmem *m, void *ptr, size_t osize, size_t nsize) {
  tr_arena *ar = m->arena;
  if (ar && ((ptr && osize >= TR_BIG_MIN) || nsize >= TR_BIG_MIN))
    return lua_big(m, ptr, osize, nsize);
  int mine = ar && ptr && tr_arena_owns(ar, ptr);
  if (!ar || (!mine && nsize > TR_ARENA_MAX)) return m->orig_alloc(m->orig_ud, ptr, osize, nsize);
  if (nsize == 0) {
    if (mine) tr_arena_free(ar, ptr);
    else m->orig_alloc(m->orig_ud, ptr, osize, 0);
    return NULL;
  }
  size_t have = mine ? tr_arena_block_size(ptr) : 0;
  if (mine && tr_arena_round(nsize) == have) return ptr; /* the same class */
  void *np = tr_arena_alloc(ar, nsize);
  if (!np) {
    if (mine && nsize <= have) return ptr; /* a shrink must not fail: it stays */
    np = m->orig_alloc(m->orig_ud, NULL, 0, nsize);
    if (!np) return NULL;
  }
  if (ptr) {
    memcpy(np, ptr, osize < nsize ? osize : nsize);
    if (mine) tr_arena_free(ar, ptr);
    else m->orig_alloc(m->orig_ud, ptr, osize, 0);
  }
  return np;
}

static __attribute__((noinline)) void *lalloc_slow(void *ud, void *ptr, size_t osize,
                                                  size_t nsize);

/* The usual cases first, with no stack frame: a new small block or one
 * freed, from the arena, with no memory limit to check. An empty vector
 * (ptr NULL, nsize 0: Lua resizing a table's empty array part) needs
 * nothing. */
static void *tr_lalloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  tr_lmem *m = ud;
  tr_actor *a = m->charge;
  tr_arena *ar = m->arena;
  if (!ptr) {
    if (!nsize) return NULL;
    if (ar && nsize <= TR_ARENA_MAX && !m->hostcap && (!a || !a->cold->mem_limit)) {
      void *p = tr_arena_alloc(ar, nsize);
      if (__builtin_expect(p != NULL, 1)) {
        __atomic_store_n(&m->total, m->total + (int64_t)nsize, __ATOMIC_RELAXED);
        if (a) {
          a->mem += (int64_t)nsize;
          a->oom = 0;
        }
        return p;
      }
    }
  } else if (!nsize && ar && tr_arena_owns(ar, ptr)) {
    tr_arena_free(ar, ptr);
    __atomic_store_n(&m->total, m->total - (int64_t)osize, __ATOMIC_RELAXED);
    if (a) {
      a->mem -= (int64_t)osize;
      if (a->mem < 0) a->mem = 0;
    }
    return NULL;
  }
  return lalloc_slow(ud, ptr, osize, nsize);
}

/* A block that is big (tr_big_*) before or after: with the arena, a state
 * the host made gives every block of TR_BIG_MIN bytes or more a mapping of
 * its own, so a block is big by its size alone. A big block that shrinks
 * below becomes an ordinary one (copied), and the other way round. */
static void *lua_big(tr_lmem *m, void *ptr, size_t osize, size_t nsize) {
  int was_big = ptr && osize >= TR_BIG_MIN;
  if (was_big && nsize >= TR_BIG_MIN) return tr_big_realloc(ptr, osize, nsize);
  if (was_big) { /* freed, or an ordinary block now */
    void *np = NULL;
    if (nsize) {
      np = lua_block(m, NULL, 0, nsize);
      if (!np) return NULL; /* (Lua keeps the old block) */
      memcpy(np, ptr, nsize);
    }
    tr_big_free(ptr, osize);
    return np;
  }
  void *np = tr_big_alloc(nsize);
  if (!np) return NULL;
  if (ptr) {
    memcpy(np, ptr, osize);
    lua_block(m, ptr, osize, 0);
  }
  return np;
}

static void *lalloc_slow(void *ud, void *ptr, size_t osize, size_t nsize) {
  tr_lmem *ls = ud;
  size_t old = ptr ? osize : 0;
  tr_actor *a = ls->charge;
  if (nsize > old) {
    size_t grow = nsize - old;
    size_t hostcap = ls->hostcap;
    /* the host cap binds only inside a handler, whose errors lua_resume
     * catches; elsewhere (decoding a payload, spawning from C) a failed
     * allocation would have no protected call to land in and Lua would panic */
    if (hostcap && a && host_lua_bytes(ls->h) + (int64_t)grow > (int64_t)hostcap) {
      if (a) a->oom = 1;
      return NULL;
    }
    if (a && a->cold->mem_limit && a->mem + (int64_t)grow > a->cold->mem_limit) {
      a->oom = 1;
      return NULL;
    }
  }
  void *p = lua_block(ls, ptr, osize, nsize);
  if (p || nsize == 0) {
    int64_t d = (int64_t)nsize - (int64_t)old;
    __atomic_store_n(&ls->total, ls->total + d, __ATOMIC_RELAXED);
    if (a) {
      a->mem += d;
      if (a->mem < 0) a->mem = 0;
      /* Lua retries a failed allocation after an emergency collection: if
       * that freed enough, the actor is not out of memory after all */
      if (d > 0) a->oom = 0;
    }
  }
  return p;
}

void tr__lua_interrupt(tr_sched *s, tr_actor *a, const char *why) {
  if (!a || a->lang != TR_LANG_LUA || !a->co || a->state == TR_S_DEAD) return;
  tr_actor_cold *c = tr__cold(a);
  if (!c) return;
  free(c->interrupt);
  c->interrupt = strdup(why ? why : "interrupted");
  if (a->running) return; /* the running handler sees it at its next hook */
  switch (a->wait) { /* stop waiting: the hook raises as soon as it resumes */
    case TR_W_CALL: tr__pending_free(s, tr__pending_get(s, a->wait_req)); break;
    case TR_W_SLEEP: {
      tr_tentry *t = (tr_tentry *)(uintptr_t)a->wait_req;
      if (t) {
        tr__timer_del(s, t);
        free(t);
      }
      a->wait_req = 0;
      break;
    }
    default: break;
  }
  tr__env_free(s, a->wake);
  a->wake = NULL;
  tr__set_wait(a, TR_W_YIELD);
  tr__set_wait_target(a, TR_NOADDR);
  tr__preempt_arm(a->co);
  tr__schedule(s, a);
}

/* ---- module functions --------------------------------------------------------------------- */
typedef struct {
  const tr_behaviour *b;
} tr_lcbeh;

/* Reads spawn options from the table at idx. The name string (if any) is
 * left on the stack so that o->name stays valid; the caller restores the top. */
static void read_spawn_opts(lua_State *L, int idx, tr_spawn_options *o) {
  memset(o, 0, sizeof *o);
  if (idx == 0 || lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "mailbox");
  lua_Integer cap = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, cap >= 0 && cap <= 100000000, idx, "mailbox must be a positive size");
  o->mailbox_capacity = (uint32_t)cap;
  lua_pop(L, 1);
  lua_getfield(L, idx, "owned");
  o->owned = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "max_memory");
  lua_Integer mem = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, mem >= 0, idx, "max_memory must be a size in bytes");
  o->mem_limit = (size_t)mem;
  lua_pop(L, 1);
  lua_getfield(L, idx, "cpu_limit");
  lua_Integer cpu = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, cpu >= 0, idx, "cpu_limit must be a time in ms");
  o->cpu_limit_ms = cpu;
  lua_pop(L, 1);
  lua_getfield(L, idx, "link");
  if (lua_toboolean(L, -1)) {
    tr_actor *me = current_actor(LS(L));
    if (!me) luaL_error(L, "spawn_with{link = true} links to the spawning actor: spawn from a handler");
    o->link = me->addr;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "scheduler");
  if (!lua_isnil(L, -1)) {
    lua_Integer k = luaL_checkinteger(L, -1);
    luaL_argcheck(L, k >= 1 && k <= TR_MAX_SCHEDULERS, idx,
                  "scheduler must be a scheduler number (1 .. troupe.schedulers())");
    o->scheduler = (unsigned)k;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "name") == LUA_TSTRING) o->name = lua_tostring(L, -1);
}

/* "Account", "my_sup.v2": a behaviour name rather than a path or code */
static int is_name(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return 0;
  size_t n = strlen(s);
  if (n > 4 && strcmp(s + n - 4, ".lua") == 0) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '.'))
      return 0;
  return 1;
}

static int do_spawn(lua_State *L, int optidx, int behidx) {
  tr_lstate *ls = check_ls(L);
  tr_spawn_options o;
  int top = lua_gettop(L);
  read_spawn_opts(L, optidx, &o);
  tr_buf args;
  tr_buf_init(&args);
  /* scalars (the usual arguments) by the fast path, the rest by the encoder */
  int n = enc_scalars(ls, L, behidx + 1, top, args.data, args.cap);
  if (n >= 0) {
    args.len = (size_t)(n & ~ENC_OWNED);
    if ((n & ENC_OWNED) && ls->h) SCH(ls)->own_hint = args.data; /* as encode_values does */
  } else {
    encode_or_raise(ls, L, behidx + 1, top, &args, "spawn arg");
  }
  tr_addr a = TR_NOADDR;
  tr_actor *made = NULL; /* a local Lua spawn's actor */
  int rc, remote_owned = 0;
  tr_sched *here = SCH(ls);
  /* (loading a behaviour runs Lua code, which may encode: the init
   * envelope's references are taken from this hint) */
  const char *hint = here->own_hint;
  if (lua_type(L, behidx) == LUA_TUSERDATA && luaL_testudata(L, behidx, MT_CBEH)) {
    tr_lcbeh *cb = lua_touserdata(L, behidx);
    rc = tr_spawn(ls->h, cb->b, &args, &o, &a);
    remote_owned = rc == 0 && o.owned && tr__foreign(here, a);
  } else if (lua_type(L, behidx) == LUA_TTABLE) {
    if (tr__place(here, &o, 0) != here) goto pinned;
    tr_lbeh *b = lbeh_for_table(ls, L, behidx, NULL);
    rc = spawn_lua_made(ls, L, b, args.data, args.len, &o, &made);
  } else if (lua_type(L, behidx) == LUA_TSTRING && is_name(lua_tostring(L, behidx))) {
    /* a behaviour by name: a named Lua behaviour, else a registered C one */
    const char *name = lua_tostring(L, behidx);
    const tr_behaviour *cb;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->named_ref);
    if (lua_getfield(L, -1, name) == LUA_TTABLE) {
      if (tr__place(here, &o, 0) != here) goto pinned;
      tr_lbeh *b = lbeh_for_table(ls, L, -1, name);
      rc = spawn_lua_made(ls, L, b, args.data, args.len, &o, &made);
    } else if ((cb = tr__find_cbehaviour(ls->h, name))) {
      rc = tr_spawn(ls->h, cb, &args, &o, &a);
      remote_owned = rc == 0 && o.owned && tr__foreign(here, a);
    } else {
      tr_buf_free(&args);
      return raise_errorf(L, TR_ENOTFOUND, "no behaviour named '%s' (name one with "
                                           "troupe.behaviour(name, table), or give a file)", name);
    }
  } else if (lua_type(L, behidx) == LUA_TSTRING) {
    const char *src = lua_tostring(L, behidx);
    size_t sl = strlen(src);
    int from_file = !strchr(src, '\n') &&
                    ((sl > 4 && strcmp(src + sl - 4, ".lua") == 0) || strchr(src, '/'));
    tr_sched *t = tr__place(here, &o, 1);
    if (!t) goto badsched;
    if (t != here) {
      rc = spawn_lua_remote(ls, L, t, from_file, src, from_file ? NULL : "=behaviour", args.data,
                            args.len, &o, &a);
      if (rc == TR_ELOAD || rc == TR_ENOTFOUND) {
        tr_buf_free(&args);
        return raise_error(L, rc, lua_tostring(L, -1));
      }
      remote_owned = rc == 0 && o.owned;
    } else {
      rc = load_behaviour(ls, L, from_file, src, from_file ? NULL : "=behaviour");
      if (rc) {
        tr_buf_free(&args);
        return raise_error(L, rc, lua_tostring(L, -1));
      }
      tr_lbeh *b = lbeh_for_table(ls, L, -1, NULL);
      here->own_hint = hint;
      rc = spawn_lua_made(ls, L, b, args.data, args.len, &o, &made);
    }
  } else {
    tr_buf_free(&args);
    return luaL_typeerror(L, behidx, "behaviour (table, file name or C behaviour)");
  }
  tr_buf_free(&args);
  if (rc == TR_EINVAL && o.scheduler) {
  badsched:
    tr_buf_free(&args);
    return raise_errorf(L, TR_EINVAL, "no scheduler %u: the host runs %u", o.scheduler,
                        ls->h->nsched);
  }
  if (rc == TR_EEXISTS) return raise_errorf(L, rc, "name '%s' is already registered", o.name);
  if (rc) return raise_error(L, rc, NULL);
  if (made) push_addr_new(ls, L, made); /* (nothing ran since it was made) */
  else if (!remote_owned) push_addr(ls, L, a, PA_LOOKUP); /* here: an owned one is counted */
  else if (lua_type(L, behidx) == LUA_TUSERDATA || is_name(lua_tostring(L, behidx)))
    push_addr(ls, L, a, PA_OWNED); /* C behaviours: the spawn request carries no count */
  else
    push_addr(ls, L, a, PA_ADOPT); /* the request's count (q->refs) is this userdata's */
  return 1;
pinned:
  tr_buf_free(&args);
  if (o.scheduler > ls->h->nsched) goto badsched;
  return raise_errorf(L, TR_EINVAL,
                      "cannot place this behaviour on scheduler %u: an inline behaviour table "
                      "lives in scheduler %u's Lua state (give a file, a source string or a C "
                      "behaviour to place it elsewhere)",
                      o.scheduler, here->index + 1);
}

static int l_spawn(lua_State *L) {
  luaL_checkany(L, 1);
  return do_spawn(L, 0, 1);
}

static int l_spawn_with(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  return do_spawn(L, 1, 2);
}

/* Interpret (status, values...) from base to top as the result of a call. */
static int call_result(lua_State *L, int base) {
  int top = lua_gettop(L);
  int status = (int)lua_tointeger(L, base);
  if (status == TR_OK) return top - base;
  if (status == TR_FAILED) {
    lua_pushnil(L);
    if (top > base) lua_pushvalue(L, base + 1);
    else lua_pushnil(L);
    return 2;
  }
  const char *msg = top > base ? lua_tostring(L, base + 1) : NULL;
  const char *tb = top > base + 1 ? lua_tostring(L, base + 2) : NULL;
  push_error(L, status, msg, tb);
  return lua_error(L);
}

static int call_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return call_result(L, (int)ctx + 1);
}

/* Block the main code until p answers. */
static int call_blocking(tr_lstate *ls, lua_State *L, tr_pending *p) {
  tr_sched *s = SCH(ls);
  int rc = tr__block_until(s, &p->done);
  if (rc) {
    tr__pending_free(s, p);
    return raise_error(L, rc == TR_EINVAL ? TR_EINVAL : TR_ESTOPPED,
                       rc == TR_EINVAL ? "cannot wait for a reply inside a loop callback"
                                       : "the call can never be answered: nothing is left "
                                         "to run");
  }
  int base = lua_gettop(L) + 1;
  tr_env *e = p->result;
  lua_pushinteger(L, e ? e->status : TR_ESTOPPED);
  if (e && push_payload(ls, L, TR_ENV_PAYLOAD(e), e->len) < 0) {
    lua_pop(L, 1);
    lua_pushinteger(L, TR_EBADVALUE);
    lua_pushstring(L, "corrupt reply payload");
  }
  tr__pending_free(s, p);
  return call_result(L, base);
}

/* Main code waits until `to`'s mailbox has room, running the loop: 0, or
 * TR_EDEAD, TR_EFULL (nothing left to run makes room, or inside a loop
 * callback), TR_ESTOPPED. Another scheduler's mailbox had room when its
 * owner looked: the send may find it full again (then wait again). */
static int wait_room_blocking(tr_lstate *ls, tr_addr to) {
  tr_sched *s = SCH(ls);
  if (s->in_callback) return TR_EFULL;
  if (tr__foreign(s, to)) return tr__room_wait_blocking(s, to);
  for (;;) {
    tr_actor *t = tr__lookup(s, to);
    if (!t) return tr__alive_any(s, to) ? 0 : TR_EDEAD;
    if (t->pub.n < t->cap) return 0;
    if (__atomic_load_n(&ls->h->exiting, __ATOMIC_ACQUIRE)) return TR_ESTOPPED;
    /* the loop may have drained the mailbox and gone idle: look again first */
    if (!uv_run(s->loop, UV_RUN_ONCE) && !s->runq_head) {
      t = tr__lookup(s, to);
      if (!t) return TR_EDEAD;
      return t->pub.n < t->cap ? 0 : TR_EFULL;
    }
  }
}

/* The words of a failed delivery to `to`. */
static const char *delivery_error(tr_lstate *ls, tr_addr to, int rc, char *buf, size_t cap) {
  char who[128];
  tr_addr_format(ls->h, to, who, sizeof who);
  if (rc == TR_EDEAD) snprintf(buf, cap, "%s is not alive", who);
  else snprintf(buf, cap, "%s: %s", who, tr_strerror(rc));
  return buf;
}

static int do_call(lua_State *L, int64_t timeout, int nowait, int first) {
  tr_lstate *ls = check_ls(L);
  tr_sched *s = SCH(ls);
  tr_addr to = check_addr(L, 1);
  size_t mlen;
  const char *method = luaL_checklstring(L, first, &mlen);
  luaL_argcheck(L, mlen > 0, first, "method name must not be empty");
  tr_actor *a = running_actor(ls, L);
  if (a && !can_wait(ls, a, L)) return cannot_wait(L, "call");
  tr_env *fe = a ? env_scalars(s, ls, L, method, mlen, first + 1, lua_gettop(L)) : NULL;
  tr_buf args;
  tr_buf_init(&args);
  if (!fe) encode_or_raise(ls, L, first + 1, lua_gettop(L), &args, "arg");
  char msg[256];
  if (a) {
    char why[512];
    if (tr__check_deadlock(s, a, to, why, sizeof why)) {
      tr__env_free(s, fe);
      tr_buf_free(&args);
      return raise_error(L, TR_EDEADLOCK, why);
    }
    tr_env *e = fe ? fe : tr__env_new(s, method, mlen, args.data, args.len);
    tr_pending *p = e ? tr__pending_new(s, TR_P_LUA, a->addr, to, timeout) : NULL;
    if (args.data != args.inline_) tr_buf_free(&args); /* (inline: nothing to free) */
    if (!p) {
      tr__env_free(s, e);
      return raise_error(L, TR_ENOMEM, NULL);
    }
    e->kind = TR_K_CALL;
    e->from = a->addr;
    e->to = to;
    e->req = p->req;
    tr_actor *full = NULL;
    int rc = tr__deliver(s, e, 0, &full);
    if (rc == TR_EFULL && !nowait) {
      /* this scheduler's mailbox takes it when there is room; another's
       * owner lets it in then (the answer comes as for any call) */
      rc = full ? tr__enqueue_room_wait(s, full, a->addr, e) : tr__deliver_admit(s, e);
      if (rc == 0) rc = 1; /* waiting for room */
    }
    if (rc < 0) {
      tr__env_free(s, e);
      tr__pending_free(s, p);
      return raise_error(L, rc, delivery_error(ls, to, rc, msg, sizeof msg));
    }
    tr__set_wait(a, rc == 1 ? TR_W_ROOM : TR_W_CALL);
    a->wait_req = p->req;
    tr__set_wait_target(a, to);
    a->wait_since = tr__now(s);
    a->n_out++;
    return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), call_k);
  }
  /* main code: run the loop until the answer comes */
  if (s->in_callback) {
    tr_buf_free(&args);
    return raise_error(L, TR_EINVAL,
                       "call from outside an actor while the loop runs: call from a handler");
  }
  tr_pending *p;
  const char *hint = s->own_hint; /* owned addresses in args: for each envelope made */
  int rc = tr__call_start(s, TR_NOADDR, to, method, mlen, args.data, args.len, timeout, TR_P_BLOCK,
                          &p);
  while (rc == TR_EFULL && !nowait) { /* wait for room, then try again */
    rc = wait_room_blocking(ls, to);
    s->own_hint = hint;
    if (rc == 0)
      rc = tr__call_start(s, TR_NOADDR, to, method, mlen, args.data, args.len, timeout, TR_P_BLOCK,
                          &p);
    else break;
  }
  tr_buf_free(&args);
  if (rc) return raise_error(L, rc, delivery_error(ls, to, rc, msg, sizeof msg));
  return call_blocking(ls, L, p);
}

static int l_call(lua_State *L) { return do_call(L, TR_TIMEOUT_DEFAULT, 0, 2); }

/* addr:shutdown([timeout_ms]) -> reason | nil, "vetoed": stop gracefully and
 * wait until it is gone; after the timeout (default: the call timeout) kill. */
static int l_shutdown(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_sched *s = SCH(ls);
  tr_addr to = check_addr(L, 1);
  int64_t timeout = TR_TIMEOUT_DEFAULT;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number t = luaL_checknumber(L, 2);
    luaL_argcheck(L, t > 0, 2, "timeout must be > 0 (ms)");
    timeout = t >= 1e15 ? TR_TIMEOUT_INFINITE : (int64_t)t;
  }
  lua_settop(L, 1);
  if (!tr__alive_any(s, to)) {
    lua_pushstring(L, "noproc");
    return 1;
  }
  tr_actor *a = running_actor(ls, L);
  if (a && !can_wait(ls, a, L)) return cannot_wait(L, "shutdown");
  char why[512];
  if (a && tr__check_deadlock(s, a, to, why, sizeof why))
    return raise_error(L, TR_EDEADLOCK, why);
  tr_pending *p = tr__pending_new(s, a ? TR_P_LUA : TR_P_BLOCK, a ? a->addr : TR_NOADDR, to,
                                  timeout);
  if (!p) return raise_error(L, TR_ENOMEM, NULL);
  p->kill_on_timeout = 1;
  if (tr__stop_and_wait(s, to, p->req, a ? a->addr : TR_NOADDR)) {
    tr__pending_free(s, p);
    return raise_error(L, TR_ENOMEM, NULL);
  }
  if (a) {
    tr__set_wait(a, TR_W_CALL);
    a->wait_req = p->req;
    tr__set_wait_target(a, to);
    a->wait_since = tr__now(s);
    return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), call_k);
  }
  if (s->in_callback) {
    tr__pending_free(s, p);
    return raise_error(L, TR_EINVAL, "shutdown from outside an actor while the loop runs");
  }
  return call_blocking(ls, L, p);
}

static int l_monitor(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *me = current_actor(ls);
  if (!me) return luaL_error(L, "troupe.monitor: the watcher is the running actor; call it in a handler");
  uint64_t ref;
  int rc = tr_monitor(ls->h, me->addr, check_addr(L, 1), &ref);
  if (rc) return raise_error(L, rc, NULL);
  lua_pushinteger(L, (lua_Integer)ref);
  return 1;
}

static int l_demonitor(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  uint64_t ref = (uint64_t)luaL_checkinteger(L, 1);
  /* the refs of this scheduler's watchers name it: another is not ours */
  lua_pushboolean(L, (ref >> 56) == SCH(ls)->index && tr_demonitor(ls->h, ref) == 0);
  return 1;
}

static int l_link(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *me = current_actor(ls);
  if (!me) return luaL_error(L, "troupe.link links the running actor; call it in a handler");
  tr_addr to = check_addr(L, 1);
  int rc = tr_link(ls->h, me->addr, to);
  if (rc == TR_EDEAD) {
    char who[128];
    tr_addr_format(ls->h, to, who, sizeof who);
    return raise_errorf(L, rc, "cannot link to %s: it is not alive (noproc)", who);
  }
  if (rc) return raise_error(L, rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_unlink(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *me = current_actor(ls);
  if (!me) return luaL_error(L, "troupe.unlink unlinks the running actor; call it in a handler");
  tr_unlink(ls->h, me->addr, check_addr(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_trap_exit(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *me = current_actor(ls);
  if (!me) return luaL_error(L, "troupe.trap_exit applies to the running actor; call it in a handler");
  int old = me->trap_exit;
  me->trap_exit = lua_isnone(L, 1) ? 1 : lua_toboolean(L, 1);
  lua_pushboolean(L, old);
  return 1;
}

static int l_memory(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *a = lua_isnoneornil(L, 1) ? current_actor(ls) : tr__lookup(ls->s, check_addr(L, 1));
  if (!a) {
    lua_pushinteger(L, (lua_Integer)ls->mem->total);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)a->mem);
  return 1;
}

static int l_call_with(lua_State *L) {
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t timeout = TR_TIMEOUT_DEFAULT;
  lua_getfield(L, 2, "timeout");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    lua_Number t = lua_tonumber(L, -1);
    luaL_argcheck(L, t >= 0, 2, "timeout must be >= 0 (ms) or math.huge");
    timeout = t >= 1e15 ? TR_TIMEOUT_INFINITE : (int64_t)t;
    if (timeout == 0) timeout = 1;
  } else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    timeout = TR_TIMEOUT_INFINITE;
  }
  lua_getfield(L, 2, "nowait");
  int nowait = lua_toboolean(L, -1);
  lua_pop(L, 2);
  lua_remove(L, 2); /* options: now the stack is addr, method, args... */
  return do_call(L, timeout, nowait, 2);
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  int base = (int)ctx + 1;
  if (lua_gettop(L) >= base && lua_tointeger(L, base) < 0) {
    push_error(L, (int)lua_tointeger(L, base), NULL, NULL);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int do_send(lua_State *L, int nowait) {
  tr_lstate *ls = check_ls(L);
  tr_sched *s = SCH(ls);
  tr_addr to = check_addr(L, 1);
  size_t mlen;
  const char *method = lua_tolstring(L, 2, &mlen); /* (a number becomes its string) */
  if (!method) method = luaL_checklstring(L, 2, &mlen); /* the error */
  luaL_argcheck(L, mlen > 0, 2, "method name must not be empty");
  tr_env *e = env_scalars(s, ls, L, method, mlen, 3, lua_gettop(L));
  if (!e) {
    tr_buf args;
    tr_buf_init(&args);
    encode_or_raise(ls, L, 3, lua_gettop(L), &args, "arg");
    e = tr__env_new(s, method, mlen, args.data, args.len);
    tr_buf_free(&args);
    if (!e) return raise_error(L, TR_ENOMEM, NULL);
  }
  tr_actor *a = running_actor(ls, L), *cur = current_actor(ls), *full;
  e->from = cur ? cur->addr : TR_NOADDR;
  e->to = to;
  /* a full mailbox, on any scheduler: try_send says so; a handler's send
   * waits for room (another scheduler's owner lets it in then); main code
   * runs the loop until there is room */
  full = NULL;
  int rc = tr__deliver(s, e, 0, &full);
  /* below a C call boundary a handler cannot wait: a full mailbox is
   * reported (nil, err), as try_send does */
  if (rc == TR_EFULL && a && !can_wait(ls, a, L)) nowait = 1;
  if (rc == TR_EFULL && !nowait && a && !full) { /* wait until its owner lets it in */
    tr_pending *p = tr__pending_new(s, TR_P_LUA, a->addr, to, TR_TIMEOUT_INFINITE);
    e->req = p ? p->req : 0;
    rc = p ? tr__deliver_admit(s, e) : TR_ENOMEM;
    if (rc == 0) {
      tr__set_wait(a, TR_W_ROOM);
      a->wait_req = p->req;
      tr__set_wait_target(a, to);
      a->wait_since = tr__now(s);
      a->n_out++;
      return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), send_k);
    }
    tr__pending_free(s, p);
  } else if (rc == TR_EFULL && !nowait) {
    if (a) {
      if (tr__enqueue_room_wait(s, full, a->addr, e) == 0) {
        tr__set_wait(a, TR_W_ROOM);
        tr__set_wait_target(a, to);
        a->wait_since = tr__now(s);
        a->n_out++;
        return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), send_k);
      }
    } else {
      /* another scheduler's mailbox may be full again when the send comes */
      while ((rc = wait_room_blocking(ls, to)) == 0 && (rc = tr__deliver(s, e, 0, NULL)) == TR_EFULL) {
      }
    }
  }
  if (rc) {
    tr__env_free(s, e);
    char msg[256];
    lua_pushnil(L);
    push_error(L, rc, delivery_error(ls, to, rc, msg, sizeof msg), NULL);
    return 2;
  }
  if (a) a->n_out++;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_send(lua_State *L) { return do_send(L, 0); }
static int l_try_send(lua_State *L) { return do_send(L, 1); }

static int l_stop(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_addr a;
  if (lua_isnoneornil(L, 1)) {
    tr_actor *act = current_actor(ls);
    if (!act) return luaL_error(L, "troupe.stop() without an address only works inside an actor");
    a = act->addr;
  } else {
    a = check_addr(L, 1);
  }
  int rc = tr_stop(ls->h, a);
  lua_pushboolean(L, rc == 0);
  return 1;
}

static int l_kill(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_addr a = check_addr(L, 1);
  int rc = tr_kill(ls->h, a);
  lua_pushboolean(L, rc == 0);
  return 1;
}

static int l_alive(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  lua_pushboolean(L, tr_alive(ls->h, check_addr(L, 1)));
  return 1;
}

static int l_weak(lua_State *L) {
  push_weak(LS(L), L, check_addr(L, 1));
  return 1;
}

static int l_upgrade(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_addr a = check_addr(L, 1);
  if (!tr_alive(ls->h, a)) return 0;
  push_addr(ls, L, a, PA_LOOKUP);
  return 1;
}

static int l_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_addr(L, 1));
  return 1;
}

static int l_self(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *a = current_actor(ls);
  if (!a) return 0;
  push_addr(ls, L, a->addr, PA_LOOKUP);
  return 1;
}

static int l_sender(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *a = current_actor(ls);
  if (!a || !a->cur || a->cur->from == TR_NOADDR) return 0;
  push_addr(ls, L, a->cur->from, PA_LOOKUP);
  return 1;
}

static int l_fail(lua_State *L) {
  lua_settop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "value");
  set_mt(LS(L), L, MTI_FAIL);
  return 1;
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L, (void)status, (void)ctx;
  return 0;
}

static int l_sleep(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_sched *s = SCH(ls);
  lua_Number ms = luaL_checknumber(L, 1);
  luaL_argcheck(L, ms >= 0, 1, "sleep time must be >= 0 (ms)");
  if (ms > 1e15) ms = 1e15; /* math.huge: (int64_t) of it is undefined */
  tr_actor *a = running_actor(ls, L);
  if (a && !can_wait(ls, a, L)) return cannot_wait(L, "sleep");
  if (a) {
    tr_tentry *t = tr__timer_add(s, TR_T_SLEEP, NULL, (int64_t)ms);
    if (!t) return raise_error(L, TR_ENOMEM, NULL);
    t->actor = a->addr;
    tr__set_wait(a, TR_W_SLEEP);
    a->wait_req = (uint64_t)(uintptr_t)t;
    a->wait_since = tr__now(s);
    return lua_yieldk(L, 0, 0, sleep_k);
  }
  volatile int flag = 0;
  tr_tentry *t = tr__timer_add(s, TR_T_FLAG, (void *)&flag, (int64_t)ms);
  if (!t) return raise_error(L, TR_ENOMEM, NULL);
  int rc = tr__block_until(s, &flag);
  if (rc) {
    tr__timer_del(s, t);
    free(t);
    if (rc == TR_EINVAL) return luaL_error(L, "troupe.sleep outside an actor while the loop runs");
  }
  return 0;
}

static int l_yield(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *a = running_actor(ls, L);
  if (!a || !can_wait(ls, a, L)) return 0; /* (below a C call: nothing to give way from) */
  tr__set_wait(a, TR_W_YIELD);
  return lua_yieldk(L, 0, 0, sleep_k);
}

/* ---- coroutines inside handlers ---------------------------------------------------------
 * A handler may run coroutines of its own (generators, iterators, a
 * producer/consumer pair). Its waits (call, sleep, room, troupe.yield) and
 * the preemption of a busy loop must still reach the scheduler, but Lua's
 * coroutine.resume would take such a yield as the coroutine's own (values
 * for its resumer), and the watchdog would arm the handler's coroutine,
 * which runs no instruction while a nested one loops. So the host's states
 * have their own coroutine.resume and coroutine.wrap (as Skynet's
 * skynet.coroutine does). While one runs a coroutine for the running
 * actor, that coroutine is the one the watchdog arms (tr__preempt_nest)
 * and the one whose waits count as the actor's (running_actor). A yield of
 * the host's (the actor has a wait reason, or the hook preempted it) is
 * passed up through every level to the scheduler; when the actor goes on,
 * the values it is resumed with go back down to the coroutine that waited.
 * Any other yield is the code's own and returns to its resumer as in Lua.
 * Outside a handler both are Lua's own. */

/* Resumes co with the narg values on its stack; then *nres results (or the
 * error) are on co's stack, as lua_resume leaves them. *up: a wait or a
 * preemption to pass up (L must then yield at once). */
static int nest_resume(tr_lstate *ls, lua_State *L, lua_State *co, int narg, int *nres,
                       int *up) {
  tr_actor *a = ls->h ? running_actor(ls, L) : NULL;
  *up = 0;
  if (!a) return lua_resume(co, L, narg, nres);
  lua_State *outer_nest = ls->nest;
  int outer_ok = ls->nest_ok;
  ls->nest_ok = lua_isyieldable(L) && (L == a->co || outer_ok);
  ls->nest = co;
  lua_State *armed = tr__preempt_nest(co);
  int st;
  for (;;) {
    st = lua_resume(co, L, narg, nres);
    if (st != LUA_YIELD) break;
    if (a->wait != TR_W_NONE) { /* the actor waits (can_wait let it): up */
      *up = 1;
      break;
    }
    if (!tr__preempt_pending()) break; /* the code's own yield */
    if (ls->nest_ok) {
      *up = 1;
      break;
    }
    /* preempted below a C call boundary: it cannot go up; go on, and let
     * the watchdog ask again after another slice */
    tr__preempt_clear();
    lua_pop(co, *nres);
    narg = 0;
  }
  if (*up) lua_pop(co, *nres); /* (a wait or a hook yields no values) */
  ls->nest = outer_nest;
  ls->nest_ok = outer_ok;
  tr__preempt_unnest(armed, co, *up);
  return st;
}

static int co_resume_k(lua_State *L, int status, lua_KContext ctx);

/* coroutine.resume(co, ...): stack [co, values for co...] */
static int co_resume_go(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  int narg = lua_gettop(L) - 1, nres, up;
  if (!lua_checkstack(co, narg)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  lua_xmove(L, co, narg);
  int st = nest_resume(LS(L), L, co, narg, &nres, &up);
  if (up) return lua_yieldk(L, 0, 0, co_resume_k);
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "too many results to resume");
      return 2;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1); /* the error */
  return 2;
}

/* The actor goes on: what it was resumed with is on top of [co]. */
static int co_resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return co_resume_go(L);
}

static int l_co_resume(lua_State *L) {
  luaL_argexpected(L, lua_tothread(L, 1), 1, "thread");
  return co_resume_go(L);
}

static int co_wrap_k(lua_State *L, int status, lua_KContext ctx);

/* a coroutine.wrap function: upvalues ls, co; stack [values for co...] */
static int co_wrap_go(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(2));
  int narg = lua_gettop(L), nres, up;
  if (!lua_checkstack(co, narg)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, narg);
  int st = nest_resume(LS(L), L, co, narg, &nres, &up);
  if (up) return lua_yieldk(L, 0, 0, co_wrap_k);
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  /* as Lua's wrap: close the dead coroutine's to-be-closed variables, and
   * add the position to a string error */
  lua_xmove(co, L, 1);
  int stat = lua_status(co);
  if (stat != LUA_OK && stat != LUA_YIELD) {
#if LUA_VERSION_RELEASE_NUM >= 50406
    stat = lua_closethread(co, L);
#else
    stat = lua_resetthread(co);
#endif
    lua_xmove(co, L, 1);
  }
  if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int co_wrap_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return co_wrap_go(L);
}

static int l_co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushvalue(L, lua_upvalueindex(1)); /* ls */
  lua_insert(L, -2);
  lua_pushcclosure(L, co_wrap_go, 2);
  return 1;
}

/* The state's coroutine.resume and coroutine.wrap become the above. */
static void install_coroutines(tr_lstate *ls, lua_State *L) {
  if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
    lua_pushlightuserdata(L, ls);
    lua_pushcclosure(L, l_co_resume, 1);
    lua_setfield(L, -2, "resume");
    lua_pushlightuserdata(L, ls);
    lua_pushcclosure(L, l_co_wrap, 1);
    lua_setfield(L, -2, "wrap");
  }
  lua_pop(L, 1);
}

/* reply tokens */
static int l_defer(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_actor *a = current_actor(ls);
  if (!a || !a->cur) return luaL_error(L, "troupe.defer() must be called inside a handler");
  tr_env *e = a->cur;
  if (e->kind != TR_K_CALL || !e->req) {
    if (e->kind == TR_K_CALL) return luaL_error(L, "this call's reply was already deferred");
    return luaL_error(L, "troupe.defer(): the current message is a send, not a call");
  }
  if (!tr__owe(SCH(ls), a, e->req, e->from)) return raise_error(L, TR_ENOMEM, NULL);
  tr_ltoken *t = lua_newuserdatauv(L, sizeof *t, 0);
  t->ls = ls;
  t->req = e->req;
  t->caller = e->from;
  t->answered = 0;
  e->req = 0;
  luaL_setmetatable(L, MT_TOKEN);
  return 1;
}

static int token_answer(lua_State *L, int status) {
  tr_ltoken *t = luaL_checkudata(L, 1, MT_TOKEN);
  tr_lstate *ls = check_ls(L);
  if (t->answered) {
    lua_pushnil(L);
    push_error(L, TR_EALREADY, "this reply token was already answered", NULL);
    return 2;
  }
  tr_buf b;
  tr_buf_init(&b);
  char err[384];
  int rc = encode_values(ls, L, 2, status == TR_FAILED ? 2 : lua_gettop(L), &b,
                         status == TR_FAILED ? "failure value" : "reply value", 1, err,
                         sizeof err);
  if (rc) {
    tr_buf_free(&b);
    return raise_error(L, rc, err);
  }
  t->answered = 1;
  rc = tr__settle(SCH(ls), t->req, t->caller, status, b.data, b.len);
  tr_buf_free(&b);
  if (rc) {
    lua_pushnil(L);
    push_error(L, rc, "the request is no longer open (its actor stopped)", NULL);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int token_reply(lua_State *L) { return token_answer(L, TR_OK); }
static int token_fail(lua_State *L) { return token_answer(L, TR_FAILED); }

static int token_gc(lua_State *L) {
  tr_ltoken *t = lua_touserdata(L, 1);
  if (t->answered || !t->ls->h || tr__closing(t->ls->h)) return 0;
  t->answered = 1;
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_str(&b, "the reply token was dropped without a reply");
  tr__settle(SCH(t->ls), t->req, t->caller, TR_EDROPPED, b.data, b.len);
  tr_buf_free(&b);
  return 0;
}

/* timers */
static int start_timer(lua_State *L, int64_t delay, int64_t interval, int first) {
  tr_lstate *ls = check_ls(L);
  tr_actor *a = current_actor(ls);
  if (!a) return luaL_error(L, "timers send to self: call this inside an actor");
  size_t mlen;
  const char *method = luaL_checklstring(L, first, &mlen);
  luaL_argcheck(L, mlen > 0, first, "method name must not be empty");
  tr_buf args;
  tr_buf_init(&args);
  encode_or_raise(ls, L, first + 1, lua_gettop(L), &args, "arg");
  tr_timer_id id;
  int rc = tr__send_after_n(ls->h, a->addr, delay, interval, method, mlen, &args, &id);
  tr_buf_free(&args);
  if (rc) return raise_error(L, rc, NULL);
  uint64_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = id;
  luaL_setmetatable(L, MT_TIMER);
  return 1;
}

static int64_t check_ms(lua_State *L, int idx) {
  lua_Number ms = luaL_checknumber(L, idx);
  luaL_argcheck(L, ms >= 0 && ms < 1e15, idx, "time must be >= 0 (ms)");
  return (int64_t)ms;
}

static int l_send_after(lua_State *L) { return start_timer(L, check_ms(L, 1), 0, 2); }
static int l_send_every(lua_State *L) {
  int64_t ms = check_ms(L, 1);
  luaL_argcheck(L, ms > 0, 1, "interval must be > 0 (ms)");
  return start_timer(L, ms, ms, 2);
}
static int l_send_at(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  lua_Number at = luaL_checknumber(L, 1);
  uint64_t now = tr_now_ms(ls->h);
  lua_Number d = at - (lua_Number)now;
  return start_timer(L, d > 0 ? (d < 1e15 ? (int64_t)d : (int64_t)1e15) : 0, 0, 2);
}

static int timer_cancel(lua_State *L) {
  uint64_t *u = luaL_checkudata(L, 1, MT_TIMER);
  tr_lstate *ls = check_ls(L);
  lua_pushboolean(L, tr_cancel_timer(ls->h, *u) == 0);
  return 1;
}

static int l_now(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  uv_update_time(ls->s->loop);
  lua_pushinteger(L, (lua_Integer)uv_now(ls->s->loop));
  return 1;
}

/* names */
static int l_register(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  const char *name = luaL_checkstring(L, 1);
  tr_addr a = check_addr(L, 2);
  int rc = tr_register(ls->h, name, a);
  if (rc == TR_EEXISTS) return raise_errorf(L, rc, "name '%s' is already registered", name);
  if (rc) return raise_error(L, rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_unregister(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  lua_pushboolean(L, tr_unregister(ls->h, luaL_checkstring(L, 1)) == 0);
  return 1;
}

static int l_whereis(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_addr a;
  if (tr_whereis(ls->h, luaL_checkstring(L, 1), &a)) return 0;
  push_addr(ls, L, a, PA_LOOKUP);
  return 1;
}

/* C behaviours */
static void push_cbeh(lua_State *L, const tr_behaviour *b) {
  tr_lcbeh *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->b = b;
  luaL_setmetatable(L, MT_CBEH);
}

static int l_behaviour(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  const char *name = luaL_checkstring(L, 1);
  if (lua_istable(L, 2)) { /* troupe.behaviour("Name", {handlers}) names a Lua behaviour */
    lbeh_for_table(ls, L, 2, name);
    lua_settop(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->named_ref);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->named_ref);
  if (lua_getfield(L, -1, name) == LUA_TTABLE) return 1;
  lua_pop(L, 2);
  const tr_behaviour *b = tr__find_cbehaviour(ls->h, name);
  if (!b) return raise_errorf(L, TR_ENOTFOUND, "no C behaviour named '%s'", name);
  push_cbeh(L, b);
  return 1;
}

static int l_load_c(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  const char *path = luaL_checkstring(L, 1);
  int n = tr_load_behaviours(ls->h, path);
  if (n < 0) return raise_errorf(L, n, "cannot load C behaviours from %s", path);
  lua_newtable(L);
  for (tr_cbeh_reg *r = ls->h->cbehs; r; r = r->next) {
    if (!r->b->name[0]) continue;
    push_cbeh(L, r->b);
    lua_setfield(L, -2, r->b->name);
  }
  return 1;
}

static int cbeh_tostring(lua_State *L) {
  tr_lcbeh *u = luaL_checkudata(L, 1, MT_CBEH);
  lua_pushfstring(L, "<C behaviour %s>", u->b->name);
  return 1;
}

static int l_run(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  if (SCH(ls)->in_callback) return luaL_error(L, "troupe.run() inside the loop");
  lua_pushinteger(L, tr_host_run(ls->h));
  return 1;
}

static int l_exit(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_host_exit(ls->h, (int)luaL_optinteger(L, 1, 0));
  return 0;
}

static int l_is_error(lua_State *L) {
  int r = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, MT_ERROR);
    r = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, r);
  return 1;
}

static int l_schedulers(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  lua_pushinteger(L, ls->h->nsched);
  return 1;
}

/* troupe.scheduler([addr]) -> the (1-based) scheduler of addr, or the one
 * running the caller. */
static int l_scheduler(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  if (lua_isnoneornil(L, 1)) lua_pushinteger(L, SCH(ls)->index + 1);
  else lua_pushinteger(L, TR_ADDR_SCHED(check_addr(L, 1)) + 1);
  return 1;
}

static int l_stats(lua_State *L) {
  tr_lstate *ls = check_ls(L);
  tr_host_stats st;
  tr_host_stats_get(ls->h, &st);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)st.actors);
  lua_setfield(L, -2, "actors");
  lua_pushinteger(L, (lua_Integer)st.spawned);
  lua_setfield(L, -2, "spawned");
  lua_pushinteger(L, (lua_Integer)st.messages);
  lua_setfield(L, -2, "messages");
  lua_pushinteger(L, (lua_Integer)st.calls);
  lua_setfield(L, -2, "calls");
  return 1;
}

/* ---- setup -------------------------------------------------------------------------------- */
static const luaL_Reg addr_methods[] = {
    {"send", l_send}, {"try_send", l_try_send}, {"call", l_call}, {"call_with", l_call_with},
    {"stop", l_stop}, {"kill", l_kill},         {"alive", l_alive}, {"weak", l_weak},
    {"id", l_id},     {"shutdown", l_shutdown}, {NULL, NULL}};

static const luaL_Reg weak_methods[] = {
    {"upgrade", l_upgrade}, {"alive", l_alive}, {"id", l_id}, {NULL, NULL}};

static const luaL_Reg module_funcs[] = {
    {"spawn", l_spawn},         {"spawn_with", l_spawn_with}, {"self", l_self},
    {"sender", l_sender},       {"fail", l_fail},             {"sleep", l_sleep},
    {"yield", l_yield},         {"defer", l_defer},           {"send_after", l_send_after},
    {"send_every", l_send_every}, {"send_at", l_send_at},     {"now", l_now},
    {"register", l_register},   {"unregister", l_unregister}, {"whereis", l_whereis},
    {"behaviour", l_behaviour}, {"load_c", l_load_c},         {"run", l_run},
    {"exit", l_exit},           {"stop", l_stop},             {"kill", l_kill},
    {"alive", l_alive},         {"is_error", l_is_error},     {"stats", l_stats},
    {"send", l_send},           {"try_send", l_try_send},     {"call", l_call},
    {"call_with", l_call_with}, {"shutdown", l_shutdown},   {"monitor", l_monitor},
    {"demonitor", l_demonitor}, {"link", l_link},           {"unlink", l_unlink},
    {"trap_exit", l_trap_exit}, {"memory", l_memory},       {"schedulers", l_schedulers},
    {"scheduler", l_scheduler}, {NULL, NULL}};

static void new_mt(tr_lstate *ls, lua_State *L, const char *name, const luaL_Reg *methods,
                   lua_CFunction gc) {
  luaL_newmetatable(L, name);
  if (methods) {
    lua_newtable(L);
    lua_pushlightuserdata(L, ls);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
  }
  if (gc) {
    lua_pushlightuserdata(L, ls);
    lua_pushcclosure(L, gc, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}

static void set_mt_func(tr_lstate *ls, lua_State *L, const char *mt, const char *field,
                        lua_CFunction f) {
  luaL_getmetatable(L, mt);
  lua_pushlightuserdata(L, ls);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

static int new_ref_table(lua_State *L, const char *mode) {
  lua_newtable(L);
  if (mode) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static const char REGKEY = 0; /* registry key of the tr_lstate userdata */

static int state_gc(lua_State *L) {
  tr_lstate *ls = lua_touserdata(L, 1);
  if (ls->owns_host && ls->h) {
    tr_host *h = ls->h;
    tr_host_free(h); /* detaches (ls->h = NULL) */
  }
  return 0;
}

int tr__lua_attach(tr_sched *s, lua_State *L, lua_State *like) {
  tr_host *h = s->h;
  int owns = 0;
  if (!L) {
    L = luaL_newstate();
    if (!L) return TR_ENOMEM;
    luaL_openlibs(L);
    /* generational collection: most objects (messages' tables, handler
     * coroutines) die young; about half the cost per collected object */
    lua_gc(L, LUA_GCGEN, 0, 0);
    owns = 1;
    if (like) { /* behaviours loaded here require what the main code can */
      static const char *const fields[] = {"path", "cpath"};
      for (int i = 0; i < 2; i++) {
        lua_getglobal(like, "package");
        lua_getfield(like, -1, fields[i]);
        const char *v = lua_tostring(like, -1);
        if (v) {
          lua_getglobal(L, "package");
          lua_pushstring(L, v);
          lua_setfield(L, -2, fields[i]);
          lua_pop(L, 1);
        }
        lua_pop(like, 2);
      }
    }
  }
  if (s->index == 0) h->owns_lua = owns;
  tr_lstate *ls = lua_newuserdatauv(L, sizeof *ls, 0);
  memset(ls, 0, sizeof *ls);
  ls->h = h;
  ls->s = s;
  ls->L = L;
  msgpack_zone_init(&ls->zone, 4096);
  /* written on every allocation by this scheduler's thread: a line of its own */
  size_t memsz = (sizeof *ls->mem + TR_CACHELINE - 1) / TR_CACHELINE * TR_CACHELINE;
  ls->mem = aligned_alloc(TR_CACHELINE, memsz);
  if (!ls->mem) return TR_ENOMEM;
  memset(ls->mem, 0, memsz);
  ls->mem->hostcap = h->mem_limit;
  ls->mem->h = h;
  s->lmem = ls->mem;
  ls->mem->orig_alloc = lua_getallocf(L, &ls->mem->orig_ud);
  /* a state from elsewhere gets its allocator back at detach, with blocks
   * made meanwhile: those must be that allocator's */
  if (owns && s->arena.base) ls->mem->arena = &s->arena;
  lua_setallocf(L, tr_lalloc, ls->mem);
  luaL_newmetatable(L, MT_STATE);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &REGKEY);
  s->L = L;
  s->ls = ls;
  ls->cache_ref = new_ref_table(L, "v");
  ls->behs_ref = new_ref_table(L, NULL);
  ls->files_ref = new_ref_table(L, NULL);
  ls->named_ref = new_ref_table(L, NULL);
  ls->proxies_ref = new_ref_table(L, "k");
  install_coroutines(ls, L);
  new_mt(ls, L, MT_ADDR, addr_methods, NULL);
  new_mt(ls, L, MT_ADDR_OWNED, addr_methods, addr_gc);
  new_mt(ls, L, MT_WEAK, weak_methods, NULL);
  const char *mts[] = {MT_ADDR, MT_ADDR_OWNED, MT_WEAK};
  for (int i = 0; i < 3; i++) {
    set_mt_func(ls, L, mts[i], "__tostring", addr_tostring);
    set_mt_func(ls, L, mts[i], "__eq", addr_eq);
    luaL_getmetatable(L, mts[i]);
    lua_pushstring(L, "troupe.address");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
  }
  luaL_newmetatable(L, MT_ERROR);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, MT_FAIL);
  lua_pop(L, 1);
  const char *names[5] = {MT_ADDR, MT_ADDR_OWNED, MT_WEAK, MT_ERROR, MT_FAIL};
  for (int i = 0; i < 5; i++) {
    luaL_getmetatable(L, names[i]);
    ls->mtp[i] = lua_topointer(L, -1);
    ls->mtref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  static const luaL_Reg token_methods[] = {{"reply", token_reply}, {"fail", token_fail}, {NULL, NULL}};
  new_mt(ls, L, MT_TOKEN, token_methods, NULL);
  luaL_getmetatable(L, MT_TOKEN);
  lua_pushcfunction(L, token_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg timer_methods[] = {{"cancel", timer_cancel}, {NULL, NULL}};
  new_mt(ls, L, MT_TIMER, timer_methods, NULL);
  new_mt(ls, L, MT_CBEH, NULL, NULL);
  luaL_getmetatable(L, MT_CBEH);
  lua_pushcfunction(L, cbeh_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  /* the module table */
  lua_newtable(L);
  lua_pushlightuserdata(L, ls);
  luaL_setfuncs(L, module_funcs, 1);
  lua_pushstring(L, TROUPE_VERSION_STRING);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, TR_DEFAULT_MAILBOX);
  lua_setfield(L, -2, "DEFAULT_MAILBOX");
  lua_pushinteger(L, h->call_timeout);
  lua_setfield(L, -2, "DEFAULT_TIMEOUT");
  /* the prelude (lua/prelude.lua) adds the Lua-written parts */
  if (luaL_loadbuffer(L, tr__prelude_lua, strlen(tr__prelude_lua), "=troupe.prelude") ||
      (lua_pushvalue(L, -2), lua_pcall(L, 1, 3, 0))) {
    fprintf(stderr, "troupe: prelude: %s\n", lua_tostring(L, -1));
    lua_pop(L, 2);
    return TR_ELOAD;
  }
  ls->start_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the prelude returns the runners */
  ls->stop_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ls->init_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "init");
  ls->k_init_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "on_start");
  ls->k_on_start_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* lua/supervisor.lua: the "Supervisor" behaviour and troupe.supervisor */
  if (luaL_loadbuffer(L, tr__supervisor_lua, strlen(tr__supervisor_lua), "=troupe.supervisor") ||
      (lua_pushvalue(L, -2), lua_pcall(L, 1, 0, 0))) {
    fprintf(stderr, "troupe: supervisor: %s\n", lua_tostring(L, -1));
    lua_pop(L, 2);
    return TR_ELOAD;
  }
  lua_pushvalue(L, -1);
  ls->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* require "troupe" inside this state gets this module */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "troupe");
  lua_pop(L, 2);
  return 0;
}

void tr__lua_detach(tr_sched *s) {
  tr_host *h = s->h;
  tr_lstate *ls = s->ls;
  if (!ls) return;
  lua_State *L = ls->L;
  for (int i = 0; i < ls->pool_n; i++) luaL_unref(L, LUA_REGISTRYINDEX, ls->pool_ref[i]);
  ls->pool_n = 0;
  ls->nm_co = NULL;
  if (!(h->owns_lua || s->index != 0)) /* the state lives on: its slots become free refs */
    for (int i = 0; i < ls->sref_n; i++) luaL_unref(L, LUA_REGISTRYINDEX, ls->sref[i]);
  free(ls->sref);
  ls->sref = NULL;
  ls->sref_n = ls->sref_cap = 0;
  while (ls->lbehs) {
    tr_lbeh *b = ls->lbehs;
    ls->lbehs = b->next;
    free(b->name);
    free(b);
  }
  msgpack_zone_destroy(&ls->zone);
  tr_lmem *mem = ls->mem;
  ls->mem = NULL;
  s->lmem = NULL;
  free(ls->enc);
  ls->enc = NULL;
  ls->h = NULL;
  s->ls = NULL;
  mem->charge = NULL;
  if (h->owns_lua || s->index != 0) lua_close(L); /* still through tr_lalloc, which needs `mem` */
  else lua_setallocf(L, mem->orig_alloc, mem->orig_ud);
  free(mem);
}

lua_State *tr__host_lua(tr_host *h) { return h ? h->sched[0].L : NULL; }

static int run_chunk(tr_host *h, int loadrc) {
  lua_State *L = h->sched[0].L;
  if (loadrc != LUA_OK) {
    tr__log(h, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return TR_ELOAD;
  }
  int base = lua_gettop(L);
  lua_pushcfunction(L, msgh);
  lua_insert(L, base);
  int rc = lua_pcall(L, 0, 0, base);
  lua_remove(L, base);
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (!msg && lua_type(L, -1) == LUA_TTABLE) msg = luaL_tolstring(L, -1, NULL);
    tr__log(h, "%s", msg ? msg : "(error object is not a string)");
    lua_settop(L, base - 1);
    return TR_ELOAD;
  }
  return 0;
}

int tr_host_dostring(tr_host *h, const char *code, const char *chunkname) {
  if (!h || !code) return TR_EINVAL;
  lua_State *L = h->sched[0].L;
  return run_chunk(h, luaL_loadbuffer(L, code, strlen(code), chunkname ? chunkname : "=(string)"));
}

int tr_host_dofile(tr_host *h, const char *path) {
  if (!h || !path) return TR_EINVAL;
  lua_State *L = h->sched[0].L;
  return run_chunk(h, luaL_loadfile(L, path));
}

int tr__host_create(tr_host **out, const tr_host_options *opts, lua_State *L);

/* require "troupe" from a plain Lua 5.4 interpreter (or busted). */
TR_EXTERN int luaopen_troupe(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &REGKEY) == LUA_TUSERDATA) {
    tr_lstate *ls = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->module_ref);
    return 1;
  }
  lua_pop(L, 1);
  /* lua5.4 loads modules with RTLD_LOCAL; C behaviour libraries loaded later
   * resolve tr_* against us, so make our symbols global. */
  Dl_info info;
  if (dladdr((void *)luaopen_troupe, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
  tr_host *h;
  int rc = tr__host_create(&h, NULL, L);
  if (rc) return luaL_error(L, "troupe: cannot create a host: %s", tr_strerror(rc));
  tr_lstate *ls = h->sched[0].ls;
  ls->owns_host = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->module_ref);
  return 1;
}

/* ---- for the REPL (repl.c) ------------------------------------------------------------------- */
void tr__lua_push_addr(tr_host *h, lua_State *L, tr_addr a) {
  push_addr(h->sched[0].ls, L, a, PA_LOOKUP);
}

tr_addr tr__lua_to_addr(tr_host *h, lua_State *L, int idx) {
  return to_addr(h->sched[0].ls, L, idx, NULL);
}

void tr__lua_push_behaviour(tr_actor *a, lua_State *L) {
  if (a->lang == TR_LANG_LUA && a->lb) lua_rawgeti(L, LUA_REGISTRYINDEX, a->lb->ref);
  else lua_pushnil(L);
}

int tr__lua_load_fresh(tr_sched *s, lua_State *L, const char *path, const char *name,
                       struct tr_lbeh **out) {
  tr_lstate *ls = s->ls;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->files_ref);
  lua_getfield(L, -1, path); /* the cached table, put back if loading fails */
  lua_pushnil(L);
  lua_setfield(L, -3, path);
  int rc = load_behaviour(ls, L, 1, path, NULL);
  if (rc) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->files_ref);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, path);
    lua_pop(L, 1);
    lua_replace(L, -3); /* the message in place of the files table */
    lua_pop(L, 1);
    return rc;
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  *out = lbeh_for_table(ls, L, -1, name);
  return 0;
}

void tr__lua_file_cached(tr_sched *s, lua_State *L, const char *path) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->ls->files_ref);
  lua_getfield(L, -1, path);
  lua_remove(L, -2);
}

void tr__lua_file_cache_set(tr_sched *s, lua_State *L, const char *path) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->ls->files_ref);
  lua_insert(L, -2);
  lua_setfield(L, -2, path);
  lua_pop(L, 1);
}

/* ---- for the fuzzers (tests/fuzz) ------------------------------------------------------------- */
/* Decode a payload into Lua values as a message delivery would, touch each
 * value (tables are walked), and pop them. Returns the count, or -1 if corrupt. */
int tr__lua_decode_payload(tr_host *h, const char *data, size_t len) {
  tr_lstate *ls = h->sched[0].ls;
  lua_State *L = ls->L;
  int top = lua_gettop(L);
  int n = push_payload(ls, L, data, len);
  for (int i = top + 1; n > 0 && i <= lua_gettop(L); i++) {
    if (lua_type(L, i) != LUA_TTABLE) continue;
    lua_pushnil(L);
    while (lua_next(L, i)) lua_pop(L, 1);
  }
  lua_settop(L, top);
  return n;
}
