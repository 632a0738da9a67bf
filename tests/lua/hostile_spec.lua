-- Hostile behaviours and waits: a handler's error object whose __tostring
-- raises, a behaviour table whose __index raises, a stale room wait, sleeps
-- longer than any clock.
local troupe = require "troupe"
local helpers = require "spec_helpers"
local wait_until, syserr = helpers.wait_until, helpers.syserr

describe("hostile behaviours", function()
  it("an error object whose __tostring raises crashes only its actor", function()
    local a = troupe.spawn({
      ping = function() return "pong" end,
      bad = function()
        error(setmetatable({}, { __tostring = function() error("tostring exploded") end }))
      end,
      worse = function()
        error(setmetatable({}, { __tostring = function() return {} end }))
      end,
    })
    local e = syserr(a.call, a, "bad")
    assert.equals("crashed", e.code)
    assert.is_false(a:alive())
    local b = troupe.spawn({
      worse = function()
        error(setmetatable({}, { __tostring = function() return {} end }))
      end,
    })
    e = syserr(b.call, b, "worse")
    assert.equals("crashed", e.code)
    -- the host is still usable from main code
    local c = troupe.spawn({ ping = function() return "pong" end })
    assert.equals("pong", c:call("ping"))
  end)

  it("a behaviour table whose __index raises refuses that message only", function()
    local B = setmetatable({ ping = function() return "pong" end }, {
      __index = function(t, k)
        if k == "explode" then error("index exploded") end
        return nil
      end,
    })
    local a = troupe.spawn(B)
    assert.equals("pong", a:call("ping"))
    local e = syserr(a.call, a, "explode")
    assert.is_true(e.code == "crashed" or e.code == "no_handler", e.code)
    -- the host is still usable from main code
    local c = troupe.spawn({ ping = function() return "pong" end })
    assert.equals("pong", c:call("ping"))
    assert.equals("pong", c:call("ping"))
  end)

  it("a behaviour with an inherited handler (__index table) still works", function()
    local Base = { hello = function() return "hi" end }
    local a = troupe.spawn(setmetatable({}, { __index = Base }))
    assert.equals("hi", a:call("hello"))
  end)
end)

describe("waits", function()
  it("a sender waiting for room is not woken by a stale room wait elsewhere", function()
    local Sink = {
      busy = function() troupe.sleep(100000) end,
      x = function() end,
    }
    local t1 = troupe.spawn_with({ mailbox = 1 }, Sink)
    local t2 = troupe.spawn_with({ mailbox = 1 }, Sink)
    local Log = {
      put = function(self, k, v) self[k] = v end,
      get = function(self, k) return self[k] end,
    }
    local log = troupe.spawn(Log)
    local S = troupe.spawn({
      run = function(self, a, b, l)
        local ok, e = pcall(a.call_with, a, { timeout = 30 }, "x")
        l:send("put", "call", (not ok) and e.code or "answered")
        local sent, err = b:send("x") -- waits for room in b
        l:send("put", "send", sent and "sent" or err.code)
      end,
    })
    -- both busy (sleeping in a handler), both mailboxes full
    t1:send("busy"); t2:send("busy")
    troupe.sleep(10)
    assert.is_true(t1:try_send("x")); assert.is_true(t2:try_send("x"))
    S:send("run", t1, t2, log)
    assert.is_true(wait_until(function() return log:call("get", "call") ~= nil end))
    assert.equals("timeout", log:call("get", "call"))
    troupe.sleep(10)
    assert.is_nil(log:call("get", "send")) -- still waiting for room in t2
    t1:kill() -- its stale room wait (the timed-out call) must not wake S
    troupe.sleep(20)
    assert.is_nil(log:call("get", "send"))
    t2:kill() -- now S's send fails for real
    assert.is_true(wait_until(function() return log:call("get", "send") ~= nil end))
    assert.equals("dead", log:call("get", "send"))
  end)

  it("sleep(math.huge) in a handler sleeps (it does not wake at once)", function()
    local Log = {
      put = function(self, k, v) self[k] = v end,
      get = function(self, k) return self[k] end,
    }
    local log = troupe.spawn(Log)
    local a = troupe.spawn({
      nap = function(self, l)
        troupe.sleep(math.huge)
        l:send("put", "woke", true)
      end,
    })
    a:send("nap", log)
    troupe.sleep(30)
    assert.is_nil(log:call("get", "woke"))
    assert.is_true(a:alive())
    a:kill()
  end)

  it("send_at(math.huge) arms a timer that never comes (no undefined conversion)", function()
    local a = troupe.spawn({
      arm = function(self)
        local t = troupe.send_at(math.huge, "tick")
        return t:cancel()
      end,
      tick = function() end,
    })
    assert.is_true(a:call("arm"))
  end)
end)
