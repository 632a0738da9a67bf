-- The canonical demo: a bank account actor.
--   troupe run examples/bank.lua        the Account written in Lua
--   troupe run examples/bank.lua c      the same Account written in C (examples/bank.c)
local troupe = require "troupe"

local here = (arg and arg[0] or ""):match("(.*/)") or "./"
local behaviour
if arg and arg[1] == "c" then
  local lib = troupe.load_c(os.getenv("TROUPE_BANK_SO") or (here .. "../build/bank_account.so"))
  behaviour = lib.Account
else
  behaviour = here .. "account.lua"
end

local function show(label, balance, err)
  if err then
    print(string.format("%s -> error: %s (requested %d, available %d)",
                        label, err.reason, err.requested, err.available))
  else
    print(string.format("%s -> %d", label, balance))
  end
end

local acct = troupe.spawn(behaviour, 50)
print("opened " .. tostring(acct) .. " with 50")
show("withdraw 20", acct:call("withdraw", 20))
show("deposit 40", acct:call("deposit", 40))
show("withdraw 100", acct:call("withdraw", 100))
local copy = acct            -- addresses are values: copy freely
show("copy withdraws 10", copy:call("withdraw", 10))
show("original withdraws 10", acct:call("withdraw", 10))
print("balance " .. acct:call("balance"))
