-- Lua <-> C interop through the C Account behaviour (examples/bank.c).
local troupe = require "troupe"
local helpers = require "spec_helpers"
local so = os.getenv("TROUPE_BANK_SO") or "build/bank_account.so"

local raised = helpers.syserr

describe("Lua and C actors", function()
  local lib, Account
  setup(function()
    lib = troupe.load_c(so)
    Account = lib.Account
  end)

  it("load_c lists the behaviours; troupe.behaviour finds them by name", function()
    assert.is_not_nil(Account)
    assert.matches("Account", tostring(Account))
    local b = troupe.behaviour("Account")
    local acct = troupe.spawn(b, 7)
    assert.equals(7, acct:call("balance"))
    -- loading again is harmless
    assert.is_not_nil(troupe.load_c(so).Account)
    local ok, e = pcall(troupe.behaviour, "NoSuchBehaviour")
    assert.is_false(ok)
    assert.equals("not_found", e.code)
    local ok2, e2 = pcall(troupe.load_c, "/nonexistent/lib.so")
    assert.is_false(ok2)
    assert.equals("not_found", e2.code)
  end)

  it("main code calls a C actor; own errors and system errors are kept apart", function()
    local acct = troupe.spawn(Account, 100)
    assert.matches("^<actor %d+ Account>$", tostring(acct))
    assert.equals(150, acct:call("deposit", 50))
    local v, err = acct:call("withdraw", 1000)
    assert.is_nil(v)
    assert.same({ reason = "insufficient funds", requested = 1000, available = 150 }, err)
    local e = raised(acct.call, acct, "withdraw", "lots")
    assert.equals("bad_value", e.code)
    assert.equals("withdraw needs a positive integer", e.message)
    local e2 = raised(acct.call, acct, "steal")
    assert.equals("no_handler", e2.code)
    assert.matches("no handler 'steal'", e2.message, 1, true)
    assert.equals(150, acct:call("balance"))
  end)

  it("64-bit balances cross the boundary intact", function()
    local big = math.maxinteger - 10
    local acct = troupe.spawn(Account, big)
    assert.equals(big, acct:call("balance"))
    assert.equals(math.maxinteger, acct:call("deposit", 10))
    assert.equals("integer", math.type(acct:call("balance")))
  end)

  it("a float where C wants an integer is refused, not truncated", function()
    local acct = troupe.spawn(Account, 10)
    local e = raised(acct.call, acct, "deposit", 1.5)
    assert.equals("bad_value", e.code)
    assert.equals(10, acct:call("balance"))
  end)

  it("a Lua actor calls a C actor and hands its address around", function()
    local acct = troupe.spawn(Account, 10)
    local teller = troupe.spawn({
      transfer = function(self, from, to, n)
        local ok, err = from:call("withdraw", n)
        if not ok then return troupe.fail(err) end
        to:call("deposit", n)
        return from:call("balance"), to:call("balance")
      end,
      nested_error = function(self, a)
        local ok, e = pcall(a.call, a, "nope")
        return e.code
      end,
    })
    local other = troupe.spawn(Account, 0)
    local a, b = teller:call("transfer", acct, other, 4)
    assert.equals(6, a)
    assert.equals(4, b)
    local v, err = teller:call("transfer", acct, other, 100)
    assert.is_nil(v)
    assert.equals("insufficient funds", err.reason)
    assert.equals("no_handler", teller:call("nested_error", acct))
  end)

  it("C actors and Lua actors run the same script", function()
    local LuaAccount = troupe.behaviour("Account", {
      init = function(self, b) self.balance = b or 0 end,
      deposit = function(self, n) self.balance = self.balance + n; return self.balance end,
      balance = function(self) return self.balance end,
    })
    for _, beh in ipairs({ Account, LuaAccount }) do
      local acct = troupe.spawn(beh, 1)
      for i = 1, 100 do acct:send("deposit", i) end
      assert.equals(1 + 5050, acct:call("balance"))
      assert.matches("^<actor %d+ Account>$", tostring(acct))
    end
  end)

  it("a C actor with a bad opening balance dies in init; calls get dead", function()
    local acct = troupe.spawn(Account, "not a number")
    local e = raised(acct.call, acct, "balance")
    assert.equals("dead", e.code)
    assert.is_false(acct:alive())
  end)

  it("C actors: names, stop, kill, stale address, full mailbox", function()
    local acct = troupe.spawn_with({ name = "c-bank", mailbox = 2 }, Account, 5)
    assert.is_true(troupe.whereis("c-bank") == acct)
    assert.matches('"c%-bank"', tostring(acct))
    assert.is_true(acct:try_send("deposit", 1))
    assert.is_true(acct:try_send("deposit", 1))
    local ok, e = acct:try_send("deposit", 1)
    assert.is_nil(ok)
    assert.equals("full", e.code)
    assert.equals(7, acct:call("balance"))
    acct:stop()
    troupe.sleep(2)
    assert.is_false(acct:alive())
    assert.is_nil(troupe.whereis("c-bank"))
    assert.equals("dead", raised(acct.call, acct, "balance").code)
    local k = troupe.spawn(Account, 1)
    k:kill()
    assert.equals("dead", raised(k.call, k, "balance").code)
  end)

  it("a Lua caller waits for room in a full C actor's mailbox", function()
    local acct = troupe.spawn_with({ mailbox = 1 }, Account, 0)
    local pauser = troupe.spawn({
      flood = function(self, a, n)
        for i = 1, n do assert(a:send("deposit", 1)) end
        return a:call("balance")
      end,
    })
    assert.equals(200, pauser:call("flood", acct, 200))
  end)

  it("a Lua sleep inside a handler does not block a C actor", function()
    local acct = troupe.spawn(Account, 3)
    local sleeper = troupe.spawn({ nap = function() troupe.sleep(2000) end })
    sleeper:send("nap")
    local t0 = troupe.now()
    assert.equals(3, acct:call("balance"))
    assert.is_true(troupe.now() - t0 < 1500) -- answered while the sleeper sleeps
    sleeper:kill()
  end)
end)
