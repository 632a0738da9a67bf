-- Timers: messages to self on the private lane.
local troupe = require "troupe"

local Clock = troupe.behaviour("Clock", {
  init = function(self) self.log = {} end,
  tick = function(self, tag) self.log[#self.log + 1] = tag end,
  log = function(self) return self.log end,
  clear = function(self) self.log = {} end,
  after = function(self, list) -- list of {delay, tag}
    for _, d in ipairs(list) do troupe.send_after(d[1], "tick", d[2]) end
  end,
  every = function(self, ms, tag)
    self.timer = troupe.send_every(ms, "tick", tag)
  end,
  cancel = function(self) return self.timer:cancel() end,
  at = function(self, offset, tag)
    troupe.send_at(troupe.now() + offset, "tick", tag)
  end,
  mixed = function(self) -- send_at and send_after made at one instant
    local now = troupe.now()
    troupe.send_at(now + 20, "tick", "at20")
    troupe.send_after(10, "tick", "after10")
    troupe.send_after(30, "tick", "after30")
    troupe.send_at(now - 50, "tick", "past") -- a past time fires at once
  end,
  count_cancelled = function(self, ms)
    local t = troupe.send_after(ms, "tick", "should not fire")
    return t:cancel(), t:cancel()
  end,
  every_n = function(self, ms, n)
    self.left = n
    self.timer = troupe.send_every(ms, "countdown")
  end,
  countdown = function(self)
    self.log[#self.log + 1] = troupe.now()
    self.left = self.left - 1
    if self.left == 0 then self.timer:cancel() end
  end,
  args = function(self)
    troupe.send_after(1, "got_args", 1, 2.5, "three", { four = 4 }, nil, true)
  end,
  got_args = function(self, ...)
    self.args = { n = select("#", ...), ... }
  end,
  get_args = function(self) return self.args end,
  sender_of_timer = function(self)
    troupe.send_after(1, "who")
  end,
  who = function(self)
    local s = troupe.sender()
    self.who = s and (s == troupe.self()) or "none"
  end,
  get_who = function(self) return self.who end,
})

local function wait_for(a, n, ms)
  local deadline = troupe.now() + (ms or 2000)
  while #a:call("log") < n and troupe.now() < deadline do troupe.sleep(2) end
  return a:call("log")
end

describe("timers", function()
  it("send_after with different delays fire in deadline order", function()
    local c = troupe.spawn(Clock)
    c:call("after", { { 30, "c" }, { 10, "a" }, { 20, "b" }, { 0, "zero" }, { 40, "d" } })
    assert.same({ "zero", "a", "b", "c", "d" }, wait_for(c, 5))
  end)

  it("the same deadline fires in creation order", function()
    local c = troupe.spawn(Clock)
    local list = {}
    for i = 1, 20 do list[i] = { 15, i } end
    c:call("after", list)
    local want = {}
    for i = 1, 20 do want[i] = i end
    assert.same(want, wait_for(c, 20))
  end)

  it("timers do not fire early", function()
    local c = troupe.spawn(Clock)
    local t0 = troupe.now()
    c:call("after", { { 300, "x" } })
    troupe.sleep(10) -- (a loaded machine may stretch this; 300 ms leaves room)
    assert.same({}, c:call("log"))
    wait_for(c, 1)
    assert.is_true(troupe.now() - t0 >= 299)
  end)

  it("send_every repeats until cancelled", function()
    local c = troupe.spawn(Clock)
    c:call("every", 5, "tick")
    local log = wait_for(c, 4)
    assert.is_true(#log >= 4)
    assert.is_true(c:call("cancel"))
    local n = #c:call("log")
    troupe.sleep(30)
    assert.equals(n, #c:call("log"), "ticks after cancel")
    -- cancelling again reports false
    assert.is_false(c:call("cancel"))
  end)

  it("send_every keeps its period", function()
    local c = troupe.spawn(Clock)
    local t0 = troupe.now()
    c:call("every_n", 10, 5)
    local log = wait_for(c, 5)
    troupe.sleep(30)
    log = c:call("log")
    assert.equals(5, #log, "cancelled from inside its own tick")
    -- tick i is due 10*i ms after the start: never early (late is allowed,
    -- a loaded loop delays handlers), and in order
    for i = 1, 5 do
      assert.is_true(log[i] - t0 >= 10 * i - 1, "tick " .. i .. " early")
      if i > 1 then assert.is_true(log[i] >= log[i - 1]) end
    end
  end)

  it("a cancelled send_after never fires", function()
    local c = troupe.spawn(Clock)
    local first, second = c:call("count_cancelled", 5)
    assert.is_true(first)
    assert.is_false(second)
    troupe.sleep(20)
    assert.same({}, c:call("log"))
  end)

  it("send_at fires at the given time, in order with send_after", function()
    local c = troupe.spawn(Clock)
    c:call("mixed")
    assert.same({ "past", "after10", "at20", "after30" }, wait_for(c, 4))
  end)

  it("timer messages carry their arguments", function()
    local c = troupe.spawn(Clock)
    c:call("args")
    troupe.sleep(10)
    assert.same({ n = 6, 1, 2.5, "three", { four = 4 }, nil, true }, c:call("get_args"))
  end)

  it("a timer message comes from the actor itself", function()
    local c = troupe.spawn(Clock)
    c:call("sender_of_timer")
    troupe.sleep(10)
    assert.is_true(c:call("get_who"))
  end)

  it("an actor's timers die with it", function()
    local fired = 0
    local c = troupe.spawn({
      start = function(self) troupe.send_every(2, "tick") end,
      tick = function(self) fired = fired + 1 end,
    })
    c:call("start")
    troupe.sleep(10)
    assert.is_true(fired > 0)
    c:kill()
    local n = fired
    troupe.sleep(15)
    assert.equals(n, fired)
  end)

  it("timers are refused outside an actor and with bad times", function()
    assert.has_error(function() troupe.send_after(10, "x") end)
    assert.has_error(function() troupe.send_every(10, "x") end)
    local c = troupe.spawn({
      bad = function(self)
        local r = {}
        r[1] = pcall(troupe.send_after, -1, "x")
        r[2] = pcall(troupe.send_every, 0, "x")
        r[3] = pcall(troupe.send_after, 1, "x", print)
        return r
      end,
    })
    assert.same({ false, false, false }, c:call("bad"))
  end)

  it("troupe.now() advances with sleep", function()
    local t0 = troupe.now()
    assert.equals("integer", math.type(t0))
    troupe.sleep(20)
    assert.is_true(troupe.now() - t0 >= 19)
  end)

  it("sleep inside a handler suspends only that actor", function()
    local sleeper = troupe.spawn({ nap = function(self, ms) troupe.sleep(ms); return "woke" end })
    local other = troupe.spawn({ hi = function() return "hi" end })
    sleeper:send("nap", 2000)
    local t0 = troupe.now()
    assert.equals("hi", other:call("hi"))
    assert.is_true(troupe.now() - t0 < 1500) -- answered while the sleeper sleeps
    assert.is_true(sleeper:alive())
    sleeper:kill()
  end)
end)
