/* The REPL engine: sessions that evaluate lines of Lua (each in the
 * coroutine of a hidden per-session actor, so calls at the prompt suspend
 * only that actor) and :commands that inspect the live host. Front-ends (the
 * terminal in main.c/term.c, control-socket connections in control.c) feed
 * lines in and get lines out through a callback. */
#include "repl.h"
#include "control.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

extern const char tr__repl_lua[];

/* ---- a growable string -------------------------------------------------------------- */
typedef struct {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    sb_add(b, tmp, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) return;
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_add(b, big, (size_t)n);
  free(big);
}

static void sb_free(sbuf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

/* ---- sessions ----------------------------------------------------------------------- */
enum { BUSY_NONE = 0, BUSY_EVAL, BUSY_STATE, BUSY_RELOAD };

/* :reload on one scheduler: touched on that scheduler's thread (inside a
 * tr__sched_sync, so the first scheduler's thread reads it afterwards). */
typedef struct reload_part {
  struct tr_lbeh *lb;
  int tab_ref;      /* the new behaviour table, in that scheduler's state */
  int old_ref;      /* what its spawn cache held for FILE (put back on failure) */
  int loaded;
  tr_addr *targets; /* TR_NOADDR once swapped or gone */
  size_t n, left;
} reload_part;

typedef struct reload_job {
  tr_repl *r;
  uv_timer_t timer;
  char *file, *name;
  tr_addr one;      /* :reload ADDR, else TR_NOADDR (every actor of `name`) */
  int found, is_c;  /* what `one` turned out to be */
  reload_part *parts; /* one per scheduler */
  uint64_t started;
  int ok, failed;
  sbuf lines;       /* made on the schedulers' threads: "O text\n" or "E text\n" */
  char *err;        /* why FILE did not load */
} reload_job;

struct tr_repl {
  tr_repl *next;
  tr_host *h;
  uint64_t sid;
  tr_repl_out_fn out;
  void *ud;
  int env_ref;
  tr_addr actor;     /* the hidden actor that runs prompt lines */
  int busy;          /* BUSY_*: a line is running */
  int interrupting;
  sbuf chunk;        /* an incomplete chunk being continued */
  char **queue;      /* lines typed ahead */
  size_t qn, qhead;
  char *last_tb;
  int hinted;
  reload_job *reload;
  volatile lua_State *eval_co; /* the coroutine running a line (signal hook) */
};

static tr_repl_host *rhost(tr_host *h, int create);

static void emit(tr_repl *r, int kind, const char *text, size_t len) {
  if (tr__closing(r->h) && kind != TR_REPL_BYE) return;
  r->out(r->ud, kind, text, len);
}

/* Emits text line by line. */
static void emit_lines(tr_repl *r, int kind, const char *text, size_t len) {
  size_t i = 0;
  if (len == 0) {
    emit(r, kind, "", 0);
    return;
  }
  while (i < len) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
    emit(r, kind, text + i, n);
    i += n + (nl ? 1 : 0);
  }
}

static void emitf(tr_repl *r, int kind, const char *fmt, ...) {
  char tmp[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  emit_lines(r, kind, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static tr_repl *find_session(tr_host *h, uint64_t sid) {
  tr_repl_host *rh = h->repl;
  if (!rh) return NULL;
  for (tr_repl *r = rh->sessions; r; r = r->next)
    if (r->sid == sid) return r;
  return NULL;
}

static int is_repl_actor(tr_host *h, tr_addr a) {
  tr_repl_host *rh = h->repl;
  if (!rh) return 0;
  for (tr_repl *r = rh->sessions; r; r = r->next)
    if (r->actor == a) return 1;
  return 0;
}

/* Pushes the repl.lua module table. */
static void push_mod(tr_host *h, lua_State *L) { lua_rawgeti(L, LUA_REGISTRYINDEX, h->repl->mod_ref); }

static lua_State *LUA(tr_host *h) { return h->sched[0].L; }

/* ---- Lua helpers for repl.lua ----------------------------------------------------------- */
static tr_host *H(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static int c_out(lua_State *L) {
  tr_repl *r = find_session(H(L), (uint64_t)luaL_checkinteger(L, 1));
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (r) emit_lines(r, TR_REPL_OUT, s, n);
  return 0;
}

static tr_repl *g_sig_repl; /* the session whose line SIGINT interrupts (terminal) */

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  tr_repl *r = g_sig_repl;
  if (r && r->eval_co == L) {
    lua_sethook(L, NULL, 0, 0);
    lua_pushliteral(L, "interrupted");
    lua_error(L);
  }
  lua_sethook(L, NULL, 0, 0); /* not a line any more: nothing to interrupt */
}

static int c_begin(lua_State *L) {
  tr_repl *r = find_session(H(L), (uint64_t)luaL_checkinteger(L, 1));
  if (r) r->eval_co = L;
  return 0;
}

static int c_finish(lua_State *L) {
  tr_repl *r = find_session(H(L), (uint64_t)luaL_checkinteger(L, 1));
  if (r) r->eval_co = NULL;
  if (lua_gethook(L) == interrupt_hook) lua_sethook(L, NULL, 0, 0);
  return 0;
}

static int c_addr_id(lua_State *L) {
  tr_addr a = lua_isuserdata(L, 1) ? tr__lua_to_addr(H(L), L, 1) : TR_NOADDR;
  if (a == TR_NOADDR) return 0;
  lua_pushinteger(L, (lua_Integer)a);
  return 1;
}

static void push_handlers(tr_host *h, lua_State *L, tr_actor *a) {
  lua_newtable(L);
  int n = 0;
  if (!a) return;
  if (a->lang == TR_LANG_C) {
    for (const tr_method *m = a->cb->methods; m && m->name; m++) {
      lua_pushstring(L, m->name);
      lua_rawseti(L, -2, ++n);
    }
    return;
  }
  tr__lua_push_behaviour(a, L);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  static const char *const hooks[] = {"init", "on_start", "on_stopping", "on_stopped", "migrate",
                                      NULL};
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION) {
      const char *k = lua_tostring(L, -2);
      int hook = 0;
      for (int i = 0; hooks[i]; i++)
        if (strcmp(k, hooks[i]) == 0) hook = 1;
      if (!hook) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, -5, ++n);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  (void)h;
  /* sorted, for a stable listing */
  lua_getglobal(L, "table");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    lua_pcall(L, 1, 0, 0);
  }
  lua_pop(L, 1);
}

/* An actor's handler names, listed on its scheduler's thread (in that
 * scheduler's Lua state), one per line. */
typedef struct {
  tr_addr addr;
  sbuf b;
} handlers_job;

/* a's handler names into b, each followed by `after` (on a's scheduler's
 * thread, in its Lua state); how many. */
static lua_Integer handler_text(tr_sched *s, tr_actor *a, const char *after, sbuf *b) {
  lua_State *L = s->L;
  push_handlers(s->h, L, a);
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    sb_printf(b, "%s%s", lua_tostring(L, -1), i < n || *after == '\n' ? after : "");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

static void handler_lines(tr_sched *s, void *ud) {
  handlers_job *j = ud;
  tr_actor *a = tr__lookup(s, j->addr);
  if (a) handler_text(s, a, "\n", &j->b);
}

/* Completion: the handlers of the actor with id argument 1, whatever
 * scheduler it runs on (one that does not answer soon gives none). */
static int c_handlers(lua_State *L) {
  tr_host *h = H(L);
  tr_addr a = (tr_addr)luaL_checkinteger(L, 1);
  tr_sched *here = tr__here(h);
  if (!tr__foreign(here, a) || TR_ADDR_SCHED(a) >= h->nsched) {
    push_handlers(h, L, tr__lookup(here, a));
    return 1;
  }
  handlers_job j = {.addr = a};
  lua_newtable(L);
  if (tr__sched_sync(here, &h->sched[TR_ADDR_SCHED(a)], handler_lines, &j, 200) == 0 && j.b.p) {
    int n = 0;
    for (char *p = j.b.p, *nl; p < j.b.p + j.b.n && (nl = memchr(p, '\n', j.b.p + j.b.n - p));
         p = nl + 1) {
      lua_pushlstring(L, p, (size_t)(nl - p));
      lua_rawseti(L, -2, ++n);
    }
  }
  sb_free(&j.b);
  return 1;
}

/* Completion: the registered names of live actors, of every scheduler (the
 * name table is read under its lock; liveness is asked after). */
static int c_names(lua_State *L) {
  tr_host *h = H(L);
  sbuf names = {0};
  size_t count = 0, cap = 16;
  tr_addr *addrs = malloc(cap * sizeof *addrs);
  uv_mutex_lock(&h->names_lock);
  for (size_t b = 0; addrs && b < h->names_cap; b++)
    for (tr_namerec *nr = h->names[b]; nr; nr = nr->next) {
      if (count == cap) {
        tr_addr *w = realloc(addrs, 2 * cap * sizeof *w);
        if (!w) break;
        addrs = w;
        cap *= 2;
      }
      addrs[count++] = nr->addr;
      sb_printf(&names, "%s\n", nr->name);
    }
  uv_mutex_unlock(&h->names_lock);
  lua_newtable(L);
  int n = 0;
  char *p = names.p;
  for (size_t i = 0; p && i < count; i++) {
    char *nl = strchr(p, '\n');
    if (!nl) break;
    if (tr_alive(h, addrs[i])) {
      lua_pushlstring(L, p, (size_t)(nl - p));
      lua_rawseti(L, -2, ++n);
    }
    p = nl + 1;
  }
  free(addrs);
  sb_free(&names);
  return 1;
}

static tr_addr resolve(tr_repl *r, const char *spec, int env_idx);

static int c_resolve(lua_State *L) {
  tr_host *h = H(L);
  const char *spec = luaL_checkstring(L, 1);
  tr_repl tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.h = h;
  tmp.env_ref = LUA_NOREF;
  tr_addr a = resolve(&tmp, spec, lua_istable(L, 2) ? 2 : 0);
  if (a == TR_NOADDR) return 0;
  lua_pushinteger(L, (lua_Integer)a);
  return 1;
}

static const luaL_Reg c_funcs[] = {{"out", c_out},         {"begin", c_begin},
                                   {"finish", c_finish},   {"addr_id", c_addr_id},
                                   {"handlers", c_handlers}, {"names", c_names},
                                   {"resolve", c_resolve}, {NULL, NULL}};

static tr_repl_host *rhost(tr_host *h, int create) {
  if (h->repl || !create) return h->repl;
  tr_repl_host *rh = calloc(1, sizeof *rh);
  if (!rh) return NULL;
  rh->mod_ref = LUA_NOREF;
  lua_State *L = LUA(h);
  int top = lua_gettop(L);
  if (luaL_loadbuffer(L, tr__repl_lua, strlen(tr__repl_lua), "=troupe.repl") != LUA_OK) {
    tr__log(h, "repl: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    free(rh);
    return NULL;
  }
  lua_newtable(L);
  lua_pushlightuserdata(L, h);
  luaL_setfuncs(L, c_funcs, 1);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    tr__log(h, "repl: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    free(rh);
    return NULL;
  }
  rh->mod_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, top);
  rh->mods = malloc(h->nsched * sizeof *rh->mods);
  if (!rh->mods) {
    luaL_unref(L, LUA_REGISTRYINDEX, rh->mod_ref);
    free(rh);
    return NULL;
  }
  rh->mods[0] = rh->mod_ref;
  for (unsigned i = 1; i < h->nsched; i++) rh->mods[i] = LUA_NOREF;
  h->repl = rh;
  return rh;
}

/* On scheduler s's thread: pushes repl.lua's module in s's state (loaded
 * there on first use, without the C helpers: those read the sessions, which
 * belong to the first scheduler's thread; the renderer needs none). 0, or -1
 * with the error message pushed. */
static int push_mod_on(tr_sched *s, lua_State *L) {
  tr_repl_host *rh = s->h->repl;
  if (rh->mods[s->index] == LUA_NOREF) {
    if (luaL_loadbuffer(L, tr__repl_lua, strlen(tr__repl_lua), "=troupe.repl") != LUA_OK)
      return -1;
    lua_newtable(L);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) return -1;
    if (!lua_istable(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "troupe.repl returned no table");
      return -1;
    }
    rh->mods[s->index] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rh->mods[s->index]);
  return 0;
}

tr_repl_host *tr__repl_host(tr_host *h) { return rhost(h, 1); }

int tr__repl_new(tr_host *h, tr_repl_out_fn out, void *ud, tr_repl **out_r) {
  if (!h || !out || !out_r) return TR_EINVAL;
  tr_repl_host *rh = rhost(h, 1);
  if (!rh) return TR_ELOAD;
  tr_repl *r = calloc(1, sizeof *r);
  if (!r) return TR_ENOMEM;
  r->h = h;
  r->sid = ++rh->next_sid;
  r->out = out;
  r->ud = ud;
  lua_State *L = LUA(h);
  int top = lua_gettop(L);
  push_mod(h, L);
  lua_getfield(L, -1, "new_env");
  lua_pushinteger(L, (lua_Integer)r->sid);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    tr__log(h, "repl: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    free(r);
    return TR_ELOAD;
  }
  r->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, top);
  r->next = rh->sessions;
  rh->sessions = r;
  *out_r = r;
  return 0;
}

