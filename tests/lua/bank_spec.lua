-- The seed scenario, run against the Lua Account and the C Account alike.
local troupe = require "troupe"
local src = os.getenv("TROUPE_SOURCE_DIR") or "."
local so = os.getenv("TROUPE_BANK_SO") or "build/bank_account.so"

local implementations = {
  { "Lua", function() return src .. "/examples/account.lua" end },
  { "C", function() return troupe.load_c(so).Account end },
}

for _, impl in ipairs(implementations) do
  local lang, behaviour = impl[1], impl[2]
  describe("the bank account (" .. lang .. ")", function()
    it("runs the seed scenario", function()
      local acct = troupe.spawn(behaviour(), 50)
      assert.equals(30, acct:call("withdraw", 20))
      assert.equals(70, acct:call("deposit", 40))
      local v, err = acct:call("withdraw", 100)
      assert.is_nil(v)
      assert.same({ reason = "insufficient funds", requested = 100, available = 70 }, err)
      local copy = acct
      assert.equals(60, copy:call("withdraw", 10))
      assert.equals(50, acct:call("withdraw", 10))
      assert.equals(50, acct:call("balance"))
    end)

    it("keeps a handler's own error apart from a system error", function()
      local acct = troupe.spawn(behaviour(), 5)
      local v, err = acct:call("withdraw", 10)
      assert.is_nil(v)
      assert.is_false(troupe.is_error(err))
      local ok, e = pcall(acct.call, acct, "nope")
      assert.is_false(ok)
      assert.is_true(troupe.is_error(e))
      assert.equals("no_handler", e.code)
      assert.matches("no handler 'nope'", e.message)
      -- the actor survives an unknown method
      assert.equals(5, acct:call("balance"))
    end)

    it("prints its address with the behaviour name", function()
      local acct = troupe.spawn(behaviour(), 1)
      assert.matches("^<actor %d+ Account>$", tostring(acct))
    end)
  end)
end
