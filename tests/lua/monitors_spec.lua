-- Monitors: monitor/demonitor, noproc, every death reason a watcher can see
-- (normal, stopped, killed, crashed, out_of_memory, timeout, linked_exit,
-- noproc), graceful stops with shutdown, and troupe.memory.
local troupe = require "troupe"
local helpers = require "spec_helpers"

-- Polls (running the loop) until pred() is true or `ms` have gone by.
local wait_until = helpers.wait_until

local raised = helpers.raised

local downs = {} -- every on_down any Watcher received, in order

local Watcher = troupe.behaviour("Watcher", {
  watch = function(self, a) return troupe.monitor(a) end,
  unwatch = function(self, ref) return troupe.demonitor(ref) end,
  nap = function(self, ms) troupe.sleep(ms) end,
  note = function(self, x) downs[#downs + 1] = { note = x } end,
  ping = function() return "pong" end,
  try_monitor = function(self, v)
    local ok, e = pcall(troupe.monitor, v)
    return ok, tostring(e)
  end,
  on_down = function(self, ref, who, reason, detail)
    downs[#downs + 1] = { ref = ref, who = who, reason = reason, detail = detail,
                          me = troupe.self() }
  end,
})

local Target = troupe.behaviour("Target", {
  ping = function() return "pong" end,
  quit = function() troupe.stop(); return "bye" end,
  boom = function() error("bang") end,
  nap = function(self, ms) troupe.sleep(ms); return "rested" end,
  spin = function() while true do end end,
  hog = function(self)
    local t = {}
    for i = 1, 10000000 do t[i] = { i } end
    return #t
  end,
  link = function(self, a) return troupe.link(a) end,
  work = function(self, ms) -- busy for about ms of CPU, then answer
    local t0 = os.clock()
    local x = 0
    while os.clock() - t0 < ms / 1000 do x = x + 1 end
    return "done"
  end,
})

local function fresh() for k in pairs(downs) do downs[k] = nil end end

-- Monitors `target` from a new watcher; returns the watcher and the ref.
local function watched(target)
  local w = troupe.spawn(Watcher)
  local ref = w:call("watch", target)
  return w, ref
end

local function down_for(ref)
  for _, d in ipairs(downs) do if d.ref == ref then return d end end
end

local function await_down(ref)
  assert.is_true(wait_until(function() return down_for(ref) ~= nil end),
                 "no on_down for ref " .. tostring(ref))
  return down_for(ref)
end

describe("monitors", function()
  before_each(fresh)

  it("monitor returns an integer ref; on_down gets ref, address, reason, detail", function()
    local t = troupe.spawn(Target)
    local w, ref = watched(t)
    assert.equals("integer", math.type(ref))
    t:stop()
    local d = await_down(ref)
    assert.is_true(d.who == t)
    assert.is_true(d.me == w)
    assert.equals("stopped", d.reason)
    assert.is_nil(d.detail)
    assert.is_true(w:alive()) -- a monitor never takes the watcher down
    assert.equals("pong", w:call("ping"))
  end)

  describe("reasons", function()
    it("normal: the actor stopped itself", function()
      local t = troupe.spawn(Target)
      local _, ref = watched(t)
      assert.equals("bye", t:call("quit"))
      local d = await_down(ref)
      assert.equals("normal", d.reason)
      assert.is_nil(d.detail)
    end)

    it("stopped: stopped by another (stop and shutdown)", function()
      local t1, t2 = troupe.spawn(Target), troupe.spawn(Target)
      local _, r1 = watched(t1)
      local _, r2 = watched(t2)
      assert.is_true(t1:stop())
      assert.equals("stopped", t2:shutdown(1000))
      assert.equals("stopped", await_down(r1).reason)
      assert.equals("stopped", await_down(r2).reason)
    end)

    it("killed", function()
      local t = troupe.spawn(Target)
      local _, ref = watched(t)
      assert.is_true(t:kill())
      local d = await_down(ref)
      assert.equals("killed", d.reason)
      assert.is_nil(d.detail)
    end)

    it("crashed, with the message and traceback", function()
      local t = troupe.spawn(Target)
      local _, ref = watched(t)
      local e = raised(t.call, t, "boom")
      assert.equals("crashed", e.code)
      local d = await_down(ref)
      assert.equals("crashed", d.reason)
      assert.is_table(d.detail)
      assert.matches("bang", d.detail.message)
      assert.matches("stack traceback", d.detail.traceback)
    end)

    it("crashed in init", function()
      local t = troupe.spawn({ init = function() troupe.sleep(20); error("bad start") end })
      local _, ref = watched(t)
      local d = await_down(ref)
      assert.equals("crashed", d.reason)
      assert.matches("bad start", d.detail.message)
    end)

    it("out_of_memory: past its max_memory; the caller gets dead, the host goes on", function()
      local t = troupe.spawn_with({ max_memory = 2 * 1024 * 1024 }, Target)
      assert.equals("pong", t:call("ping"))
      local _, ref = watched(t)
      local e = raised(t.call, t, "hog")
      assert.equals("dead", e.code)
      assert.matches("out_of_memory", e.message)
      local d = await_down(ref)
      assert.equals("out_of_memory", d.reason)
      assert.matches("memory limit", d.detail.message)
      assert.is_false(t:alive())
      local other = troupe.spawn(Target)
      assert.equals("pong", other:call("ping"))
    end)

    it("timeout: one message over its cpu_limit", function()
      local t = troupe.spawn_with({ cpu_limit = 50 }, Target)
      local _, ref = watched(t)
      local e = raised(t.call_with, t, { timeout = 10000 }, "spin")
      assert.equals("dead", e.code)
      assert.matches("timeout", e.message)
      local d = await_down(ref)
      assert.equals("timeout", d.reason)
      assert.matches("CPU limit", d.detail.message)
    end)

    it("the cpu_limit is per message and does not count sleeping", function()
      local t = troupe.spawn_with({ cpu_limit = 50 }, Target)
      assert.equals("rested", t:call("nap", 120))
      for _ = 1, 20 do assert.equals("done", t:call("work", 4)) end
      assert.is_true(t:alive())
    end)

    it("linked_exit, naming the peer", function()
      local a, b = troupe.spawn(Target), troupe.spawn(Target)
      assert.is_true(a:call("link", b))
      local _, ref = watched(a)
      pcall(b.call, b, "boom")
      local d = await_down(ref)
      assert.equals("linked_exit", d.reason)
      assert.matches("linked actor <actor " .. b:id(), d.detail.message, 1, true)
      assert.matches("crashed", d.detail.message)
    end)

    it("noproc: monitoring an actor that is already gone", function()
      local t = troupe.spawn(Target)
      t:kill()
      local _, ref = watched(t)
      local d = await_down(ref)
      assert.equals("noproc", d.reason)
      assert.is_nil(d.detail)
      assert.is_true(d.who == t)
    end)
  end)

  it("demonitor cancels: no on_down for that ref; a second demonitor is false", function()
    local t = troupe.spawn(Target)
    local w = troupe.spawn(Watcher)
    local r1 = w:call("watch", t)
    local r2 = w:call("watch", t)
    assert.is_true(r1 ~= r2)
    assert.is_true(w:call("unwatch", r1))
    assert.is_false(w:call("unwatch", r1))
    assert.is_false(w:call("unwatch", 987654321))
    t:kill()
    await_down(r2) -- r2 was delivered, so r1 would have been too
    assert.is_nil(down_for(r1))
    assert.equals(1, #downs)
  end)

  it("several watchers each get their own on_down", function()
    local t = troupe.spawn(Target)
    local refs = {}
    for i = 1, 5 do local _, r = watched(t); refs[i] = r end
    pcall(t.call, t, "boom")
    for i = 1, 5 do assert.equals("crashed", await_down(refs[i]).reason) end
    assert.equals(5, #downs)
  end)

  it("on_down comes on the private lane: before queued public mail", function()
    local t = troupe.spawn(Target)
    local w, ref = watched(t)
    w:send("nap", 30)
    w:send("note", 1)
    w:send("note", 2)
    t:kill()
    assert.is_true(wait_until(function() return #downs == 3 end))
    assert.equals(ref, downs[1].ref)
    assert.equals(1, downs[2].note)
    assert.equals(2, downs[3].note)
  end)

  it("a watcher without on_down drops the notice quietly and lives on", function()
    local t = troupe.spawn(Target)
    local w = troupe.spawn({ watch = function(self, a) return troupe.monitor(a) end,
                             ping = function() return "pong" end })
    w:call("watch", t)
    t:kill()
    troupe.sleep(5)
    assert.equals("pong", w:call("ping"))
  end)

  it("a watcher that dies first is simply gone; the target lives on", function()
    local t = troupe.spawn(Target)
    local w = watched(t)
    w:kill()
    assert.equals("pong", t:call("ping"))
    t:kill()
    troupe.sleep(5)
    assert.equals(0, #downs)
  end)

  it("monitors held by a dying watcher are released (the target can die later)", function()
    local t = troupe.spawn(Target)
    local w, ref = watched(t)
    pcall(w.call, w, "no_such_method") -- no_handler: it survives
    w:kill()
    t:kill()
    troupe.sleep(5)
    assert.is_nil(down_for(ref))
  end)

  it("misuse: outside a handler, or a non-address, raises", function()
    local t = troupe.spawn(Target)
    local ok, e = pcall(troupe.monitor, t)
    assert.is_false(ok)
    assert.matches("handler", tostring(e))
    local w = troupe.spawn(Watcher)
    local ok2, e2 = w:call("try_monitor", "not an address")
    assert.is_false(ok2)
    assert.matches("troupe address", e2)
    assert.is_true(w:alive())
    assert.has_error(function() troupe.demonitor("x") end)
  end)
end)

describe("graceful stop", function()
  before_each(fresh)

  it("shutdown returns the reason; noproc for an actor already gone", function()
    local t = troupe.spawn(Target)
    assert.equals("stopped", t:shutdown())
    assert.is_false(t:alive())
    assert.equals("noproc", t:shutdown(100))
  end)

  it("a vetoed shutdown returns nil, 'vetoed' and the actor lives", function()
    local t = troupe.spawn({ on_stopping = function() return false end,
                             ping = function() return "pong" end })
    local r, why = t:shutdown(500)
    assert.is_nil(r)
    assert.equals("vetoed", why)
    assert.equals("pong", t:call("ping"))
    t:kill()
  end)

  it("past the timeout the actor is killed and shutdown returns killed", function()
    local stopped = false
    local t = troupe.spawn({ on_stopping = function() troupe.sleep(5000) end,
                             on_stopped = function() stopped = true end })
    local _, ref = watched(t)
    local t0 = troupe.now()
    assert.equals("killed", t:shutdown(50))
    assert.is_true(troupe.now() - t0 < 3000)
    assert.is_false(t:alive())
    assert.equals("killed", await_down(ref).reason)
    assert.is_false(stopped)
  end)

  it("on_stopping and on_stopped run in the actor's coroutine: they may call and sleep", function()
    local log = {}
    local helper = troupe.spawn(Target)
    local t = troupe.spawn({
      on_stopping = function(self)
        log[#log + 1] = helper:call("ping")
        troupe.sleep(10)
        log[#log + 1] = "slept"
      end,
      on_stopped = function(self)
        log[#log + 1] = helper:call("nap", 5)
        log[#log + 1] = tostring(troupe.self() ~= nil)
      end,
    })
    assert.equals("stopped", t:shutdown(2000))
    assert.same({ "pong", "slept", "rested", "true" }, log)
  end)

  it("shutdown from inside an actor waits for the outcome", function()
    local victim = troupe.spawn({ on_stopping = function() troupe.sleep(10) end })
    local boss = troupe.spawn({ fire = function(self, a) return a:shutdown(1000) end })
    assert.equals("stopped", boss:call("fire", victim))
    assert.is_false(victim:alive())
  end)

  it("shutdown of an actor that stops itself meanwhile reports its own reason", function()
    local t = troupe.spawn(Target)
    t:send("quit")
    local r = t:shutdown(1000)
    assert.is_true(r == "normal" or r == "stopped" or r == "noproc", tostring(r))
  end)

  it("bad timeouts are refused", function()
    local t = troupe.spawn(Target)
    assert.has_error(function() t:shutdown(0) end)
    assert.has_error(function() t:shutdown(-5) end)
    assert.has_error(function() t:shutdown("soon") end)
    assert.is_true(t:alive())
    t:kill()
  end)
end)

describe("troupe.memory", function()
  it("counts an actor's growth; without an actor, the host's total", function()
    local total = troupe.memory()
    assert.equals("integer", math.type(total))
    assert.is_true(total > 0)
    local a = troupe.spawn({
      grow = function(self) self.big = {}; for i = 1, 100000 do self.big[i] = i end end,
      mine = function(self) return troupe.memory() end,
    })
    a:call("grow")
    assert.is_true(troupe.memory(a) >= 100000 * 8, tostring(troupe.memory(a)))
    local inside = a:call("mine")
    assert.is_true(math.abs(inside - troupe.memory(a)) < 65536)
    a:kill()
  end)
end)