void tr__repl_start(tr_repl *r) { emit(r, TR_REPL_PROMPT, TR_REPL_PROMPT1, strlen(TR_REPL_PROMPT1)); }

int tr__repl_busy(tr_repl *r) { return r && r->busy; }

static void untrace_all(tr_repl *r);
static void reload_end(reload_job *j, int interrupted);

static void drop_queue(tr_repl *r) {
  for (size_t i = r->qhead; i < r->qn; i++) free(r->queue[i]);
  free(r->queue);
  r->queue = NULL;
  r->qn = r->qhead = 0;
}

void tr__repl_free(tr_repl *r) {
  if (!r) return;
  tr_host *h = r->h;
  tr_repl_host *rh = h->repl;
  if (g_sig_repl == r) g_sig_repl = NULL;
  if (rh)
    for (tr_repl **pp = &rh->sessions; *pp; pp = &(*pp)->next)
      if (*pp == r) {
        *pp = r->next;
        break;
      }
  untrace_all(r);
  if (r->reload) reload_end(r->reload, 1);
  if (r->actor != TR_NOADDR) tr_kill(h, r->actor); /* only the REPL's own actor */
  if (LUA(h)) luaL_unref(LUA(h), LUA_REGISTRYINDEX, r->env_ref);
  drop_queue(r);
  sb_free(&r->chunk);
  free(r->last_tb);
  free(r);
}

/* ---- addresses typed at the prompt -------------------------------------------------------- */
/* The value at path "a.b.c" (argument 2) from the table argument 1, or nothing. */
static int walk_path(lua_State *L) {
  const char *s = lua_tostring(L, 2);
  lua_settop(L, 1);
  while (s && *s) {
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    if (n == 0 || n >= 256 || !lua_istable(L, -1)) return 0;
    lua_pushlstring(L, s, n);
    lua_gettable(L, -2);
    lua_remove(L, -2);
    s = dot ? dot + 1 : s + n;
  }
  return 1;
}

/* "12", "<actor 12 ...>", "#12", a registered name, or a Lua path (acct, app.bank). */
static tr_addr resolve(tr_repl *r, const char *spec, int env_idx) {
  tr_host *h = r->h;
  while (*spec == ' ') spec++;
  const char *p = spec;
  if (strncmp(p, "<actor ", 7) == 0) p += 7;
  else if (*p == '#') p++;
  if (*p >= '0' && *p <= '9') {
    char *end;
    unsigned long long n = strtoull(p, &end, 10), sched = 0;
    if (*end == '.' && end[1] >= '0' && end[1] <= '9') { /* "2.15": scheduler index, serial */
      sched = n;
      n = strtoull(end + 1, &end, 10);
    }
    if ((*end == 0 || *end == ' ' || *end == '>') && sched < h->nsched) {
      tr_addr a = ((tr_addr)sched << 48) | ((tr_addr)n & UINT64_C(0xFFFFFFFFFFFF));
      return tr_alive(h, a) ? a : TR_NOADDR;
    }
  }
  tr_addr a;
  if (tr_whereis(h, spec, &a) == 0) return a;
  /* a global path in the session's env */
  for (const char *q = spec; *q; q++)
    if (!(*q == '_' || *q == '.' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
          (*q >= '0' && *q <= '9')))
      return TR_NOADDR;
  lua_State *L = LUA(h);
  int top = lua_gettop(L);
  lua_pushcfunction(L, walk_path);
  if (env_idx) lua_pushvalue(L, env_idx);
  else if (r->env_ref != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, r->env_ref);
  else lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushstring(L, spec);
  a = TR_NOADDR;
  /* protected: the script's tables (or _G) may have an __index that raises */
  if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isuserdata(L, -1)) a = tr__lua_to_addr(h, L, -1);
  lua_settop(L, top);
  return a != TR_NOADDR && tr_alive(h, a) ? a : TR_NOADDR;
}

static const char *fmt_addr(tr_host *h, tr_addr a, char *buf, size_t cap) {
  tr_addr_format(h, a, buf, cap);
  return buf;
}

/* ---- evaluation ---------------------------------------------------------------------------- */
static void next_line(tr_repl *r);
static void run_line(tr_repl *r, const char *line, size_t len);

/* 1 if `src` is a chunk cut short (the syntax error is at <eof>). */
static int incomplete(lua_State *L, const char *src, size_t len) {
  int top = lua_gettop(L);
  sbuf b = {0};
  sb_add(&b, "return ", 7);
  sb_add(&b, src, len);
  int rc = b.p ? luaL_loadbuffer(L, b.p, b.n, "=stdin") : LUA_ERRMEM;
  sb_free(&b);
  lua_settop(L, top);
  if (rc == LUA_OK) return 0;
  rc = luaL_loadbuffer(L, src, len, "=stdin");
  int more = 0;
  if (rc == LUA_ERRSYNTAX) {
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    more = msg && n >= 5 && strcmp(msg + n - 5, "<eof>") == 0;
  }
  lua_settop(L, top);
  return more;
}

static int ensure_actor(tr_repl *r) {
  tr_host *h = r->h;
  if (r->actor != TR_NOADDR && tr__lookup(tr__here(h), r->actor)) return 0;
  r->actor = TR_NOADDR;
  lua_State *L = LUA(h);
  int top = lua_gettop(L);
  push_mod(h, L);
  lua_getfield(L, -1, "spawn");
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    emitf(r, TR_REPL_ERR, "cannot start the REPL's actor: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return TR_ELOAD;
  }
  tr_addr a = tr__lua_to_addr(h, L, -1);
  tr_actor *act = tr__lookup(tr__here(h), a);
  if (!act) {
    lua_settop(L, top);
    return TR_EDEAD;
  }
  /* its state: the session's env and id */
  lua_rawgeti(L, LUA_REGISTRYINDEX, act->self_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->env_ref);
  lua_setfield(L, -2, "env");
  lua_pushinteger(L, (lua_Integer)r->sid);
  lua_setfield(L, -2, "sid");
  lua_settop(L, top);
  r->actor = a;
  return 0;
}

static void set_tb(tr_repl *r, const char *tb, size_t n) {
  free(r->last_tb);
  r->last_tb = NULL;
  if (!tb) return;
  r->last_tb = malloc(n + 1);
  if (r->last_tb) {
    memcpy(r->last_tb, tb, n);
    r->last_tb[n] = 0;
  }
}

static void on_eval(tr_host *h, int status, const tr_msg *reply, void *ud) {
  tr_repl *r = find_session(h, (uint64_t)(uintptr_t)ud);
  if (!r || r->busy != BUSY_EVAL) return;
  r->busy = BUSY_NONE;
  r->eval_co = NULL;
  int interrupted = r->interrupting;
  r->interrupting = 0;
  if (status == TR_OK) {
    int ok = 0;
    const char *text = NULL, *tb = NULL;
    size_t n = 0, tbn = 0;
    tr_msg_bool(reply, 0, &ok);
    tr_msg_str(reply, 1, &text, &n);
    if (ok) {
      if (text) emit_lines(r, TR_REPL_OUT, text, n);
    } else {
      tr_msg_str(reply, 2, &tb, &tbn);
      set_tb(r, tb, tbn);
      if (text) emit_lines(r, TR_REPL_ERR, text, n);
      else emit(r, TR_REPL_ERR, "error", 5);
      if (tb && !r->hinted) {
        r->hinted = 1;
        emitf(r, TR_REPL_ERR, "(:tb shows the traceback)");
      }
    }
  } else if (interrupted) {
    emit(r, TR_REPL_ERR, "interrupted", 11);
    r->actor = TR_NOADDR; /* killed: a new one runs the next line */
  } else {
    const char *msg = NULL;
    size_t n = 0;
    tr_msg_str(reply, 0, &msg, &n);
    emitf(r, TR_REPL_ERR, "%s: %.*s", tr_errname(status), (int)n, msg ? msg : "");
    if (!tr__lookup(tr__here(h), r->actor)) r->actor = TR_NOADDR;
  }
  next_line(r);
}

