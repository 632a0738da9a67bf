/* The Account behaviour written in C. Built as a loadable library
 * (bank_account.so) exporting `troupe_behaviours`, so Lua can spawn it:
 *     local lib = troupe.load_c("build/bank_account.so")
 *     local acct = troupe.spawn(lib.Account, 50)
 * The library links no troupe library: tr_* resolve against the host. */
#include <troupe.h>

typedef struct {
  int64_t balance;
} account;

static int positive_amount(tr_ctx *ctx, const tr_msg *args, int64_t *amount) {
  if (tr_msg_int(args, 0, amount) || *amount <= 0)
    return tr_ctx_error(ctx, TR_EBADVALUE, "%s needs a positive integer", tr_ctx_method(ctx));
  return 0;
}

static int account_init(tr_ctx *ctx, const tr_msg *args) {
  account *a = tr_ctx_state(ctx);
  if (tr_msg_type(args, 0) == TR_T_NONE) return 0;
  if (tr_msg_int(args, 0, &a->balance))
    return tr_ctx_error(ctx, TR_EBADVALUE, "opening balance must be an integer");
  return 0;
}

static int deposit(tr_ctx *ctx, const tr_msg *args) {
  account *a = tr_ctx_state(ctx);
  int64_t amount;
  int rc = positive_amount(ctx, args, &amount);
  if (rc) return rc;
  a->balance += amount;
  return tr_pack_int(tr_ctx_reply(ctx), a->balance);
}

static int withdraw(tr_ctx *ctx, const tr_msg *args) {
  account *a = tr_ctx_state(ctx);
  int64_t amount;
  int rc = positive_amount(ctx, args, &amount);
  if (rc) return rc;
  if (amount > a->balance) {
    tr_pack_fmt(tr_ctx_fail(ctx), "{s s s I s I}", "reason", "insufficient funds", "requested",
                amount, "available", a->balance);
    return TR_FAILED;
  }
  a->balance -= amount;
  return tr_pack_int(tr_ctx_reply(ctx), a->balance);
}

static int balance(tr_ctx *ctx, const tr_msg *args) {
  account *a = tr_ctx_state(ctx);
  return tr_pack_int(tr_ctx_reply(ctx), a->balance);
}

static const tr_method account_methods[] = {
    {"deposit", deposit}, {"withdraw", withdraw}, {"balance", balance}, {NULL, NULL}};

const tr_behaviour account_behaviour = {
    .name = "Account",
    .state_size = sizeof(account),
    .init = account_init,
    .methods = account_methods,
};

TR_EXTERN const tr_behaviour *const troupe_behaviours[] = {&account_behaviour, NULL};
