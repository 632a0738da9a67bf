-- Backpressure: a bounded public lane; a Lua sender to a full mailbox waits
-- until there is room, in order; try_send / nowait refuse instead.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local Sink = troupe.behaviour("Sink", {
  pause = function(self, ms) troupe.sleep(ms) end,
  put = function(self, v)
    self.got = self.got or {}
    self.got[#self.got + 1] = v
  end,
  got = function(self) return self.got or {} end,
  count = function(self) return #(self.got or {}) end,
  echo = function(self, v) return v end,
})

local Producer = troupe.behaviour("Producer", {
  run = function(self, sink, from, to)
    local t0 = troupe.now()
    local results = {}
    for i = from, to do
      local ok, e = sink:send("put", i)
      results[#results + 1] = ok and true or e.code
    end
    self.done = true
    return troupe.now() - t0, results
  end,
  run_calls = function(self, sink, from, to)
    local r = {}
    for i = from, to do r[#r + 1] = sink:call("echo", i) end
    return r
  end,
  done = function(self) return self.done end,
})

local wait_until = helpers.wait_until

describe("backpressure", function()
  it("the default mailbox size is 1024", function()
    assert.equals(1024, troupe.DEFAULT_MAILBOX)
    local s = troupe.spawn(Sink)
    for i = 1, 1024 do assert.is_true(s:try_send("put", i)) end
    local ok, e = s:try_send("put", 1025)
    assert.is_nil(ok)
    assert.equals("full", e.code)
    assert.equals(1024, s:call("count"))
  end)

  it("a Lua sender inside an actor waits for room and resumes, order kept", function()
    local sink = troupe.spawn_with({ mailbox = 2 }, Sink)
    local prod = troupe.spawn(Producer)
    sink:send("pause", 40) -- the sink is busy for 40 ms
    local waited, results = prod:call("run", sink, 1, 20)
    assert.is_true(waited >= 25, "the producer did not wait (" .. waited .. " ms)")
    for i = 1, 20 do assert.is_true(results[i]) end
    local got = sink:call("got")
    local want = {}
    for i = 1, 20 do want[i] = i end
    assert.same(want, got)
  end)

  it("while the sender waits, the mailbox stays full and others are refused", function()
    local sink = troupe.spawn_with({ mailbox = 3 }, Sink)
    local prod = troupe.spawn(Producer)
    sink:send("pause", 60)
    prod:send("run", sink, 1, 10)
    troupe.sleep(15) -- the producer is now blocked on the full mailbox
    local ok, e = sink:try_send("put", "intruder")
    assert.is_nil(ok)
    assert.equals("full", e.code)
    assert.is_true(wait_until(function() return sink:call("count") == 10 end))
    local want = {}
    for i = 1, 10 do want[i] = i end
    assert.same(want, sink:call("got"))
    assert.is_true(prod:call("done"))
  end)

  it("two waiting senders are both served, each in its own order", function()
    local sink = troupe.spawn_with({ mailbox = 1 }, Sink)
    local p1 = troupe.spawn(Producer)
    local p2 = troupe.spawn(Producer)
    sink:send("pause", 20)
    p1:send("run", sink, 1, 10)
    p2:send("run", sink, 101, 110)
    assert.is_true(wait_until(function() return sink:call("count") == 20 end))
    local got = sink:call("got")
    local a, b = {}, {}
    for _, v in ipairs(got) do
      if v < 100 then a[#a + 1] = v else b[#b + 1] = v end
    end
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, a)
    assert.same({ 101, 102, 103, 104, 105, 106, 107, 108, 109, 110 }, b)
  end)

  it("a sender waiting on a mailbox whose actor dies gets nil, dead", function()
    local sink = troupe.spawn_with({ mailbox = 1 }, Sink)
    local prod = troupe.spawn({
      run = function(self, s)
        self.r = {}
        for i = 1, 5 do
          local ok, e = s:send("put", i)
          self.r[i] = ok and "ok" or e.code
          if not ok then break end
        end
      end,
      result = function(self) return self.r end,
    })
    sink:send("pause", 1000)
    prod:send("run", sink)
    troupe.sleep(10)
    sink:kill()
    local r = prod:call("result")
    assert.equals("ok", r[1])
    assert.equals("dead", r[#r])
  end)

  it("main code waits for room too (send from outside any actor)", function()
    local sink = troupe.spawn_with({ mailbox = 2 }, Sink)
    sink:send("pause", 20)
    for i = 1, 10 do assert.is_true(sink:send("put", i)) end
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sink:call("got"))
  end)

  it("main code calls wait for room too", function()
    local sink = troupe.spawn_with({ mailbox = 1 }, Sink)
    sink:send("pause", 20)
    assert.equals("x", sink:call("echo", "x"))
  end)

  it("a call inside an actor waits for room, then for the reply", function()
    local sink = troupe.spawn_with({ mailbox = 1 }, Sink)
    local prod = troupe.spawn(Producer)
    sink:send("pause", 30)
    sink:send("put", "filler") -- the mailbox is full now
    local r = prod:call("run_calls", sink, 1, 5)
    assert.same({ 1, 2, 3, 4, 5 }, r)
  end)

  it("a call waiting for room still times out", function()
    local sink = troupe.spawn_with({ mailbox = 1 }, Sink)
    local caller = troupe.spawn({
      go = function(self, s)
        local t0 = troupe.now()
        local ok, e = pcall(s.call_with, s, { timeout = 40 }, "echo", 1)
        return ok, e and e.code, troupe.now() - t0
      end,
      hi = function() return "hi" end,
    })
    sink:send("pause", 300)
    sink:send("put", "filler")
    local ok, code, dt = caller:call("go", sink)
    assert.is_false(ok)
    assert.equals("timeout", code)
    assert.is_true(dt < 250, "timed out after " .. dt .. " ms")
    -- the caller is free again
    assert.equals("hi", caller:call("hi"))
  end)

  it("a private-lane timer message is not limited by the mailbox", function()
    local s = troupe.spawn_with({ mailbox = 1 }, {
      start = function(self)
        for i = 1, 5 do troupe.send_after(1, "tick", i) end
      end,
      tick = function(self, i) self.n = (self.n or 0) + 1 end,
      n = function(self) return self.n end,
    })
    s:call("start")
    troupe.sleep(20)
    assert.equals(5, s:call("n"))
  end)
end)