/* Runs `src` in the session's actor; `with` (if not TR_NOADDR) is passed to
 * the chunk as `...`. */
static void eval_src(tr_repl *r, const char *src, size_t len, tr_addr with) {
  tr_host *h = r->h;
  if (ensure_actor(r)) {
    next_line(r);
    return;
  }
  tr_buf b;
  tr_buf_init(&b);
  tr_pack_lstr(&b, src, len);
  if (with != TR_NOADDR) tr_pack_addr(&b, with);
  int rc = tr_call(h, TR_NOADDR, r->actor, "eval", &b, TR_TIMEOUT_INFINITE, on_eval,
                   (void *)(uintptr_t)r->sid);
  tr_buf_free(&b);
  if (rc) {
    emitf(r, TR_REPL_ERR, "cannot run the line: %s", tr_strerror(rc));
    next_line(r);
    return;
  }
  r->busy = BUSY_EVAL;
}

static void eval_chunk(tr_repl *r) {
  sbuf c = r->chunk;
  memset(&r->chunk, 0, sizeof r->chunk);
  eval_src(r, c.p ? c.p : "", c.n, TR_NOADDR);
  sb_free(&c);
}

/* ---- commands ------------------------------------------------------------------------------- */
typedef struct {
  const char *name, *args, *help;
  void (*fn)(tr_repl *r, char *args);
} command;

static const command commands[];

static void cmd_help(tr_repl *r, char *args) {
  (void)args;
  emitf(r, TR_REPL_OUT, "Lua: type an expression to see its value, or any statement. Calls");
  emitf(r, TR_REPL_OUT, "work at the prompt (acct:call(\"withdraw\", 20)); actors keep running.");
  emitf(r, TR_REPL_OUT, "Commands (ADDR: an id like 12, a registered name, or a variable");
  emitf(r, TR_REPL_OUT, "holding an address):");
  for (const command *c = commands; c->name; c++) {
    char left[64];
    snprintf(left, sizeof left, ":%s%s%s", c->name, c->args[0] ? " " : "", c->args);
    emitf(r, TR_REPL_OUT, "  %-30s %s", left, c->help);
  }
  emitf(r, TR_REPL_OUT, "Keys: Tab completes; Ctrl-C interrupts the running line (at the");
  emitf(r, TR_REPL_OUT, "prompt: clears the line and stops tracing); Ctrl-D leaves.");
}

static const char *wait_name(int w) {
  switch (w) {
    case TR_W_CALL: return "call";
    case TR_W_SLEEP: return "sleep";
    case TR_W_ROOM: return "room";
    case TR_W_YIELD: return "yield";
  }
  return "none";
}

/* "idle", "running", "waiting on <actor 3 B> (call, 1200 ms)", ... */
static void status_text(tr_host *h, tr_actor *a, char *out, size_t cap, int longform) {
  uint64_t now = tr__now(a->s); /* on a's scheduler's thread */
  uint64_t ms = a->wait_since && now > a->wait_since ? now - a->wait_since : 0;
  char who[128];
  const char *pre = a->state == TR_S_STOPPING ? "stopping, " : "";
  switch (a->wait) {
    case TR_W_CALL:
      if (longform)
        snprintf(out, cap, "%swaiting on %s (call, %" PRIu64 " ms)", pre,
                 fmt_addr(h, a->wait_target, who, sizeof who), ms);
      else
        snprintf(out, cap, "%scall->%" PRIu64 " %" PRIu64 "ms", pre, TR_ADDR_SERIAL(a->wait_target),
                 ms);
      return;
    case TR_W_ROOM:
      if (longform)
        snprintf(out, cap, "%swaiting for room in %s (%" PRIu64 " ms)", pre,
                 fmt_addr(h, a->wait_target, who, sizeof who), ms);
      else
        snprintf(out, cap, "%sroom->%" PRIu64 " %" PRIu64 "ms", pre,
                 TR_ADDR_SERIAL(a->wait_target), ms);
      return;
    case TR_W_SLEEP: snprintf(out, cap, "%ssleeping %" PRIu64 "ms", pre, ms); return;
    case TR_W_YIELD: snprintf(out, cap, "%srunning (preempted)", pre); return;
  }
  if (a->running) snprintf(out, cap, "%srunning", pre);
  else if (a->state == TR_S_STOPPING) snprintf(out, cap, "stopping");
  else if (a->co || a->wake) snprintf(out, cap, "running");
  else if (a->priv.n || a->pub.n || a->init_due) snprintf(out, cap, "runnable");
  else snprintf(out, cap, "idle");
}

/* Rough bytes held by a Lua value (bounded walk). */
static size_t lua_size(lua_State *L, int idx, int *budget) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: return 24 + lua_rawlen(L, idx);
    case LUA_TTABLE: {
      size_t n = 56;
      if (--*budget <= 0 || !lua_checkstack(L, 3)) return n;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        n += 32 + lua_size(L, -2, budget) + lua_size(L, -1, budget);
        lua_pop(L, 1);
        if (*budget <= 0) {
          lua_pop(L, 1);
          break;
        }
      }
      return n;
    }
    case LUA_TFUNCTION: return 40;
    case LUA_TUSERDATA: return 40 + lua_rawlen(L, idx);
    default: return 0;
  }
}

static void mem_text(tr_host *h, tr_actor *a, char *out, size_t cap) {
  if (a->lang == TR_LANG_C) {
    snprintf(out, cap, "%zu", a->cb->state_size);
    return;
  }
  (void)h;
  lua_State *L = a->s->L; /* on a's scheduler's thread */
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->self_ref);
  int budget = 2000;
  size_t n = lua_istable(L, -1) ? lua_size(L, -1, &budget) : 0;
  if (a->cold->env_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->cold->env_ref);
    n += lua_size(L, -1, &budget);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (n < 10240) snprintf(out, cap, "%s%zu", budget <= 0 ? ">" : "~", n);
  else snprintf(out, cap, "%s%zuK", budget <= 0 ? ">" : "~", n / 1024);
}

static const char *beh_name(tr_host *h, tr_actor *a) {
  const char *n = tr__addr_name(h, a->addr);
  return n ? n : "?";
}

static void names_text(tr_actor *a, char *out, size_t cap) {
  size_t pos = 0;
  out[0] = 0;
  for (tr_name *n = a->names; n && pos < cap; n = n->next)
    pos += (size_t)snprintf(out + pos, cap - pos, "%s%s", pos ? "," : "", n->name);
  if (!out[0]) snprintf(out, cap, "-");
}

static int cmp_actor(const void *x, const void *y) {
  tr_addr a = (*(tr_actor *const *)x)->addr, b = (*(tr_actor *const *)y)->addr;
  return a < b ? -1 : a > b;
}

struct actor_list { tr_actor **a; size_t n; };
static void add_live(void *ud, void *val) {
  struct actor_list *l = ud;
  tr_actor *a = val;
  if (a->state != TR_S_DEAD) l->a[l->n++] = a;
}

/* Live actors of scheduler s sorted by address; the caller frees the array. */
static size_t sched_actors(tr_sched *s, tr_actor ***out) {
  tr_actor **list = malloc((s->actors.n + 1) * sizeof *list);
  size_t n = 0;
  *out = list; /* NULL when out of memory: no rows, and free(NULL) is fine */
  if (!list) return 0;
  struct actor_list l = {list, 0};
  tr_stab_each(&s->actors, add_live, &l);
  n = l.n;
  qsort(list, n, sizeof *list, cmp_actor);
  *out = list;
  return n;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
  return s;
}

/* Splits the first word off *args. */
static char *word(char **args) {
  char *s = *args;
  while (*s == ' ' || *s == '\t') s++;
  if (!*s) return NULL;
  char *w = s;
  while (*s && *s != ' ' && *s != '\t') s++;
  if (*s) *s++ = 0;
  *args = s;
  return w;
}

/* Rows about one scheduler's actors, built on its thread (:ls, :waits). */
typedef struct {
  const char *filter;
  int all;
  size_t shown;
  sbuf b;
} ls_job;

static void ls_rows(tr_sched *s, void *ud) {
  ls_job *j = ud;
  tr_host *h = s->h;
  tr_actor **list;
  size_t n = sched_actors(s, &list);
  for (size_t i = 0; i < n; i++) {
    tr_actor *a = list[i];
    /* the REPLs' own actors live on the first scheduler, whose thread this is then */
    if (!j->all && s->index == 0 && is_repl_actor(h, a->addr)) continue;
    char names[128], status[96], mem[32];
    const char *beh = beh_name(h, a);
    uv_mutex_lock(&h->names_lock); /* tr_addr_format reads a->names from other threads */
    names_text(a, names, sizeof names);
    uv_mutex_unlock(&h->names_lock);
    if (*j->filter && !strstr(beh, j->filter) && !strstr(names, j->filter)) continue;
    status_text(h, a, status, sizeof status, 0);
    mem_text(h, a, mem, sizeof mem);
    char id[32];
    if (TR_ADDR_SCHED(a->addr)) snprintf(id, sizeof id, "%u.%" PRIu64, TR_ADDR_SCHED(a->addr),
                                         TR_ADDR_SERIAL(a->addr));
    else snprintf(id, sizeof id, "%" PRIu64, TR_ADDR_SERIAL(a->addr));
    sb_printf(&j->b, "%6s  %-14s %-14s %-4s %-24s %7u %9" PRIu64 " %7s\n", id, names, beh,
              a->lang == TR_LANG_C ? "C" : "Lua", status, a->pub.n + a->priv.n, a->n_in, mem);
    j->shown++;
  }
  free(list);
}

