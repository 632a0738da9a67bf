-- Coroutines inside handlers: a handler's own coroutines (coroutine.wrap,
-- coroutine.resume) may wait (call, sleep, room, troupe.yield) and are
-- preempted like the handler itself; their own yields behave as in Lua.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local wait_until = helpers.wait_until
local raised = helpers.syserr

local Echo = troupe.behaviour("CoEcho", {
  ping = function() return "pong" end,
  inc = function(self, x) return x + 1 end,
  slow = function(self, x, ms) troupe.sleep(ms); return x * 10 end,
  note = function(self, x) self.seen = self.seen or {}; self.seen[#self.seen + 1] = x end,
  seen = function(self) return self.seen or {} end,
})

local progress = {}
local Nest = troupe.behaviour("CoNest", {
  ping = function() return "pong" end,
  -- a busy loop two coroutines down
  spin_wrap = function(self, key)
    coroutine.wrap(function()
      coroutine.wrap(function()
        while true do progress[key] = (progress[key] or 0) + 1 end
      end)()
    end)()
  end,
  spin_resume = function(self, key)
    local co = coroutine.create(function() while true do progress[key] = (progress[key] or 0) + 1 end end)
    return coroutine.resume(co)
  end,
  -- a generator that calls another actor for each value it yields
  gen_calls = function(self, echo, n)
    local out = {}
    for v in coroutine.wrap(function()
      for i = 1, n do coroutine.yield(echo:call("inc", i)) end
    end) do out[#out + 1] = v end
    return out
  end,
  -- three levels down, a call, a sleep and troupe.yield between user yields
  deep = function(self, echo)
    local log = {}
    local l3 = coroutine.create(function(a)
      log[#log + 1] = "l3 got " .. a
      local r = echo:call("slow", a, 5)
      troupe.yield()
      troupe.sleep(1)
      local b = coroutine.yield(r)
      return "l3 done " .. b
    end)
    local l2 = coroutine.wrap(function()
      local ok, r = coroutine.resume(l3, 4)
      log[#log + 1] = "l2 first " .. tostring(ok) .. " " .. tostring(r)
      local ok2, r2 = coroutine.resume(l3, "x")
      log[#log + 1] = "l2 second " .. tostring(ok2) .. " " .. tostring(r2)
      log[#log + 1] = coroutine.status(l3)
      return "l2 done"
    end)
    local co1 = coroutine.create(function() return l2() end)
    local ok, r = coroutine.resume(co1)
    log[#log + 1] = "top " .. tostring(ok) .. " " .. tostring(r)
    return log
  end,
  -- sends more than the target's mailbox holds, from a coroutine
  flood = function(self, target, n)
    coroutine.wrap(function()
      for i = 1, n do
        local ok, err = target:send("note", i)
        if not ok then error("send failed: " .. tostring(err)) end
      end
    end)()
    return n
  end,
  -- a comparator is a C call boundary: a wait below it cannot go up
  sort_call = function(self, echo)
    local t = { 3, 1, 2 }
    local ok, err = pcall(table.sort, t, function(x, y)
      return coroutine.wrap(function() return echo:call("inc", x) < echo:call("inc", y) end)()
    end)
    return ok, tostring(err)
  end,
  sort_sleep = function(self)
    local ok, err = pcall(table.sort, { 2, 1 }, function(x, y)
      local co = coroutine.create(function() troupe.sleep(1); return x < y end)
      local okr, r = coroutine.resume(co)
      if not okr then error(r, 0) end
      return r
    end)
    return ok, tostring(err)
  end,
  -- shutdown waits too; troupe.yield has nothing to give way from there
  sort_shutdown_yield = function(self, echo)
    local ok, err = pcall(table.sort, { 2, 1 }, function(x, y) return echo:shutdown(100) and x < y end)
    local yielded = false
    table.sort({ 2, 1 }, function(x, y) troupe.yield(); yielded = true; return x < y end)
    return ok, tostring(err), yielded
  end,
  sort_call_top = function(self, echo)
    local ok, err = pcall(table.sort, { 3, 1, 2 }, function(x, y) return echo:call("inc", x) < y end)
    return ok, tostring(err)
  end,
  -- a send that would wait for room, below a C call: reported, not waited for
  sort_send = function(self, target)
    local results = {}
    table.sort({ 2, 1 }, function(x, y)
      for i = 1, 3 do
        local ok, err = target:send("note", i)
        results[#results + 1] = ok and "ok" or err.code
      end
      return x < y
    end)
    return results
  end,
  crash_inside = function(self)
    return coroutine.wrap(function() local t = nil; return t.field end)()
  end,
})

describe("coroutines inside handlers", function()
  it("a busy loop in a nested coroutine.wrap is preempted: others are served", function()
    local spinner = troupe.spawn(Nest)
    local other = troupe.spawn(Nest)
    spinner:send("spin_wrap", "w")
    assert.is_true(wait_until(function() return (progress.w or 0) > 0 end))
    for _ = 1, 10 do assert.equals("pong", other:call_with({ timeout = 5000 }, "ping")) end
    local before = progress.w
    assert.is_true(wait_until(function() return progress.w > before end),
      "the spinner makes progress between the others' turns")
    assert.is_true(spinner:alive())
    assert.equals("killed", spinner:shutdown(50))
    assert.is_false(spinner:alive())
  end)

  it("a busy loop in a coroutine.resume is preempted too, and kill stops it", function()
    local spinner = troupe.spawn(Nest)
    spinner:send("spin_resume", "r")
    assert.is_true(wait_until(function() return (progress.r or 0) > 0 end))
    assert.equals("pong", troupe.spawn(Nest):call_with({ timeout = 5000 }, "ping"))
    spinner:kill()
    assert.is_true(wait_until(function() return not spinner:alive() end))
    local after = progress.r
    troupe.sleep(20)
    assert.equals(after, progress.r, "a killed spinner runs no more")
  end)

  it("cpu_limit ends a handler spinning in a nested coroutine", function()
    local a = troupe.spawn_with({ cpu_limit = 50 }, Nest)
    assert.equals("pong", a:call("ping"))
    local e = raised(a.call_with, a, { timeout = 10000 }, "spin_wrap", "c")
    assert.equals("dead", e.code)
    assert.matches("(timeout)", e.message, 1, true)
    assert.is_false(a:alive())
  end)

  it("a generator may call other actors between its yields", function()
    local echo, a = troupe.spawn(Echo), troupe.spawn(Nest)
    assert.same({ 2, 3, 4, 5, 6 }, a:call("gen_calls", echo, 5))
    -- and many at once, interleaved
    local results = {}
    for i = 1, 8 do
      troupe.spawn({ go = function() results[i] = a:call("gen_calls", echo, 3) end }):send("go")
    end
    assert.is_true(wait_until(function()
      for i = 1, 8 do if not results[i] then return false end end
      return true
    end))
    for i = 1, 8 do assert.same({ 2, 3, 4 }, results[i]) end
  end)

  it("waits three coroutines down reach the scheduler; user yields stay the code's", function()
    local echo, a = troupe.spawn(Echo), troupe.spawn(Nest)
    assert.same({
      "l3 got 4",
      "l2 first true 40",
      "l2 second true l3 done x",
      "dead",
      "top true l2 done",
    }, a:call("deep", echo))
  end)

  it("a send from a coroutine waits for room in a full mailbox; nothing is lost", function()
    local target = troupe.spawn_with({ mailbox = 4 }, Echo)
    local a = troupe.spawn(Nest)
    assert.equals(50, a:call("flood", target, 50))
    local seen = target:call("seen")
    assert.equals(50, #seen)
    for i = 1, 50 do assert.equals(i, seen[i]) end
  end)

  it("a wait below a C call boundary is refused with a clear error; the actor goes on", function()
    local echo, a = troupe.spawn(Echo), troupe.spawn(Nest)
    local ok, err = a:call("sort_call", echo)
    assert.is_false(ok)
    assert.matches("troupe.call cannot wait here", err, 1, true)
    ok, err = a:call("sort_sleep")
    assert.is_false(ok)
    assert.matches("troupe.sleep cannot wait here", err, 1, true)
    local yielded
    ok, err, yielded = a:call("sort_shutdown_yield", echo)
    assert.is_false(ok)
    assert.matches("troupe.shutdown cannot wait here", err, 1, true)
    assert.is_true(yielded)
    assert.is_true(echo:alive(), "a refused shutdown stopped nothing")
    ok, err = a:call("sort_call_top", echo)
    assert.is_false(ok)
    assert.matches("troupe.call cannot wait here", err, 1, true)
    assert.equals("pong", a:call("ping"))
    assert.same({ 2, 3 }, a:call("gen_calls", echo, 2))
    -- a full mailbox below a C call: nil, full (the first send fits)
    local target = troupe.spawn_with({ mailbox = 1 }, Echo)
    target:send("slow", 1, 200) -- busy: what comes next stays in its mailbox
    troupe.sleep(10)
    assert.same({ "ok", "full", "full" }, a:call("sort_send", target))
    assert.same({ 1 }, target:call("seen"))
  end)

  it("an error inside a wrapped coroutine crashes the handler with its position", function()
    local a = troupe.spawn(Nest)
    local e = raised(a.call, a, "crash_inside")
    assert.equals("crashed", e.code)
    -- (Lua's wrap adds its caller's position to the coroutine's error)
    assert.matches("coroutines_spec.lua:%d+: .*coroutines_spec.lua:%d+: attempt to index a nil value", e.message)
  end)

  it("coroutine.resume and wrap behave as Lua's for the code's own yields and errors", function()
    local Plain = {
      run = function()
        local out = {}
        local co = coroutine.create(function(a, b)
          local c = coroutine.yield(a + b, "y")
          error({ code = c })
        end)
        local r = table.pack(coroutine.resume(co, 1, 2))
        out.first = { r.n, r[1], r[2], r[3] }
        out.status1 = coroutine.status(co)
        local ok, e = coroutine.resume(co, 7)
        out.err_is_table = (not ok) and type(e) == "table" and e.code == 7
        out.dead = table.pack(coroutine.resume(co))
        out.notthread = pcall(coroutine.resume, 42)
        local g = coroutine.wrap(function() error("boom") end)
        local okw, ew = pcall(g)
        out.wrap_err = { okw, ew }
        local closed = false
        local h = coroutine.wrap(function()
          local _ <close> = setmetatable({}, { __close = function() closed = true end })
          coroutine.yield(1)
          error("after")
        end)
        out.h1 = h()
        out.h2 = pcall(h)
        out.closed = closed
        out.h3 = { pcall(h) }
        out.yieldable = coroutine.wrap(function() return coroutine.isyieldable() end)()
        return out
      end,
    }
    local out = troupe.spawn(Plain):call("run")
    assert.same({ 3, true, 3, "y" }, out.first)
    assert.equals("suspended", out.status1)
    assert.is_true(out.err_is_table)
    assert.same({ n = 2, false, "cannot resume dead coroutine" }, out.dead)
    assert.is_false(out.notthread)
    assert.is_false(out.wrap_err[1])
    assert.matches("coroutines_spec.lua:%d+: boom$", out.wrap_err[2])
    assert.equals(1, out.h1)
    assert.is_false(out.h2)
    assert.is_true(out.closed)
    assert.is_false(out.h3[1])
    assert.matches("cannot resume dead coroutine", out.h3[2], 1, true)
    assert.is_true(out.yieldable)
  end)

  it("main code's coroutines keep working (a call from one blocks as before)", function()
    local echo = troupe.spawn(Echo)
    local got = coroutine.wrap(function() return echo:call("inc", 41) end)()
    assert.equals(42, got)
    local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
    assert.same({ 1, 2, 3 }, { gen(), gen(), gen() })
  end)
end)
