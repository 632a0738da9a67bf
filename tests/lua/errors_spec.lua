-- System errors: every code provoked and asserted, and kept apart from a
-- handler's own error value.
local troupe = require "troupe"
local helpers = require "spec_helpers"

-- pcall a function and return the raised error value (asserting it raised).
local raised = helpers.raised

local function assert_syserr(e, code)
  assert.is_true(troupe.is_error(e), "not a system error: " .. tostring(e))
  assert.equals(code, e.code)
  assert.equals(code, troupe.errcode(e))
  assert.is_string(e.message)
end

local Echo = troupe.behaviour("Echo", {
  echo = function(self, ...) return ... end,
  count = function(self) return self.n or 0 end,
  bump = function(self) self.n = (self.n or 0) + 1 end,
  nap = function(self, ms) troupe.sleep(ms); return "rested" end,
  boom = function(self, msg) error(msg or "boom") end,
  boom_table = function(self) error({ not_a = "string" }) end,
  boom_tostring = function(self)
    error(setmetatable({}, { __tostring = function() return "custom error text" end }))
  end,
  own = function(self, v) return troupe.fail(v) end,
  own_raised = function(self, v)
    local function deep() error(troupe.fail(v)) end
    deep()
  end,
})

describe("system errors", function()
  it("the error values print as 'code: message'", function()
    local a = troupe.spawn(Echo)
    a:kill()
    local e = raised(a.call, a, "echo")
    assert.matches("^dead: ", tostring(e))
  end)

  describe("dead", function()
    it("a call to a killed actor raises dead", function()
      local a = troupe.spawn(Echo)
      assert.equals(1, a:call("echo", 1))
      assert.is_true(a:kill())
      assert.is_false(a:alive())
      local e = raised(a.call, a, "echo", 1)
      assert_syserr(e, "dead")
      assert.matches("not alive", e.message)
    end)

    it("a send to a stopped actor returns nil, dead", function()
      local a = troupe.spawn(Echo)
      a:stop()
      troupe.sleep(5)
      assert.is_false(a:alive())
      local ok, e = a:send("bump")
      assert.is_nil(ok)
      assert_syserr(e, "dead")
      local ok2, e2 = a:try_send("bump")
      assert.is_nil(ok2)
      assert_syserr(e2, "dead")
    end)

    it("stop and kill of a dead actor return false", function()
      local a = troupe.spawn(Echo)
      a:kill()
      assert.is_false(a:stop())
      assert.is_false(a:kill())
    end)

    it("tostring of a dead address says dead", function()
      local a = troupe.spawn(Echo)
      assert.matches("^<actor %d+ Echo>$", tostring(a))
      a:kill()
      assert.matches("^<actor %d+ dead>$", tostring(a))
    end)
  end)

  describe("timeout", function()
    it("call_with a short timeout raises timeout", function()
      local a = troupe.spawn(Echo)
      local t0 = troupe.now()
      local e = raised(a.call_with, a, { timeout = 50 }, "nap", 400)
      local dt = troupe.now() - t0
      assert_syserr(e, "timeout")
      assert.matches("timed out", e.message)
      assert.is_true(dt >= 45 and dt < 350, "timed out after " .. dt .. " ms")
    end)

    it("the actor survives a timed-out call and the late reply is dropped", function()
      local a = troupe.spawn(Echo)
      raised(a.call_with, a, { timeout = 20 }, "nap", 60)
      troupe.sleep(80) -- the late reply arrives now and must go nowhere
      assert.is_true(a:alive())
      assert.equals("fresh", a:call("echo", "fresh"))
      assert.equals("rested", a:call_with({ timeout = 1000 }, "nap", 1))
    end)
  end)

  describe("crashed", function()
    it("carries the handler's message and a traceback", function()
      local a = troupe.spawn(Echo)
      local e = raised(a.call, a, "boom", "kaboom!")
      assert_syserr(e, "crashed")
      assert.matches("kaboom!", e.message, 1, true)
      assert.is_string(e.traceback)
      assert.matches("stack traceback", e.traceback)
      -- the crashed actor is gone
      assert.is_false(a:alive())
      assert_syserr(raised(a.call, a, "echo"), "dead")
    end)

    it("a non-string error object is described", function()
      local a = troupe.spawn(Echo)
      local e = raised(a.call, a, "boom_table")
      assert_syserr(e, "crashed")
      assert.matches("table", e.message)
      local b = troupe.spawn(Echo)
      local e2 = raised(b.call, b, "boom_tostring")
      assert_syserr(e2, "crashed")
      assert.matches("custom error text", e2.message, 1, true)
    end)

    it("a crash during a send kills the actor too", function()
      local a = troupe.spawn(Echo)
      a:send("boom")
      troupe.sleep(5)
      assert.is_false(a:alive())
    end)

    it("a crashing init kills the actor; queued calls get dead", function()
      local a = troupe.spawn({ init = function(self) error("bad init") end,
                               echo = function(self, v) return v end })
      local e = raised(a.call, a, "echo", 1)
      assert_syserr(e, "dead") -- the call itself did not crash: its callee died first
      assert.is_false(a:alive())
    end)
  end)

  describe("no_handler", function()
    it("is raised for an unknown method and the actor survives", function()
      local a = troupe.spawn(Echo)
      a:send("bump")
      local e = raised(a.call, a, "nope")
      assert_syserr(e, "no_handler")
      assert.matches("no handler 'nope'", e.message, 1, true)
      assert.is_true(a:alive())
      assert.equals(1, a:call("count"))
    end)

    it("the hooks are not callable as methods", function()
      local a = troupe.spawn({ init = function(self) self.i = (self.i or 0) + 1 end,
                               on_start = function() end,
                               get = function(self) return self.i end })
      for _, m in ipairs({ "init", "on_start", "on_stopping", "on_stopped" }) do
        assert_syserr(raised(a.call, a, m), "no_handler")
      end
      assert.equals(1, a:call("get"))
    end)

    it("a field that is not a function is no handler", function()
      local a = troupe.spawn({ data = 42, get = function() return 1 end })
      assert_syserr(raised(a.call, a, "data"), "no_handler")
      assert.equals(1, a:call("get"))
    end)

    it("an unknown sent method is dropped and the actor survives", function()
      local a = troupe.spawn(Echo)
      assert.is_true(a:send("nope"))
      a:send("bump")
      assert.equals(1, a:call("count"))
    end)
  end)

  describe("full", function()
    it("try_send returns nil, full when the mailbox is full", function()
      local a = troupe.spawn_with({ mailbox = 2 }, Echo)
      assert.is_true(a:try_send("bump"))
      assert.is_true(a:try_send("bump"))
      local ok, e = a:try_send("bump")
      assert.is_nil(ok)
      assert_syserr(e, "full")
      -- nothing was lost or added: the two accepted messages arrive
      assert.equals(2, a:call("count"))
    end)

    it("call_with nowait raises full when the mailbox is full", function()
      local a = troupe.spawn_with({ mailbox = 1 }, Echo)
      assert.is_true(a:try_send("bump"))
      local e = raised(a.call_with, a, { nowait = true }, "count")
      assert_syserr(e, "full")
      -- with room, nowait calls work
      assert.equals(1, a:call("count"))
      assert.equals(1, a:call_with({ nowait = true }, "count"))
    end)

    it("try_send inside an actor returns full without waiting", function()
      local sink = troupe.spawn_with({ mailbox = 1 }, Echo)
      local probe = troupe.spawn({
        go = function(self, s)
          local r = {}
          for i = 1, 3 do
            local ok, e = s:try_send("bump")
            r[i] = ok and "ok" or e.code
          end
          return r
        end,
      })
      assert.same({ "ok", "full", "full" }, probe:call("go", sink))
      assert.equals(1, sink:call("count"))
    end)

    it("call_with nowait inside an actor raises full", function()
      local sink = troupe.spawn_with({ mailbox = 1 }, Echo)
      local probe = troupe.spawn({
        go = function(self, s)
          s:try_send("bump")
          local ok, e = pcall(s.call_with, s, { nowait = true }, "count")
          return ok, e.code
        end,
      })
      local ok, code = probe:call("go", sink)
      assert.is_false(ok)
      assert.equals("full", code)
    end)
  end)

  describe("bad_value", function()
    it("names the path of a function inside an argument", function()
      local a = troupe.spawn(Echo)
      local e = raised(a.send, a, "bump", 1, { cb = function() end })
      assert_syserr(e, "bad_value")
      assert.equals("arg 2 .cb: function cannot be sent", e.message)
      local e2 = raised(a.call, a, "echo", 1, { cb = print })
      assert_syserr(e2, "bad_value")
      assert.equals("arg 2 .cb: function cannot be sent", e2.message)
      -- nothing was delivered
      assert.equals(0, a:call("count"))
    end)

    it("names nested paths with indices and fields", function()
      local a = troupe.spawn(Echo)
      local e = raised(a.call, a, "echo", { list = { 1, 2, { f = coroutine.create(print) } } })
      assert_syserr(e, "bad_value")
      assert.equals("arg 1 .list[3] .f: thread cannot be sent", e.message)
    end)

    it("try_send and call_with refuse as well, and spawn args too", function()
      local a = troupe.spawn(Echo)
      assert_syserr(raised(a.try_send, a, "bump", print), "bad_value")
      assert_syserr(raised(a.call_with, a, { timeout = 100 }, "echo", print), "bad_value")
      local e = raised(troupe.spawn, Echo, 1, print)
      assert_syserr(e, "bad_value")
      assert.matches("spawn arg 2", e.message, 1, true)
      assert.equals(0, a:call("count"))
    end)

    it("a reply value that cannot be sent fails the call, not the actor", function()
      local a = troupe.spawn({ give = function() return 1, function() end end,
                               ok = function() return "ok" end })
      local e = raised(a.call, a, "give")
      assert_syserr(e, "bad_value")
      assert.equals("reply value 2: function cannot be sent", e.message)
      assert.equals("ok", a:call("ok"))
    end)

    it("a failure value that cannot be sent fails the call", function()
      local a = troupe.spawn({ give = function() return troupe.fail({ f = print }) end,
                               ok = function() return "ok" end })
      local e = raised(a.call, a, "give")
      assert_syserr(e, "bad_value")
      assert.matches("failure value 1 .f: function cannot be sent", e.message, 1, true)
      assert.equals("ok", a:call("ok"))
    end)
  end)

  describe("deadlock", function()
    it("a self-call raises deadlock naming the cycle", function()
      local a = troupe.spawn(troupe.behaviour("Selfish", {
        go = function(self)
          local ok, e = pcall(function() return troupe.self():call("go") end)
          return ok, e.code, e.message
        end,
      }))
      local ok, code, msg = a:call("go")
      assert.is_false(ok)
      assert.equals("deadlock", code)
      local id = tostring(a:id())
      assert.equals("call cycle: <actor " .. id .. " Selfish> -> <actor " .. id .. " Selfish>", msg)
    end)
  end)

  describe("the handler's own error", function()
    it("return troupe.fail(v) gives nil, v and the actor keeps its state", function()
      local a = troupe.spawn(Echo)
      a:send("bump")
      local v, err = a:call("own", { reason = "no" })
      assert.is_nil(v)
      assert.same({ reason = "no" }, err)
      assert.is_false(troupe.is_error(err))
      assert.is_nil(troupe.errcode(err))
      assert.equals(1, a:call("count"))
    end)

    it("error(troupe.fail(v)) from deep inside gives nil, v", function()
      local a = troupe.spawn(Echo)
      local v, err = a:call("own_raised", "why")
      assert.is_nil(v)
      assert.equals("why", err)
      assert.is_true(a:alive())
      local v2, err2 = a:call("own_raised", nil)
      assert.is_nil(v2)
      assert.is_nil(err2)
      assert.equals(0, a:call("count"))
    end)

    it("a failing send does not kill the actor", function()
      local a = troupe.spawn(Echo)
      a:send("own_raised", "x")
      a:send("bump")
      assert.equals(1, a:call("count"))
    end)
  end)

  it("is_error is false for ordinary values", function()
    assert.is_false(troupe.is_error(nil))
    assert.is_false(troupe.is_error({ code = "dead", message = "fake" }))
    assert.is_false(troupe.is_error("dead"))
  end)
end)