/* rows(s, job) on every scheduler's thread in turn, appended to out; the
 * number of rows. A scheduler that does not answer within 1 s is named. */
static size_t each_sched(tr_host *h, void (*rows)(tr_sched *, void *), const char *filter,
                         int all, sbuf *out) {
  size_t shown = 0;
  for (unsigned i = 0; i < h->nsched; i++) {
    ls_job j = {.filter = filter, .all = all};
    if (tr__sched_sync(tr__here(h), &h->sched[i], rows, &j, 1000))
      sb_printf(out, "(scheduler %u did not answer within 1 s: its actors are not shown)\n",
                i + 1);
    else if (j.b.p)
      sb_add(out, j.b.p, j.b.n);
    shown += j.shown;
    sb_free(&j.b);
  }
  return shown;
}

static void cmd_ls(tr_repl *r, char *args) {
  tr_host *h = r->h;
  char *filter = trim(args);
  int all = 0;
  if (strncmp(filter, "-a", 2) == 0 && (filter[2] == 0 || filter[2] == ' ')) {
    all = 1;
    filter = trim(filter + 2);
  }
  sbuf b = {0};
  sb_printf(&b, "%6s  %-14s %-14s %-4s %-24s %7s %9s %7s\n", "ID", "NAME", "BEHAVIOUR", "LANG",
            "STATUS", "MAILBOX", "HANDLED", "MEMORY");
  size_t shown = each_sched(h, ls_rows, filter, all, &b);
  if (*filter) sb_printf(&b, "%zu actors match '%s'", shown, filter);
  else sb_printf(&b, "%zu actors", shown);
  emit_lines(r, TR_REPL_OUT, b.p, b.n);
  sb_free(&b);
}

/* The live actor SPEC names, on any scheduler, or TR_NOADDR (said). */
static tr_addr need_addr(tr_repl *r, const char *spec, const char *cmd) {
  if (!spec || !*spec) {
    emitf(r, TR_REPL_ERR, ":%s needs an actor (an id, a name, or a variable)", cmd);
    return TR_NOADDR;
  }
  tr_addr a = resolve(r, spec, 0);
  if (a == TR_NOADDR) emitf(r, TR_REPL_ERR, "no live actor '%s'", spec);
  return a;
}

/* :info's lines about one actor, built on its scheduler's thread. */
typedef struct {
  tr_addr addr;
  int repl_actor; /* one of the REPLs' own (those live on the first scheduler) */
  int found;
  sbuf b;
} info_job;

static void info_rows(tr_sched *s, void *ud) {
  info_job *j = ud;
  tr_host *h = s->h;
  tr_actor *a = tr__lookup(s, j->addr);
  if (!a) return;
  j->found = 1;
  char who[160], names[128], status[256], mem[32];
  fmt_addr(h, a->addr, who, sizeof who);
  uv_mutex_lock(&h->names_lock);
  names_text(a, names, sizeof names);
  uv_mutex_unlock(&h->names_lock);
  status_text(h, a, status, sizeof status, 1);
  mem_text(h, a, mem, sizeof mem);
  sbuf *o = &j->b;
  sb_printf(o, "%s\n", who);
  sb_printf(o, "  behaviour  %s (%s)%s\n", beh_name(h, a), a->lang == TR_LANG_C ? "C" : "Lua",
            j->repl_actor ? " (a REPL's own actor)" : "");
  sb_printf(o, "  names      %s\n", names);
  sb_printf(o, "  status     %s\n", status);
  if (h->nsched > 1) sb_printf(o, "  scheduler  %u of %u\n", s->index + 1, h->nsched);
  sb_printf(o, "  mailbox    %u of %u (private lane: %u)\n", a->pub.n, a->cap, a->priv.n);
  sb_printf(o, "  handled    %" PRIu64 " messages; sent %" PRIu64 "\n", a->n_in, a->n_out);
  sb_printf(o, "  memory     %s bytes%s\n", mem,
            a->lang == TR_LANG_C ? " (C state)" : " (state and globals, estimated)");
  int calls = 0, owed = 0, timers = 0;
  for (tr_pending *p = a->calls; p; p = p->next) calls++;
  for (tr_owed *ow = a->cold->owed; ow; ow = ow->next) owed++;
  for (tr_timer *t = a->cold->timers; t; t = t->next) timers++;
  sb_printf(o, "  pending    %d calls made, %d deferred replies owed, %d timers\n", calls, owed,
            timers);
  if (a->owned) sb_printf(o, "  owned      yes (%d strong references)\n", (int)a->cold->refs);
  sb_printf(o, "  handlers   ");
  if (!handler_text(s, a, ", ", o)) sb_printf(o, "-"); /* (in a's state: this thread's) */
}

static void on_owner(tr_repl *r, const char *cmd, char *args,
                     void (*rows)(tr_sched *, void *));

static void cmd_info(tr_repl *r, char *args) {
  on_owner(r, "info", args, info_rows);
  tr_addr a = resolve(r, trim(args), 0);
  tr_repl_host *rh = r->h->repl;
  for (size_t i = 0; a != TR_NOADDR && rh && i < rh->ntraces; i++)
    if (rh->traces[i].addr == a && rh->traces[i].sid == r->sid) {
      emitf(r, TR_REPL_OUT, "  traced     yes (by this REPL)");
      break;
    }
}

static void on_state(tr_host *h, int status, const tr_msg *reply, void *ud) {
  tr_repl *r = find_session(h, (uint64_t)(uintptr_t)ud);
  if (!r || r->busy != BUSY_STATE) return;
  r->busy = BUSY_NONE;
  char buf[8192];
  tr_msg *m = (tr_msg *)reply;
  if (status == TR_OK && tr__msg_parse(m) >= 0 && m->n > 0) {
    size_t pos = 0;
    for (int j = 0; j < m->n; j++) {
      if (j) pos = pos < sizeof buf ? pos + (size_t)snprintf(buf + pos, sizeof buf - pos, ", ") : pos;
      pos = tr__format_object(h, &m->v[j], buf, sizeof buf, pos, 0);
    }
    if (pos >= sizeof buf) memcpy(buf + sizeof buf - 5, "...", 4);
    emit_lines(r, TR_REPL_OUT, buf, strlen(buf));
  } else if (status == TR_OK) {
    emit(r, TR_REPL_OUT, "nil", 3);
  } else {
    const char *msg = NULL;
    size_t n = 0;
    tr_msg_str(reply, 0, &msg, &n);
    emitf(r, TR_REPL_ERR, "%s: %.*s", tr_errname(status), (int)n, msg ? msg : "");
  }
  next_line(r);
}

/* :state of one actor, built on its scheduler's thread: a Lua actor's state
 * rendered in that scheduler's state, or what the REPL needs to ask a C
 * actor's __state handler. */
typedef struct {
  tr_addr addr;
  int found, lang, has_state, failed;
  size_t state_size;
  char beh[128];
  sbuf b;
} state_job;

static void state_rows(tr_sched *s, void *ud) {
  state_job *j = ud;
  tr_actor *a = tr__lookup(s, j->addr);
  if (!a) return;
  j->found = 1;
  j->lang = a->lang;
  snprintf(j->beh, sizeof j->beh, "%s", beh_name(s->h, a));
  if (a->lang == TR_LANG_C) {
    for (const tr_method *m = a->cb->methods; m && m->name; m++)
      if (strcmp(m->name, "__state") == 0) j->has_state = 1;
    j->state_size = a->cb->state_size;
    return;
  }
  lua_State *L = s->L; /* the actor's own state: this thread's */
  int top = lua_gettop(L);
  size_t n;
  const char *text;
  if (push_mod_on(s, L) == 0) {
    lua_getfield(L, -1, "render");
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->self_ref);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) j->failed = 1;
  } else {
    j->failed = 1;
  }
  text = lua_tolstring(L, -1, &n);
  if (text) sb_add(&j->b, text, n);
  else j->failed = 1;
  lua_settop(L, top);
}

static void cmd_state(tr_repl *r, char *args) {
  tr_host *h = r->h;
  char *spec = trim(args);
  tr_addr addr = need_addr(r, spec, "state");
  if (addr == TR_NOADDR) return;
  state_job j = {.addr = addr};
  if (tr__sched_sync(tr__here(h), &h->sched[TR_ADDR_SCHED(addr)], state_rows, &j, 1000)) {
    emitf(r, TR_REPL_ERR, "scheduler %u did not answer within 1 s", TR_ADDR_SCHED(addr) + 1);
  } else if (!j.found) {
    emitf(r, TR_REPL_ERR, "no live actor '%s'", spec);
  } else if (j.lang == TR_LANG_LUA) {
    if (j.failed) emitf(r, TR_REPL_ERR, "cannot show the state: %.*s", (int)j.b.n, j.b.p ? j.b.p : "?");
    else emit_lines(r, TR_REPL_OUT, j.b.p ? j.b.p : "", j.b.n);
  } else if (!j.has_state) {
    emitf(r, TR_REPL_ERR, "%s is a C actor without a __state handler: its state is opaque "
                          "(%zu bytes)", j.beh, j.state_size);
  } else {
    /* the behaviour's own dump: a call to its __state handler */
    int rc = tr_call(h, TR_NOADDR, addr, "__state", NULL, TR_TIMEOUT_DEFAULT, on_state,
                     (void *)(uintptr_t)r->sid);
    if (rc) emitf(r, TR_REPL_ERR, "%s", tr_strerror(rc));
    else r->busy = BUSY_STATE;
  }
  sb_free(&j.b);
}

/* Appends s as a Lua string literal. */
static void sb_quote(sbuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
    else if (c < 32 || c == 127) sb_printf(b, "\\%03d", c);
    else sb_add(b, (const char *)&c, 1);
  }
  sb_add(b, "\"", 1);
}

static void send_or_call(tr_repl *r, char *args, const char *verb) {
  char *spec = word(&args);
  char *method = word(&args);
  tr_addr a = need_addr(r, spec, verb);
  if (a == TR_NOADDR) return;
  if (!method) {
    emitf(r, TR_REPL_ERR, ":%s ADDR METHOD [ARGS]: which method?", verb);
    return;
  }
  char *rest = trim(args);
  sbuf b = {0};
  sb_printf(&b, "local a = ... return a:%s(", verb);
  sb_quote(&b, method);
  if (*rest) {
    sb_add(&b, ", ", 2);
    sb_add(&b, rest, strlen(rest));
  }
  sb_add(&b, ")", 1);
  eval_src(r, b.p, b.n, a);
  sb_free(&b);
}

static void cmd_send(tr_repl *r, char *args) { send_or_call(r, args, "send"); }
static void cmd_call(tr_repl *r, char *args) { send_or_call(r, args, "call"); }

static void cmd_spawn(tr_repl *r, char *args) {
  char *file = word(&args);
  if (!file) {
    emitf(r, TR_REPL_ERR, ":spawn FILE [ARGS]: which file?");
    return;
  }
  char *rest = trim(args);
  sbuf b = {0};
  sb_add(&b, "return troupe.spawn(", 20);
  sb_quote(&b, file);
  if (*rest) {
    sb_add(&b, ", ", 2);
    sb_add(&b, rest, strlen(rest));
  }
  sb_add(&b, ")", 1);
  eval_src(r, b.p, b.n, TR_NOADDR);
  sb_free(&b);
}

static void cmd_stop(tr_repl *r, char *args) {
  tr_addr a = need_addr(r, trim(args), "stop");
  if (a == TR_NOADDR) return;
  char who[160];
  fmt_addr(r->h, a, who, sizeof who);
  int rc = tr_stop(r->h, a);
  if (rc) emitf(r, TR_REPL_ERR, "%s: %s", who, tr_strerror(rc));
  else emitf(r, TR_REPL_OUT, "stopping %s (after its current message)", who);
}

static void cmd_kill(tr_repl *r, char *args) {
  tr_addr a = need_addr(r, trim(args), "kill");
  if (a == TR_NOADDR) return;
  char who[160];
  fmt_addr(r->h, a, who, sizeof who);
  if (a == r->actor) r->actor = TR_NOADDR;
  int rc = tr_kill(r->h, a);
  if (rc) emitf(r, TR_REPL_ERR, "%s: %s", who, tr_strerror(rc));
  else emitf(r, TR_REPL_OUT, "killed %s", who);
}

/* ---- tracing ----------------------------------------------------------------------------------- */
static void trace_fn(tr_host *h, void *ud, int ev, tr_actor *a, const tr_env *e, int status,
                     const char *payload, size_t len);

/* Sets or clears an actor's `traced` flag, on its scheduler's thread. */
typedef struct {
  tr_addr addr;
  int on, found;
} trace_set_job;

static void trace_set(tr_sched *s, void *ud) {
  trace_set_job *j = ud;
  tr_actor *a = tr__lookup(s, j->addr);
  if (!a) return;
  j->found = 1;
  a->traced = (uint8_t)j->on;
}

/* 0, or TR_ETIMEOUT when the actor's scheduler did not answer (the flag
 * stays as it was: its lines are dropped on the way when nobody traces it). */
static int trace_flag(tr_host *h, tr_addr addr, int on, int *found) {
  trace_set_job j = {.addr = addr, .on = on};
  unsigned si = TR_ADDR_SCHED(addr);
  int rc = si < h->nsched ? tr__sched_sync(tr__here(h), &h->sched[si], trace_set, &j, 1000) : 0;
  if (found) *found = j.found;
  return rc;
}

static void trace_refresh(tr_host *h, tr_addr addr) {
  tr_repl_host *rh = h->repl;
  int any = 0;
  for (size_t i = 0; rh && i < rh->ntraces; i++)
    if (rh->traces[i].addr == addr) any = 1;
  trace_flag(h, addr, any, NULL);
  if (rh && rh->ntraces == 0 && tr__tracer(h) == trace_fn)
    tr__set_tracer(h, rh->prev_trace_fn, rh->prev_trace_ud);
}

static void untrace(tr_repl *r, tr_addr addr) {
  tr_repl_host *rh = r->h->repl;
  if (!rh) return;
  size_t j = 0;
  tr_addr *gone = malloc((rh->ntraces + 1) * sizeof *gone);
  size_t ng = 0;
  for (size_t i = 0; i < rh->ntraces; i++) {
    if (rh->traces[i].sid == r->sid && (addr == TR_NOADDR || rh->traces[i].addr == addr)) {
      if (gone) gone[ng++] = rh->traces[i].addr;
      continue;
    }
    rh->traces[j++] = rh->traces[i];
  }
  rh->ntraces = j;
  for (size_t i = 0; i < ng; i++) trace_refresh(r->h, gone[i]);
  free(gone);
}

static void untrace_all(tr_repl *r) { untrace(r, TR_NOADDR); }

static void clock_text(char *out, size_t cap) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  time_t t = tv.tv_sec;
  localtime_r(&t, &tm);
  snprintf(out, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(tv.tv_usec / 1000));
}

static size_t payload_text(tr_host *h, const char *payload, size_t len, char *out, size_t cap,
                           int first_only) {
  tr_msg m;
  tr__msg_init(&m, payload, len);
  size_t pos = 0;
  out[0] = 0;
  if (tr__msg_parse(&m) < 0) {
    snprintf(out, cap, "<corrupt payload>");
  } else {
    for (int j = 0; j < m.n && (!first_only || j == 0); j++) {
      if (j && pos < cap) pos += (size_t)snprintf(out + pos, cap - pos, ", ");
      pos = tr__format_object(h, &m.v[j], out, cap, pos, 0);
    }
    if (pos >= cap && cap > 4) memcpy(out + cap - 4, "...", 4);
  }
  tr__msg_done(&m);
  return pos;
}

static const char *kind_name(int k) {
  switch (k) {
    case TR_K_SEND: return "send";
    case TR_K_CALL: return "call";
    case TR_K_REPLY: return "reply";
    case TR_K_INIT: return "init";
    case TR_K_STOP: return "stop";
    case TR_K_WAKE: return "wake";
  }
  return "?";
}

/* On the first scheduler's thread: a trace line of actor e->from (built on
 * its scheduler's thread) goes to each session that traces it now. Lines of
 * one actor come in the order they were made (one thread makes them, the
 * inbox keeps its order); a line that arrives after :untrace is dropped. */
static void trace_show(tr_sched *s, tr_env *e) {
  tr_host *h = s->h;
  tr_repl_host *rh = h->repl;
  if (rh && !rh->in_trace) {
    rh->in_trace = 1;
    for (size_t i = 0; i < rh->ntraces; i++) {
      if (rh->traces[i].addr != e->from) continue;
      tr_repl *r = find_session(h, rh->traces[i].sid);
      if (r) emit(r, TR_REPL_OUT, TR_ENV_PAYLOAD(e), e->len);
    }
    rh->in_trace = 0;
  }
  tr__env_free(s, e);
}

/* The trace hook, on the thread of a traced actor's scheduler: it formats
 * the line there and hands it to the first scheduler (at once when that is
 * this one), which owns the sessions. It reads nothing of the REPL's but,
 * on the first scheduler, the hook it replaced. */
static void trace_fn(tr_host *h, void *ud, int ev, tr_actor *a, const tr_env *e, int status,
                     const char *payload, size_t len) {
  (void)ud;
  tr_sched *s = a->s; /* this thread's */
  if (s->index == 0) {
    tr_repl_host *rh = h->repl;
    if (rh && rh->prev_trace_fn)
      rh->prev_trace_fn(h, rh->prev_trace_ud, ev, a, e, status, payload, len);
    if (!rh || rh->in_trace) return;
  }
  char when[32], who[160], peer[160], args[1024], line[2600];
  clock_text(when, sizeof when);
  fmt_addr(h, a->addr, who, sizeof who);
  if (ev == TR_EV_IN) {
    payload_text(h, payload, len, args, sizeof args, 0);
    if (e->kind == TR_K_STOP) snprintf(line, sizeof line, "%s %s <- stop request", when, who);
    else if (e->from == TR_NOADDR)
      snprintf(line, sizeof line, "%s %s <- (outside) %s %s(%s)", when, who, kind_name(e->kind),
               TR_ENV_METHOD(e), args);
    else if (e->from == a->addr)
      snprintf(line, sizeof line, "%s %s <- (self/timer) %s %s(%s)", when, who,
               kind_name(e->kind), TR_ENV_METHOD(e), args);
    else
      snprintf(line, sizeof line, "%s %s <- %s %s %s(%s)", when, who,
               fmt_addr(h, e->from, peer, sizeof peer), kind_name(e->kind), TR_ENV_METHOD(e), args);
  } else if (ev == TR_EV_OUT) {
    payload_text(h, payload, len, args, sizeof args, 0);
    snprintf(line, sizeof line, "%s %s -> %s %s %s(%s)", when, who,
             fmt_addr(h, e->to, peer, sizeof peer), kind_name(e->kind), TR_ENV_METHOD(e), args);
  } else {
    payload_text(h, payload, len, args, sizeof args, status < 0);
    snprintf(line, sizeof line, "%s %s => %s%s%s", when, who,
             status == TR_OK ? "ok" : status == TR_FAILED ? "failed" : tr_errname(status),
             args[0] ? " " : "", args);
  }
  tr__op(s, TR_NOADDR /* scheduler index 0 */, trace_show, a->addr, 0, 0, line, strlen(line));
}

static void cmd_trace(tr_repl *r, char *args) {
  tr_host *h = r->h;
  char *spec = trim(args);
  tr_addr ad = need_addr(r, spec, "trace");
  if (ad == TR_NOADDR) return;
  tr_repl_host *rh = h->repl;
  char who[160];
  fmt_addr(h, ad, who, sizeof who);
  for (size_t i = 0; i < rh->ntraces; i++)
    if (rh->traces[i].addr == ad && rh->traces[i].sid == r->sid) {
      emitf(r, TR_REPL_OUT, "already tracing %s", who);
      return;
    }
  if (rh->ntraces == rh->captraces) {
    size_t cap = rh->captraces ? rh->captraces * 2 : 8;
    void *p = realloc(rh->traces, cap * sizeof *rh->traces);
    if (!p) {
      emitf(r, TR_REPL_ERR, "out of memory");
      return;
    }
    rh->traces = p;
    rh->captraces = cap;
  }
  rh->traces[rh->ntraces].addr = ad;
  rh->traces[rh->ntraces].sid = r->sid;
  rh->ntraces++;
  /* the hook first: the actor's scheduler reads it after the sync below */
  if (tr__tracer(h) != trace_fn) {
    rh->prev_trace_fn = tr__tracer(h);
    rh->prev_trace_ud = h->trace_ud;
    tr__set_tracer(h, trace_fn, rh);
  }
  int found = 0, rc = trace_flag(h, ad, 1, &found);
  if (rc || !found) {
    if (rc) emitf(r, TR_REPL_ERR, "scheduler %u did not answer within 1 s", TR_ADDR_SCHED(ad) + 1);
    else emitf(r, TR_REPL_ERR, "no live actor '%s'", spec);
    rh->ntraces--;
    trace_refresh(h, ad);
    return;
  }
  emitf(r, TR_REPL_OUT, "tracing %s (:untrace or Ctrl-C to stop)", who);
}

static void cmd_untrace(tr_repl *r, char *args) {
  char *spec = trim(args);
  if (!*spec) {
    untrace_all(r);
    emitf(r, TR_REPL_OUT, "tracing nothing");
    return;
  }
  tr_addr a = resolve(r, spec, 0);
  if (a == TR_NOADDR) { /* a dead actor's traces go too ("12", "1.12") */
    char *end;
    unsigned long long n = strtoull(spec, &end, 10), sched = 0;
    if (*end == '.' && end[1] >= '0' && end[1] <= '9') {
      sched = n;
      n = strtoull(end + 1, &end, 10);
    }
    if (*end == 0 && sched < r->h->nsched)
      a = ((tr_addr)sched << 48) | ((tr_addr)n & UINT64_C(0xFFFFFFFFFFFF));
  }
  untrace(r, a);
  if (a == TR_NOADDR) untrace_all(r);
  emitf(r, TR_REPL_OUT, "stopped tracing %s", spec);
}

/* ---- :mailbox ------------------------------------------------------------------------------------ */
/* :mailbox's lines, built on the actor's scheduler's thread (j->b). */
static void mailbox_rows(tr_sched *s, void *ud) {
  info_job *j = ud;
  tr_host *h = s->h;
  tr_actor *a = tr__lookup(s, j->addr);
  if (!a) return;
  j->found = 1;
  sbuf *o = &j->b;
  char who[160], peer[160], pl[1024];
  fmt_addr(h, a->addr, who, sizeof who);
  sb_printf(o, "%s: %u pending (private lane %u, public %u of %u)", who,
            a->priv.n + a->pub.n + a->init_due, a->priv.n + a->init_due, a->pub.n, a->cap);
  int shown = 0, limit = 50;
  if (a->init_due) { /* its init, not made into an envelope yet */
    payload_text(h, a->init_args, a->init_len, pl, sizeof pl, 0);
    sb_printf(o, "\n  priv %3d  init%s%s", 1, pl[0] ? " with " : "", pl);
    shown++;
  }
  const tr_queue *qs[2] = {&a->priv, &a->pub};
  for (int q = 0; q < 2; q++) {
    int i = 0;
    for (tr_env *e = qs[q]->head; e; e = e->next, i++) {
      if (shown >= limit) continue;
      payload_text(h, TR_ENV_PAYLOAD(e), e->len, pl, sizeof pl, 0);
      const char *from = e->from == TR_NOADDR ? "(outside)"
                         : e->from == a->addr ? "(self/timer)"
                                              : fmt_addr(h, e->from, peer, sizeof peer);
      if (e->kind == TR_K_STOP || e->kind == TR_K_INIT)
        sb_printf(o, "\n  %s %3d  %s%s%s", q ? "pub " : "priv", i + 1 + (q ? 0 : a->init_due),
                  kind_name(e->kind),
                  e->kind == TR_K_INIT && pl[0] ? " with " : "", e->kind == TR_K_INIT ? pl : "");
      else
        sb_printf(o, "\n  %s %3d  %-4s %s(%s) from %s", q ? "pub " : "priv",
                  i + 1 + (q ? 0 : a->init_due),
                  kind_name(e->kind), TR_ENV_METHOD(e), pl, from);
      shown++;
    }
  }
  if ((uint32_t)shown < a->priv.n + a->pub.n + a->init_due)
    sb_printf(o, "\n  ... and %u more", a->priv.n + a->pub.n + a->init_due - (uint32_t)shown);
  int waiting = 0;
  for (tr_roomwait *w = a->cold->room_head; w; w = w->next) waiting += !w->cancelled;
  if (waiting) sb_printf(o, "\n  %d senders wait for room", waiting);
}

/* Run rows() for the actor SPEC on its scheduler's thread and show what it
 * built (:info, :mailbox). */
static void on_owner(tr_repl *r, const char *cmd, char *args,
                     void (*rows)(tr_sched *, void *)) {
  tr_host *h = r->h;
  char *spec = trim(args);
  if (!*spec) {
    emitf(r, TR_REPL_ERR, ":%s needs an actor (an id, a name, or a variable)", cmd);
    return;
  }
  info_job j = {.addr = resolve(r, spec, 0)};
  j.repl_actor = j.addr != TR_NOADDR && is_repl_actor(h, j.addr);
  int rc = j.addr == TR_NOADDR ? 0
                               : tr__sched_sync(tr__here(h), &h->sched[TR_ADDR_SCHED(j.addr)],
                                                rows, &j, 1000);
  if (rc) emitf(r, TR_REPL_ERR, "scheduler %u did not answer within 1 s", TR_ADDR_SCHED(j.addr) + 1);
  else if (!j.found) emitf(r, TR_REPL_ERR, "no live actor '%s'", spec);
  else emit_lines(r, TR_REPL_OUT, j.b.p, j.b.n);
  sb_free(&j.b);
}

static void cmd_mailbox(tr_repl *r, char *args) { on_owner(r, "mailbox", args, mailbox_rows); }

/* ---- :waits --------------------------------------------------------------------------------------- */
/* :waits lines of one scheduler, built on its thread (ls_job: b, shown). */
static void waits_rows(tr_sched *s, void *ud) {
  ls_job *j = ud;
  tr_host *h = s->h;
  tr_actor **list;
  size_t n = sched_actors(s, &list);
  uint64_t now = tr__now(s);
  char who[160], peer[160];
  for (size_t i = 0; i < n; i++) {
    tr_actor *a = list[i];
    uint64_t ms = a->wait_since && now > a->wait_since ? now - a->wait_since : 0;
    const char *tag = s->index == 0 && is_repl_actor(h, a->addr) ? " (a REPL line)" : "";
    if (a->wait == TR_W_CALL || a->wait == TR_W_ROOM) {
      sb_printf(&j->b, "%s -> %s  %s, %" PRIu64 " ms%s\n", fmt_addr(h, a->addr, who, sizeof who),
                fmt_addr(h, a->wait_target, peer, sizeof peer),
                a->wait == TR_W_CALL ? "call" : "waiting for mailbox room", ms, tag);
      j->shown++;
    } else if (a->wait == TR_W_SLEEP) {
      sb_printf(&j->b, "%s  sleeping, %" PRIu64 " ms%s\n", fmt_addr(h, a->addr, who, sizeof who),
                ms, tag);
      j->shown++;
    }
    for (tr_owed *o = a->cold->owed; o; o = o->next) {
      sb_printf(&j->b, "%s owes a deferred reply to %s\n", fmt_addr(h, a->addr, who, sizeof who),
                o->caller ? fmt_addr(h, o->caller, peer, sizeof peer) : "(outside)");
      j->shown++;
    }
  }
  free(list);
  /* calls from outside any actor (C callbacks, the main script) */
  for (uint32_t i = 0; i < s->pslots_n; i++) {
    tr_pending *p = s->pslots[i].p;
    if (!p) continue;
    if (p->caller != TR_NOADDR) continue;
    if (p->kind == TR_P_CB && p->cb == on_eval) continue; /* a prompt line, shown above */
    sb_printf(&j->b, "(%s) -> %s  call\n", p->kind == TR_P_BLOCK ? "main script" : "C code",
              fmt_addr(h, p->target, peer, sizeof peer));
    j->shown++;
  }
}

static void cmd_waits(tr_repl *r, char *args) {
  (void)args;
  tr_host *h = r->h;
  sbuf b = {0};
  size_t lines = each_sched(h, waits_rows, "", 0, &b);
  if (!lines) sb_printf(&b, "nobody is waiting");
  else if (b.n && b.p[b.n - 1] == '\n') b.n--;
  emit_lines(r, TR_REPL_OUT, b.p, b.n);
  sb_free(&b);
  (void)wait_name;
}

/* ---- :reload ---------------------------------------------------------------------------------------- */
/* Each step runs on a scheduler's thread (tr__sched_sync from the REPL's),
 * on that scheduler's part of the job: find the targets, load FILE into its
 * Lua state (and spawn cache), swap the handlers of the targets that are
 * between messages, put the old cache entry back, drop the references. */

static void reload_line(reload_job *j, char kind, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  for (char *c = tmp; *c; c++)
    if (*c == '\n') *c = ' ';
  sb_printf(&j->lines, "%c %s\n", kind, tmp);
}

/* The lines the schedulers made, printed on the REPL's thread. */
static void reload_flush(reload_job *j) {
  const char *p = j->lines.p, *end = p + j->lines.n;
  while (p && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n >= 2) emit(j->r, p[0] == 'E' ? TR_REPL_ERR : TR_REPL_OUT, p + 2, n - 2);
    p += n + 1;
  }
  j->lines.n = 0;
}

static void reload_check_one(tr_sched *s, void *ud) {
  reload_job *j = ud;
  tr_actor *a = tr__lookup(s, j->one);
  if (!a) return;
  j->found = 1;
  if (a->lang != TR_LANG_LUA) j->is_c = 1;
  else j->name = strdup(tr__lua_behaviour_name(a));
}

static void reload_find(tr_sched *s, void *ud) {
  reload_job *j = ud;
  tr_host *h = s->h;
  reload_part *p = &j->parts[s->index];
  tr_actor **list;
  size_t n = sched_actors(s, &list);
  p->targets = malloc((n + 1) * sizeof *p->targets);
  if (p->targets)
    for (size_t i = 0; i < n; i++) {
      tr_actor *a = list[i];
      if (a->lang != TR_LANG_LUA) continue;
      if (j->one != TR_NOADDR ? a->addr == j->one
                              : !(s->index == 0 && is_repl_actor(h, a->addr)) &&
                                    strcmp(tr__lua_behaviour_name(a), j->name) == 0)
        p->targets[p->n++] = a->addr;
    }
  p->left = p->n;
  free(list);
}

typedef struct {
  tr_sched *s;
  const char *file, *name;
  struct tr_lbeh *lb;
  int rc;
} load_args;

static int load_fresh_p(lua_State *L) {
  load_args *la = lua_touserdata(L, 1);
  lua_settop(L, 0);
  la->rc = tr__lua_load_fresh(la->s, L, la->file, la->name, &la->lb);
  return 1; /* the table, or the message */
}

static void reload_load(tr_sched *s, void *ud) {
  reload_job *j = ud;
  reload_part *p = &j->parts[s->index];
  lua_State *L = s->L;
  int top = lua_gettop(L);
  tr__lua_file_cached(s, L, j->file);
  p->old_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* protected: the file's table may raise when its fields are read */
  load_args la = {s, j->file, j->name, NULL, 0};
  lua_pushcfunction(L, load_fresh_p);
  lua_pushlightuserdata(L, &la);
  int rc = lua_pcall(L, 1, 1, 0);
  if (rc == LUA_OK) rc = la.rc;
  else rc = TR_ELOAD;
  if (rc == 0) {
    p->lb = la.lb;
    p->tab_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    p->loaded = 1;
  } else {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "cannot load it";
    if (s->index == 0) j->err = strdup(msg);
    else {
      size_t n = strlen(msg) + 64;
      j->err = malloc(n);
      if (j->err) snprintf(j->err, n, "%s (on scheduler %u)", msg, s->index + 1);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->old_ref); /* the cache as it was */
    tr__lua_file_cache_set(s, L, j->file);
    luaL_unref(L, LUA_REGISTRYINDEX, p->old_ref);
  }
  lua_settop(L, top);
}

static void reload_release(tr_sched *s, void *ud) {
  reload_job *j = ud;
  reload_part *p = &j->parts[s->index];
  if (!p->loaded) return;
  luaL_unref(s->L, LUA_REGISTRYINDEX, p->tab_ref);
  luaL_unref(s->L, LUA_REGISTRYINDEX, p->old_ref);
  p->loaded = 0;
}

static void reload_rollback(tr_sched *s, void *ud) {
  reload_job *j = ud;
  reload_part *p = &j->parts[s->index];
  if (!p->loaded) return;
  lua_rawgeti(s->L, LUA_REGISTRYINDEX, p->old_ref);
  tr__lua_file_cache_set(s, s->L, j->file);
  reload_release(s, ud);
}

/* migrate(state) runs outside any handler, where nothing preempts it: one
 * that runs for over MIGRATE_MS of CPU time is stopped with an error (the
 * actor keeps its old code), instead of holding its scheduler for good. */
#define MIGRATE_MS 1000
static __thread uint64_t migrate_deadline;

static uint64_t cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return uv_hrtime();
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void migrate_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (cpu_ns() > migrate_deadline) luaL_error(L, "migrate ran for over %d ms", MIGRATE_MS);
}

/* repl.lua's fn(registry[ref]) in s's state: a registry ref to its result,
 * or LUA_NOREF when it failed. The stack is as it was. */
static int state_call(tr_sched *s, lua_State *L, const char *fn, int ref) {
  int top = lua_gettop(L), out = LUA_NOREF;
  if (push_mod_on(s, L) == 0) {
    lua_getfield(L, -1, fn);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) out = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_settop(L, top);
  return out;
}

/* Swap a's behaviour now; run the new behaviour's migrate(state). 0 or -1. */
static int swap_one(tr_sched *s, reload_job *j, tr_actor *a) {
  tr_host *h = s->h;
  reload_part *p = &j->parts[s->index];
  lua_State *L = s->L; /* a's state: this thread's */
  char who[160];
  fmt_addr(h, a->addr, who, sizeof who);
  struct tr_lbeh *old = a->lb;
  a->lb = p->lb;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->tab_ref);
  int migrated = 0;
  if (lua_getfield(L, -1, "migrate") == LUA_TFUNCTION) {
    int snap = state_call(s, L, "snapshot", a->self_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->self_ref);
    tr_actor *was = s->current;
    s->current = a; /* its globals, troupe.self() */
    lua_Hook hook = lua_gethook(L);
    int mask = lua_gethookmask(L), count = lua_gethookcount(L);
    migrate_deadline = cpu_ns() + (uint64_t)MIGRATE_MS * 1000000u;
    lua_sethook(L, migrate_hook, LUA_MASKCOUNT, 10000);
    int rc = lua_pcall(L, 1, 0, 0);
    lua_sethook(L, hook, mask, count);
    s->current = was;
    if (rc != LUA_OK) {
      a->lb = old;
      /* and its old state: migrate may have changed some of it */
      int back = snap != LUA_NOREF ? state_call(s, L, "restore", snap) : LUA_NOREF;
      reload_line(j, 'E', "%s: migrate failed, kept the old code%s: %s", who,
                  snap == LUA_NOREF ? "" : back != LUA_NOREF ? " and state" : " (its state could not be restored)",
                  lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(an error value)");
      luaL_unref(L, LUA_REGISTRYINDEX, back);
      luaL_unref(L, LUA_REGISTRYINDEX, snap);
      lua_settop(L, top);
      return -1;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, snap);
    migrated = 1;
  }
  lua_settop(L, top);
  reload_line(j, 'O', "reloaded %s%s", who, migrated ? " (migrate ran)" : "");
  return 0;
}

static int between_messages(tr_actor *a) { return !a->running && !a->co && !a->cur; }

/* Actors in the middle of a message are swapped when they next finish one. */
static void reload_swap(tr_sched *s, void *ud) {
  reload_job *j = ud;
  reload_part *p = &j->parts[s->index];
  size_t left = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (p->targets[i] == TR_NOADDR) continue;
    tr_actor *a = tr__lookup(s, p->targets[i]);
    if (!a) {
      p->targets[i] = TR_NOADDR;
      continue;
    }
    if (!between_messages(a)) {
      left++;
      continue;
    }
    if (swap_one(s, j, a) == 0) j->ok++;
    else j->failed++;
    p->targets[i] = TR_NOADDR;
  }
  p->left = left;
}

/* Runs step() on every scheduler that has a part in the job (all: `all`,
 * else those with targets left); the number that did not answer in 1 s. */
static unsigned reload_each(reload_job *j, void (*step)(tr_sched *, void *), int all) {
  tr_host *h = j->r->h;
  unsigned late = 0;
  for (unsigned i = 0; i < h->nsched; i++) {
    reload_part *p = &j->parts[i];
    if (!all && !p->left) continue;
    if (tr__sched_sync(tr__here(h), &h->sched[i], step, j, 1000)) late++;
  }
  return late;
}

static void reload_free(reload_job *j) {
  if (j->parts)
    for (unsigned i = 0; i < j->r->h->nsched; i++) free(j->parts[i].targets);
  free(j->parts);
  free(j->file);
  free(j->name);
  free(j->err);
  sb_free(&j->lines);
  free(j);
}

static void reload_close_cb(uv_handle_t *hd) { reload_free(hd->data); }

static void reload_end(reload_job *j, int interrupted) {
  tr_repl *r = j->r;
  tr_host *h = r->h;
  if (!interrupted) {
    sbuf busy = {0};
    size_t nbusy = 0;
    char who[160];
    for (unsigned i = 0; i < h->nsched; i++)
      for (size_t k = 0; k < j->parts[i].n; k++) {
        tr_addr a = j->parts[i].targets[k];
        if (a == TR_NOADDR || !tr_alive(h, a)) continue;
        sb_printf(&busy, "%s%s", nbusy++ ? ", " : "", fmt_addr(h, a, who, sizeof who));
      }
    if (nbusy)
      emitf(r, TR_REPL_ERR, "gave up on %zu actors still busy after 10 s (they keep the old code): %s",
            nbusy, busy.p);
    emitf(r, TR_REPL_OUT, "%d reloaded, %d failed%s", j->ok, j->failed,
          nbusy ? ", others gone or never idle" : "");
    sb_free(&busy);
  }
  /* the new tables stay referenced by the actors (and spawn caches) that use them */
  reload_each(j, reload_release, 1);
  r->reload = NULL;
  uv_timer_stop(&j->timer);
  uv_close((uv_handle_t *)&j->timer, reload_close_cb);
}

/* 1 when no target is left. */
static int reload_step(reload_job *j) {
  tr_host *h = j->r->h;
  reload_each(j, reload_swap, 0);
  reload_flush(j);
  for (unsigned i = 0; i < h->nsched; i++)
    if (j->parts[i].left) return 0;
  return 1;
}

static void reload_tick(uv_timer_t *t) {
  reload_job *j = t->data;
  tr_repl *r = j->r;
  tr_sched *s = &r->h->sched[0];
  s->in_callback++;
  int done = reload_step(j);
  if (!done && tr__now(s) - j->started > 10000) done = 1;
  if (done) {
    r->busy = BUSY_NONE;
    reload_end(j, 0);
    next_line(r);
  }
  s->in_callback--;
}

static void cmd_reload(tr_repl *r, char *args) {
  tr_host *h = r->h;
  char *spec = word(&args);
  char *file = word(&args);
  if (!spec || !file) {
    emitf(r, TR_REPL_ERR, ":reload ADDR|BEHAVIOUR FILE");
    return;
  }
  reload_job *j = calloc(1, sizeof *j);
  if (j) {
    j->r = r;
    j->file = strdup(file);
    j->parts = calloc(h->nsched, sizeof *j->parts);
    j->one = resolve(r, spec, 0);
  }
  if (!j || !j->file || !j->parts) {
    emitf(r, TR_REPL_ERR, "out of memory");
    if (j) reload_free(j);
    return;
  }
  unsigned late = 0;
  if (j->one != TR_NOADDR) {
    if (tr__sched_sync(tr__here(h), &h->sched[TR_ADDR_SCHED(j->one)], reload_check_one, j, 1000))
      late = 1;
    else if (!j->found) emitf(r, TR_REPL_ERR, "no live actor '%s'", spec);
    else if (j->is_c) emitf(r, TR_REPL_ERR, "%s is a C actor: only Lua actors can be reloaded", spec);
    if (late || !j->found || j->is_c || !j->name) goto refused;
  } else {
    j->name = strdup(spec);
  }
  size_t nt = 0;
  late = reload_each(j, reload_find, 1);
  if (late) goto refused;
  for (unsigned i = 0; i < h->nsched; i++) nt += j->parts[i].n;
  if (nt == 0) {
    emitf(r, TR_REPL_ERR, "no live actor or Lua behaviour '%s'", spec);
    goto refused;
  }
  /* FILE in every scheduler's state (their spawn caches too), or in none */
  for (unsigned i = 0; i < h->nsched && !j->err; i++)
    if (tr__sched_sync(tr__here(h), &h->sched[i], reload_load, j, 1000)) late++;
  if (j->err || late) {
    reload_each(j, reload_rollback, 1);
    if (j->err) emitf(r, TR_REPL_ERR, "%s; nothing changed", j->err);
    goto refused;
  }
  j->started = tr__now(&h->sched[0]);
  uv_timer_init(h->loop, &j->timer);
  j->timer.data = j;
  r->reload = j;
  if (reload_step(j)) {
    reload_end(j, 0);
    return;
  }
  emitf(r, TR_REPL_OUT, "waiting for busy actors to finish their message...");
  r->busy = BUSY_RELOAD;
  uv_timer_start(&j->timer, reload_tick, 2, 2);
  return;
refused:
  if (late) emitf(r, TR_REPL_ERR, "a scheduler did not answer within 1 s; nothing changed");
  reload_free(j);
}

static void cmd_tb(tr_repl *r, char *args) {
  (void)args;
  if (!r->last_tb) emitf(r, TR_REPL_OUT, "no traceback");
  else emit_lines(r, TR_REPL_OUT, r->last_tb, strlen(r->last_tb));
}

static void cmd_quit(tr_repl *r, char *args) {
  (void)args;
  drop_queue(r); /* lines typed after :quit do not run */
  emit(r, TR_REPL_BYE, "", 0);
}

static const command commands[] = {
    {"help", "", "this text", cmd_help},
    {"ls", "[-a] [FILTER]", "every actor (FILTER: part of a behaviour or name)", cmd_ls},
    {"info", "ADDR", "one actor in detail", cmd_info},
    {"state", "ADDR", "a read-only snapshot of its state", cmd_state},
    {"send", "ADDR METHOD [ARGS]", "send (ARGS: Lua expressions, a, b)", cmd_send},
    {"call", "ADDR METHOD [ARGS]", "call and print the reply", cmd_call},
    {"spawn", "FILE [ARGS]", "spawn a Lua behaviour file", cmd_spawn},
    {"stop", "ADDR", "stop gracefully (after its current message)", cmd_stop},
    {"kill", "ADDR", "stop now (reason killed)", cmd_kill},
    {"trace", "ADDR", "print its messages in and out", cmd_trace},
    {"untrace", "[ADDR]", "stop tracing it (or everything)", cmd_untrace},
    {"mailbox", "ADDR", "peek at its pending messages", cmd_mailbox},
    {"reload", "ADDR|BEHAVIOUR FILE", "new handlers from FILE, state kept", cmd_reload},
    {"waits", "", "who waits on whom (calls), how long", cmd_waits},
    {"tb", "", "the traceback of the last error", cmd_tb},
    {"quit", "", "leave (also Ctrl-D)", cmd_quit},
    {NULL, NULL, NULL, NULL}};

static void run_command(tr_repl *r, const char *line, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) return;
  memcpy(copy, line, len);
  copy[len] = 0;
  char *p = trim(copy) + 1; /* past ':' */
  char *args = p;
  char *name = word(&args);
  if (!name) name = "help";
  const command *found = NULL;
  int nmatch = 0;
  for (const command *c = commands; c->name; c++) {
    if (strcmp(c->name, name) == 0) {
      found = c;
      nmatch = 1;
      break;
    }
    if (strncmp(c->name, name, strlen(name)) == 0) {
      found = c;
      nmatch++;
    }
  }
  if (!found || nmatch > 1)
    emitf(r, TR_REPL_ERR, "%s command ':%s' (:help lists them)", nmatch > 1 ? "ambiguous" : "unknown",
          name);
  else found->fn(r, args);
  free(copy);
}

/* ---- input ------------------------------------------------------------------------------------------- */
static void run_line(tr_repl *r, const char *line, size_t len) {
  tr_host *h = r->h;
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
  if (r->chunk.n == 0 && i < len && line[i] == ':' && (i + 1 >= len || line[i + 1] != ':')) {
    run_command(r, line, len);
    return;
  }
  if (r->chunk.n == 0 && i == len) return; /* an empty line */
  if (r->chunk.n) sb_add(&r->chunk, "\n", 1);
  sb_add(&r->chunk, line, len);
  if (r->chunk.n > TR_REPL_MAX_CHUNK) {
    sb_free(&r->chunk);
    emitf(r, TR_REPL_ERR, "input too long (more than %u bytes): dropped", TR_REPL_MAX_CHUNK);
    return;
  }
  if (incomplete(LUA(h), r->chunk.p, r->chunk.n)) return;
  eval_chunk(r);
}

/* After a line: the next typed-ahead line, or the prompt. */
static void next_line(tr_repl *r) {
  while (!r->busy && r->qhead < r->qn) {
    char *l = r->queue[r->qhead++];
    run_line(r, l, strlen(l));
    free(l);
  }
  if (r->busy) return;
  drop_queue(r);
  if (r->chunk.n) emit(r, TR_REPL_PROMPT, TR_REPL_PROMPT2, strlen(TR_REPL_PROMPT2));
  else emit(r, TR_REPL_PROMPT, TR_REPL_PROMPT1, strlen(TR_REPL_PROMPT1));
}

int tr__repl_input(tr_repl *r, const char *line, size_t len) {
  if (!r) return TR_EINVAL;
  if (len > TR_REPL_MAX_LINE) {
    emitf(r, TR_REPL_ERR, "line too long (more than %u bytes): dropped", TR_REPL_MAX_LINE);
    if (!r->busy) next_line(r);
    return TR_EINVAL;
  }
  tr_sched *s = &r->h->sched[0];
  if (r->busy || r->qhead < r->qn) {
    if (r->qn - r->qhead >= TR_REPL_MAX_QUEUE) return TR_EFULL;
    char **q = realloc(r->queue, (r->qn + 1) * sizeof *q);
    char *copy = malloc(len + 1);
    if (!q || !copy) {
      free(copy);
      if (q) r->queue = q;
      return TR_ENOMEM;
    }
    r->queue = q;
    memcpy(copy, line, len);
    copy[len] = 0;
    r->queue[r->qn++] = copy;
    return 0;
  }
  s->in_callback++;
  run_line(r, line, len);
  if (!r->busy) next_line(r);
  s->in_callback--;
  return 0;
}

void tr__repl_interrupt(tr_repl *r) {
  if (!r) return;
  drop_queue(r);
  if (r->busy == BUSY_EVAL) {
    r->interrupting = 1;
    if (r->actor != TR_NOADDR) tr_kill(r->h, r->actor); /* its call answers: interrupted */
    return;
  }
  if (r->busy == BUSY_STATE) {
    r->busy = BUSY_NONE; /* the late answer is ignored */
    emit(r, TR_REPL_ERR, "interrupted", 11);
  } else if (r->busy == BUSY_RELOAD) {
    r->busy = BUSY_NONE;
    emit(r, TR_REPL_ERR, "interrupted: actors not reloaded yet keep the old code", 54);
    reload_end(r->reload, 1);
  } else {
    sb_free(&r->chunk);
    tr_repl_host *rh = r->h->repl;
    int traced = 0;
    for (size_t i = 0; rh && i < rh->ntraces; i++)
      if (rh->traces[i].sid == r->sid) traced = 1;
    if (traced) {
      untrace_all(r);
      emit(r, TR_REPL_OUT, "tracing stopped", 15);
    }
  }
  next_line(r);
}

/* From a signal handler (the terminal's SIGINT): a line running on the loop
 * thread right now raises "interrupted" at its next instruction. */
void tr__repl_signal(tr_repl *r) {
  if (!r) return;
  g_sig_repl = r;
  lua_State *co = (lua_State *)r->eval_co;
  if (co) lua_sethook(co, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void tr__repl_set_signal_session(tr_repl *r) { g_sig_repl = r; }

int tr__repl_complete(tr_repl *r, const char *text, size_t len, tr_repl_cand_fn add, void *ud) {
  tr_host *h = r->h;
  lua_State *L = LUA(h);
  int top = lua_gettop(L);
  push_mod(h, L);
  lua_getfield(L, -1, "complete");
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->env_ref);
  lua_pushlstring(L, text, len);
  lua_newtable(L);
  int i = 0;
  for (const command *c = commands; c->name; c++) {
    lua_pushstring(L, c->name);
    lua_rawseti(L, -2, ++i);
  }
  tr_sched *s = &h->sched[0];
  s->in_callback++;
  int rc = lua_pcall(L, 3, 1, 0);
  s->in_callback--;
  if (rc != LUA_OK || !lua_istable(L, -1)) {
    lua_settop(L, top);
    return 0;
  }
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer k = 1; k <= n && k <= 500; k++) {
    lua_rawgeti(L, -1, k);
    size_t wl;
    const char *w = lua_tolstring(L, -1, &wl);
    if (w) add(ud, w, wl);
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  return (int)n;
}

void tr__repl_host_free(tr_host *h) {
  tr_repl_host *rh = h->repl;
  if (!rh) return;
  tr__control_close_all(h);
  while (rh->sessions) tr__repl_free(rh->sessions);
  if (tr__tracer(h) == trace_fn) tr__set_tracer(h, rh->prev_trace_fn, rh->prev_trace_ud);
  if (LUA(h)) luaL_unref(LUA(h), LUA_REGISTRYINDEX, rh->mod_ref);
  free(rh->traces);
  free(rh->mods); /* the other states' modules go with those states */
  h->repl = NULL;
  free(rh);
}
