-- Schedulers: every actor semantic holds across schedulers. Placement
-- (explicit, round-robin from main code, children beside their spawner,
-- inline tables where their Lua state is), calls and their three outcomes,
-- stop/kill and hooks, monitors, links and trap_exit, names, deferred
-- replies, timers, addresses (strong and weak) inside messages, call chains
-- that hop schedulers, many concurrent calls, preemption and cpu_limit,
-- backpressure, C behaviours and supervisors on scheduler 2.
--
-- Runs on a host with two schedulers: tests/CMakeLists.txt sets
-- TROUPE_SCHEDULERS=2 for this spec. Main code runs on scheduler 1. Actors on
-- scheduler 2 live in that scheduler's own Lua state, so their behaviours are
-- source strings or files (fixtures/remote.lua) and capture nothing from this
-- file: what they need comes as arguments or messages, what they observe is
-- fetched with a call. Inline behaviours below (Local) run on scheduler 1 and
-- may record into this file's tables, as the other specs do.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local wait_until = helpers.wait_until
local syserr = helpers.syserr

-- fixtures/ beside this file (busted loads specs with loadfile: "@path")
local function spec_dir()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) == "@" then return src:sub(2):match("^(.*)/[^/]*$") or "." end
  return (os.getenv("TROUPE_SOURCE_DIR") or ".") .. "/tests/lua"
end
local REMOTE = spec_dir() .. "/fixtures/remote.lua"
local BANK_SO = os.getenv("TROUPE_BANK_SO") or "build/bank_account.so"

-- Behaviours as source strings (they contain newlines, so they are code, not
-- names or paths): relocatable to any scheduler.
local ADDER = [[
local troupe = require "troupe"
return {
  _NAME = "Adder",
  init = function(self, base) self.base = base or 0 end,
  add = function(self, x) return self.base + x end,
  where = function(self) return troupe.scheduler(troupe.self()) end,
}
]]

local LINKED = [[
local troupe = require "troupe"
return {
  _NAME = "Linked",
  init = function(self, prev) if prev then troupe.link(prev) end end,
  ping = function() return "pong" end,
  boom = function() error("chain bang") end,
  where = function(self) return troupe.scheduler(troupe.self()) end,
}
]]

-- Each relay notes its scheduler in `path` and calls the next one; the last
-- answers, fails or crashes as asked.
local RELAY = [[
local troupe = require "troupe"
return {
  _NAME = "Relay",
  init = function(self, nxt) self.nxt = nxt end,
  go = function(self, path, mode)
    path[#path + 1] = troupe.scheduler(troupe.self())
    if self.nxt then return self.nxt:call("go", path, mode) end
    if mode == "fail" then return troupe.fail({ why = "end of line", path = path }) end
    if mode == "crash" then error("deep boom") end
    return path
  end,
}
]]

local BAD_INIT = [[
return {
  init = function(self) error("remote init failed") end,
  echo = function(self, v) return v end,
}
]]

-- ---- scheduler 1 side: an inline behaviour that records into these tables
local downs = {} -- every on_down a Local received, in order
local exits = {} -- every on_exit a Local received, in order
local log = {}   -- every note a Local received, in order
local fired = 0  -- ticks forwarded to a Local
local function clear(t) for k in pairs(t) do t[k] = nil end end

local Local = troupe.behaviour("Local", {
  init = function(self, tag) self.tag = tag; self.n = 0; self.flag = false end,
  where = function(self) return troupe.scheduler(troupe.self()) end,
  tag = function(self) return self.tag end,
  ping = function() return "pong" end,
  echo = function(self, ...) return ... end,
  sender = function() return troupe.sender() end,
  bump = function(self) self.n = self.n + 1 end,
  count = function(self) return self.n end,
  nap = function(self, ms, v) troupe.sleep(ms); return v end,
  boom = function(self, msg) error(msg or "bang") end,
  own = function(self, v) return troupe.fail(v) end,
  quit = function() troupe.stop(); return "bye" end,
  set = function(self) self.flag = true end,
  is_set = function(self) return self.flag end,
  note = function(self, text) log[#log + 1] = text end,
  tick = function() fired = fired + 1 end,
  call = function(self, target, method, ...) return target:call(method, ...) end,
  send_to = function(self, target, method, ...)
    local ok, e = target:send(method, ...)
    if ok then return true end
    return nil, e.code
  end,
  -- calls b, which calls back: a cycle across schedulers
  ask_back = function(self, b)
    return b:call("try_call", troupe.self(), { timeout = 3000 }, "ping")
  end,
  lookup = function(self, name) return troupe.whereis(name) end,
  spawn_child = function(self, opts, beh, ...)
    local c = troupe.spawn_with(opts or {}, beh, ...)
    return c, troupe.scheduler(c)
  end,
  kill_later = function(self, target, ms) troupe.sleep(ms); target:kill() end,
  watch = function(self, a) return troupe.monitor(a) end,
  unwatch = function(self, ref) return troupe.demonitor(ref) end,
  link = function(self, a) return troupe.link(a) end,
  unlink = function(self, a) return troupe.unlink(a) end,
  trap = function(self, on) return troupe.trap_exit(on) end,
  on_down = function(self, ref, who, reason, detail)
    downs[#downs + 1] = { ref = ref, who = who, reason = reason, detail = detail,
                          me = troupe.self() }
  end,
  on_exit = function(self, who, reason, detail)
    exits[#exits + 1] = { me = troupe.self(), who = who, reason = reason, detail = detail }
  end,
})

-- ---- helpers
local function on(k, beh, ...) return troupe.spawn_with({ scheduler = k }, beh, ...) end

-- A Remote (fixtures/remote.lua) on scheduler 2.
local function remote(...)
  local a = on(2, REMOTE, ...)
  assert.equals(2, troupe.scheduler(a), "not placed on scheduler 2")
  return a
end

local function dead(a, ms) return wait_until(function() return not a:alive() end, ms) end

-- Polls a:call(method) until the list it returns has n entries.
local function await_list(a, method, n, ms)
  local list
  local ok = wait_until(function() list = a:call(method); return #list >= n end, ms)
  assert.is_true(ok, method .. ": wanted " .. n .. " entries, got " .. (list and #list or "none"))
  return list
end

-- A watcher on scheduler 1 (its on_down goes to `downs`).
local function watched(target)
  local w = troupe.spawn(Local)
  return w, w:call("watch", target)
end
local function down_for(ref)
  for _, d in ipairs(downs) do if d.ref == ref then return d end end
end
local function await_down(ref)
  assert.is_true(wait_until(function() return down_for(ref) ~= nil end),
                 "no on_down for ref " .. tostring(ref))
  return down_for(ref)
end

-- The id of an address as printed ("12"; the format for another scheduler's
-- actors is the core's choice): messages that name an actor name it this way.
local function idtext(a) return (tostring(a):match("^<%a+ ([^%s>]+)")) end

local function seq(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

describe("schedulers", function()
  before_each(function()
    clear(downs)
    clear(exits)
    clear(log)
  end)

  describe("placement", function()
    it("the host has two schedulers and main code runs on the first", function()
      assert.is_function(troupe.schedulers, "this core has no troupe.schedulers()")
      assert.equals(2, troupe.schedulers())
      local a = troupe.spawn(Local)
      assert.equals(1, troupe.scheduler(a))
      assert.equals("integer", math.type(troupe.scheduler(a)))
      assert.equals(1, a:call("where")) -- the actor agrees
    end)

    it("spawn_with{scheduler = k} places a source string or a file on k", function()
      assert.is_truthy(ADDER:find("\n", 1, true)) -- code, not a name
      local s2 = on(2, ADDER, 10)
      assert.equals(2, troupe.scheduler(s2))
      assert.equals(2, s2:call("where"))
      assert.equals(15, s2:call("add", 5))
      local s1 = on(1, ADDER, 20)
      assert.equals(1, troupe.scheduler(s1))
      assert.equals(1, s1:call("where"))
      assert.equals(25, s1:call("add", 5))
      local f2 = on(2, REMOTE, "f2")
      assert.equals(2, troupe.scheduler(f2))
      assert.equals(2, f2:call("where"))
      assert.equals("f2", f2:call("tag"))
      local f1 = on(1, REMOTE, "f1")
      assert.equals(1, troupe.scheduler(f1))
      assert.equals(1, f1:call("where"))
      assert.equals("f1", f1:call("tag"))
    end)

    it("source strings and files spawned from main code go round-robin", function()
      local s = {}
      for i = 1, 6 do
        local a = troupe.spawn(ADDER, i)
        s[i] = troupe.scheduler(a)
        assert.equals(s[i], a:call("where"))
        assert.equals(i + 1, a:call("add", 1))
      end
      local seen = table.concat(s, ",")
      for i = 2, 6 do
        assert.is_true(s[i] ~= s[i - 1], "consecutive spawns on one scheduler: " .. seen)
      end
      local f1, f2 = troupe.spawn(REMOTE), troupe.spawn(REMOTE)
      assert.is_true(troupe.scheduler(f1) ~= troupe.scheduler(f2))
      assert.equals(troupe.scheduler(f1), f1:call("where"))
      assert.equals(troupe.scheduler(f2), f2:call("where"))
      -- spawn_with without a scheduler is automatic placement too
      local w1 = troupe.spawn_with({ mailbox = 10 }, ADDER)
      local w2 = troupe.spawn_with({ mailbox = 10 }, ADDER)
      assert.is_true(troupe.scheduler(w1) ~= troupe.scheduler(w2))
    end)

    it("inline tables spawned from main code stay on scheduler 1", function()
      for _ = 1, 4 do
        local a = troupe.spawn({ where = function() return troupe.scheduler(troupe.self()) end })
        assert.equals(1, troupe.scheduler(a))
        assert.equals(1, a:call("where"))
      end
      for _ = 1, 2 do assert.equals(1, troupe.scheduler(troupe.spawn(Local))) end
      assert.equals(1, troupe.scheduler(troupe.spawn("Local"))) -- by name: the same table
      local e = on(1, { hi = function() return "hi" end })
      assert.equals(1, troupe.scheduler(e))
      assert.equals("hi", e:call("hi"))
    end)

    it("an actor's children stay on its scheduler, whatever the behaviour", function()
      local p2 = remote()
      for i = 1, 3 do
        local c, k = p2:call("spawn_child", nil, ADDER, i)
        assert.equals(2, k)
        assert.equals(2, troupe.scheduler(c))
        assert.equals(i + 1, c:call("add", 1))
      end
      local f, fk = p2:call("spawn_child", nil, REMOTE, "child")
      assert.equals(2, fk)
      assert.equals(2, f:call("where"))
      local c, k, hi = p2:call("spawn_inline")
      assert.equals(2, k)
      assert.equals(2, troupe.scheduler(c))
      assert.equals("inline hi", hi)

      local p1 = troupe.spawn(Local)
      for i = 1, 3 do
        local c1, k1 = p1:call("spawn_child", nil, ADDER, i)
        assert.equals(1, k1)
        assert.equals(1, troupe.scheduler(c1))
        assert.equals(i + 1, c1:call("add", 1))
      end
      local f1, fk1 = p1:call("spawn_child", nil, REMOTE, "child")
      assert.equals(1, fk1)
      assert.equals(1, f1:call("where"))
    end)

    it("an actor may place a relocatable child on another scheduler explicitly", function()
      local p1 = troupe.spawn(Local)
      local c, k = p1:call("spawn_child", { scheduler = 2 }, ADDER, 7)
      assert.equals(2, k)
      assert.equals(2, troupe.scheduler(c))
      assert.equals(8, c:call("add", 1))
      local p2 = remote()
      local c2, k2 = p2:call("spawn_child", { scheduler = 1 }, REMOTE, "back home")
      assert.equals(1, k2)
      assert.equals(1, troupe.scheduler(c2))
      assert.equals("back home", c2:call("tag"))
      assert.equals(1, c2:call("where"))
    end)

    it("an inline table cannot go to another scheduler: the error names the scheduler", function()
      local ok, e = pcall(troupe.spawn_with, { scheduler = 2 }, { hi = function() end })
      assert.is_false(ok, "an inline table was sent to scheduler 2")
      assert.matches("scheduler", tostring(e))
      ok, e = pcall(troupe.spawn_with, { scheduler = 2 }, Local)
      assert.is_false(ok)
      assert.matches("scheduler", tostring(e))
      -- nothing was spawned: a name asked for stays free
      ok = pcall(troupe.spawn_with, { scheduler = 2, name = "sched_inline" }, Local)
      assert.is_false(ok)
      assert.is_nil(troupe.whereis("sched_inline"))
      -- the same on scheduler 2: its inline tables stay there
      local p2 = remote()
      local ok2, msg = p2:call("spawn_inline_on", 1)
      assert.is_false(ok2)
      assert.matches("scheduler", msg)
      local ok3, k3 = p2:call("spawn_inline_on", 2)
      assert.is_true(ok3)
      assert.equals(2, k3)
      assert.equals(2, p2:call("where")) -- the refusal did not harm the spawner
    end)

    it("an out-of-range or malformed scheduler is refused, from main code and from an actor", function()
      for _, k in ipairs({ 0, 3, -1, 100 }) do
        local ok, e = pcall(troupe.spawn_with, { scheduler = k, name = "sched_bad" }, ADDER)
        assert.is_false(ok, "scheduler " .. k .. " was accepted")
        assert.matches("scheduler", tostring(e))
        assert.is_nil(troupe.whereis("sched_bad"))
      end
      for _, k in ipairs({ 1.5, "two", true, {} }) do
        assert.has_error(function() troupe.spawn_with({ scheduler = k }, ADDER) end)
      end
      local p2 = remote()
      local e = syserr(p2.call, p2, "spawn_child", { scheduler = 3 }, ADDER)
      assert.equals("crashed", e.code) -- unhandled in the handler
      assert.matches("scheduler", e.message)
    end)

    it("troupe.scheduler refuses what is not an address", function()
      assert.is_function(troupe.scheduler, "this core has no troupe.scheduler()")
      assert.equals(2, troupe.scheduler(remote()))
      assert.has_error(function() troupe.scheduler("not an address") end)
      assert.has_error(function() troupe.scheduler({}) end)
      assert.has_error(function() troupe.scheduler(42) end)
    end)

    -- The three ways a behaviour fails to load, each on both schedulers: the
    -- spawner hears of it at spawn, with the same code as on scheduler 1.
    it("a syntax error raises load at spawn on either scheduler, naming the line", function()
      for k = 1, 2 do
        assert.equals(k, troupe.scheduler(on(k, "return {}\n"))) -- the same code, loadable
        local e = syserr(troupe.spawn_with, { scheduler = k, name = "sched_load" },
                         "return {\n  ok = function() return 1 end,\n  bad = function( end\n}")
        assert.equals("load", e.code)
        assert.matches("behaviour:3:", e.message, 1, true)
        assert.is_nil(troupe.whereis("sched_load")) -- nothing was spawned
      end
    end)

    it("a missing file raises not_found at spawn on either scheduler", function()
      for k = 1, 2 do
        assert.equals(k, troupe.scheduler(on(k, REMOTE))) -- a file that exists goes there
        local e = syserr(troupe.spawn_with, { scheduler = k }, "/nonexistent/dir/none.lua")
        assert.equals("not_found", e.code, "on scheduler " .. k)
        assert.matches("none.lua", e.message, 1, true)
      end
    end)

    it("code that raises or returns no table while loading raises load at spawn on either scheduler", function()
      for k = 1, 2 do
        assert.equals(k, troupe.scheduler(on(k, "return {}\n"))) -- code that loads goes there
        local e = syserr(troupe.spawn_with, { scheduler = k }, "error('nope at load')\nreturn {}")
        assert.equals("load", e.code, "on scheduler " .. k)
        assert.matches("nope at load", e.message)
        local e2 = syserr(troupe.spawn_with, { scheduler = k }, "return 42\n")
        assert.equals("load", e2.code, "on scheduler " .. k)
        assert.matches("must return a table", e2.message)
      end
    end)
  end)

  describe("calls from main code to scheduler 2", function()
    it("return every value, nils, integers and floats included", function()
      local r = remote()
      assert.equals(4, select("#", r:call("multi")))
      local a, b, c, d = r:call("multi")
      assert.same({ 1, nil, "three", nil }, { a, b, c, d })
      assert.equals(0, select("#", r:call("none")))
      local v = { 1, 2.5, "s", true, { deep = { x = 1 } }, math.maxinteger, "\0bin\255" }
      assert.same(v, r:call("echo", v))
      assert.equals("integer", math.type(r:call("echo", 3)))
      assert.equals("float", math.type(r:call("echo", 3.0)))
    end)

    it("500 calls in a row each get their own answer", function()
      local r = remote()
      for i = 1, 500 do assert.equals(i * 3, r:call("mul", i, 3)) end
      assert.equals(500, r:call("served"))
    end)

    it("the handler's own failure value is nil, v and the actor keeps its state", function()
      local r = remote()
      r:send("bump")
      local v, err = r:call("own", { reason = "no", n = 1 })
      assert.is_nil(v)
      assert.same({ reason = "no", n = 1 }, err)
      assert.is_false(troupe.is_error(err))
      assert.is_nil(troupe.errcode(err))
      local v2, err2 = r:call("own_raised", "why")
      assert.is_nil(v2)
      assert.equals("why", err2)
      r:send("own_raised", "in a send") -- a failing send does not kill it either
      r:send("bump")
      assert.equals(2, r:call("count"))
      assert.is_true(r:alive())
    end)

    it("crashed carries the remote handler's message and traceback; the actor is gone", function()
      local r = remote()
      local e = syserr(r.call, r, "boom", "kaboom!")
      assert.equals("crashed", e.code)
      assert.equals("crashed", troupe.errcode(e))
      assert.matches("kaboom!", e.message, 1, true)
      assert.is_string(e.traceback)
      assert.matches("stack traceback", e.traceback)
      assert.matches("^crashed: ", tostring(e))
      assert.is_true(dead(r))
      assert.equals("dead", syserr(r.call, r, "tag").code)
    end)

    it("a crashing init on scheduler 2: the first call gets dead", function()
      local a = on(2, BAD_INIT)
      assert.equals(2, troupe.scheduler(a))
      local e = syserr(a.call, a, "echo", 1)
      assert.equals("dead", e.code)
      assert.is_true(dead(a))
    end)

    it("no_handler names the method and the actor survives", function()
      local r = remote()
      r:send("bump")
      local e = syserr(r.call, r, "nope")
      assert.equals("no_handler", e.code)
      assert.matches("no handler 'nope'", e.message, 1, true)
      for _, m in ipairs({ "init", "on_start", "on_stopping", "on_stopped" }) do
        assert.equals("no_handler", syserr(r.call, r, m).code)
      end
      assert.is_true(r:alive())
      assert.equals(1, r:call("count"))
    end)

    it("timeout: a per-call timeout on a slow remote handler; the late reply is dropped", function()
      local r = remote()
      local t0 = troupe.now()
      local e = syserr(r.call_with, r, { timeout = 30 }, "nap", 300, "late")
      local dt = troupe.now() - t0
      assert.equals("timeout", e.code)
      assert.matches("timed out", e.message)
      assert.is_true(dt >= 25 and dt < 250, "timed out after " .. dt .. " ms")
      -- the next call gets its own answer, not the late one
      assert.equals("mine", r:call("nap", 0, "mine"))
      assert.equals(2, r:call("naps"))
      assert.equals("y", r:call_with({ timeout = false }, "nap", 5, "y"))
    end)

    it("bad_value: an argument that cannot be sent is refused, naming its path", function()
      local r = remote()
      local e = syserr(r.send, r, "bump", 1, { cb = function() end })
      assert.equals("bad_value", e.code)
      assert.equals("arg 2 .cb: function cannot be sent", e.message)
      local e2 = syserr(r.call, r, "echo", 1, { cb = print })
      assert.equals("bad_value", e2.code)
      assert.equals("arg 2 .cb: function cannot be sent", e2.message)
      local e3 = syserr(troupe.spawn_with, { scheduler = 2 }, REMOTE, "x", print)
      assert.equals("bad_value", e3.code)
      assert.matches("spawn arg 2", e3.message, 1, true)
      assert.equals(0, r:call("count")) -- nothing was delivered
    end)

    it("bad_value: a remote reply or failure value that cannot be sent fails the call only", function()
      local r = remote("still here")
      local e = syserr(r.call, r, "give_function")
      assert.equals("bad_value", e.code)
      assert.equals("reply value 2: function cannot be sent", e.message)
      local e2 = syserr(r.call, r, "fail_function")
      assert.equals("bad_value", e2.code)
      assert.matches("failure value 1 .f: function cannot be sent", e2.message, 1, true)
      assert.equals("still here", r:call("tag"))
    end)

    it("dead: calls, sends, stop and kill on a dead remote address", function()
      local r = remote()
      assert.equals(1, r:call("echo", 1))
      assert.is_true(r:kill())
      local e = syserr(r.call, r, "echo", 1)
      assert.equals("dead", e.code)
      assert.matches("not alive", e.message)
      assert.matches("^dead: ", tostring(e))
      assert.is_true(dead(r))
      local ok, e2 = r:send("bump")
      assert.is_nil(ok)
      assert.is_true(troupe.is_error(e2))
      assert.equals("dead", e2.code)
      local ok3, e3 = r:try_send("bump")
      assert.is_nil(ok3)
      assert.equals("dead", e3.code)
      assert.is_false(r:stop())
      assert.is_false(r:kill())
      assert.equals("<actor " .. idtext(r) .. " dead>", tostring(r))
    end)

    it("a dead address is dead to sends from both schedulers, whichever side it lived on", function()
      local r = remote()
      r:stop()
      assert.is_true(dead(r))
      local l = troupe.spawn(Local)
      local ok, code = l:call("send_to", r, "bump")
      assert.is_nil(ok)
      assert.equals("dead", code)
      local r2 = remote()
      local ok2, code2 = r2:call("send_to", r, "bump")
      assert.is_nil(ok2)
      assert.equals("dead", code2)
      local gone = troupe.spawn(Local)
      gone:kill()
      assert.is_true(dead(gone))
      local ok3, code3 = r2:call("send_to", gone, "bump")
      assert.is_nil(ok3)
      assert.equals("dead", code3)
      assert.is_true(r2:call("send_to", l, "bump")) -- a live one is fine
      assert.is_true(wait_until(function() return l:call("count") == 1 end))
    end)

    it("the call being handled gets dead at once when the remote callee is killed", function()
      local r = remote()
      local killer = troupe.spawn(Local)
      killer:send("kill_later", r, 20)
      local t0 = troupe.now()
      local e = syserr(r.call_with, r, { timeout = 3000 }, "nap", 2000)
      assert.equals("dead", e.code)
      assert.matches("killed", e.message)
      assert.is_true(troupe.now() - t0 < 1000, "dead after " .. (troupe.now() - t0) .. " ms")
    end)

    it("calls queued from both schedulers get dead at once when the remote callee crashes", function()
      local r = remote()
      r:send("nap", 50)
      r:send("boom")
      local c1, c2 = on(1, REMOTE), remote()
      c1:send("call_and_keep", r, "tag")
      c2:send("call_and_keep", r, "tag")
      for _, c in ipairs({ c1, c2 }) do
        local res = c:call("result")
        assert.is_false(res.ok)
        assert.equals("dead", res.code)
        assert.is_true(res.ms < 1000, "dead after " .. res.ms .. " ms")
      end
    end)
  end)

  describe("calls between actors on different schedulers", function()
    it("an actor on scheduler 2 calls one on scheduler 1, and back", function()
      local l, r = troupe.spawn(Local, "one"), remote("two")
      assert.equals("one", r:call("call", l, "tag"))
      assert.equals("two", l:call("call", r, "tag"))
      assert.equals(4, select("#", l:call("call", r, "multi")))
      local a, b, c, d = l:call("call", r, "multi")
      assert.same({ 1, nil, "three", nil }, { a, b, c, d })
      -- the callee sees its caller as the sender
      assert.is_true(l:call("call", r, "sender") == l)
      assert.is_true(r:call("call", l, "sender") == r)
      for i = 1, 50 do assert.equals(i * 2, l:call("call", r, "mul", i, 2)) end
    end)

    it("failure values and system errors reach a caller on the other scheduler intact", function()
      local l, r = troupe.spawn(Local, "one"), remote()
      -- scheduler 2 calling scheduler 1
      local ok, v, err = r:call("try_call", l, nil, "own", { x = 1 })
      assert.is_true(ok)
      assert.is_nil(v)
      assert.same({ x = 1 }, err)
      local gone = troupe.spawn(Local)
      gone:kill()
      local ok1, code1, msg1 = r:call("try_call", gone, nil, "ping")
      assert.is_false(ok1)
      assert.equals("dead", code1)
      assert.matches("not alive", msg1)
      local ok2, code2, msg2 = r:call("try_call", l, nil, "nope")
      assert.is_false(ok2)
      assert.equals("no_handler", code2)
      assert.matches("no handler 'nope'", msg2, 1, true)
      local slow = troupe.spawn(Local)
      local ok3, code3 = r:call("try_call", slow, { timeout = 20 }, "nap", 300, "x")
      assert.is_false(ok3)
      assert.equals("timeout", code3)
      local crasher = troupe.spawn(Local)
      local ok4, code4, msg4 = r:call("try_call", crasher, nil, "boom", "far away bang")
      assert.is_false(ok4)
      assert.equals("crashed", code4)
      assert.matches("far away bang", msg4, 1, true)
      local code5, msg5 = r:call("call_unsendable", l)
      assert.equals("bad_value", code5)
      assert.equals("arg 1 .f: thread cannot be sent", msg5)
      assert.equals("one", l:call("tag")) -- the callee on scheduler 1 is fine
      -- scheduler 1 calling scheduler 2
      local v6, err6 = l:call("call", r, "own", "why")
      assert.is_nil(v6)
      assert.equals("why", err6)
      local l2 = troupe.spawn(Local)
      local e7 = syserr(l2.call, l2, "call", r, "nope") -- unhandled in l2's handler
      assert.equals("crashed", e7.code)
      assert.matches("no handler 'nope'", e7.message, 1, true)
      assert.is_true(r:alive())
    end)

    it("a call chain that hops schedulers eight times carries values, failures and crashes", function()
      local function chain(n)
        local relays, nxt = {}, nil
        for i = n, 1, -1 do
          relays[i] = on(i % 2 == 1 and 2 or 1, RELAY, nxt)
          nxt = relays[i]
        end
        return relays
      end
      local want = { 2, 1, 2, 1, 2, 1, 2, 1 }
      local relays = chain(8)
      for i = 1, 8 do assert.equals(want[i], troupe.scheduler(relays[i])) end
      for _ = 1, 20 do assert.same(want, relays[1]:call("go", {}, "ok")) end
      local v, err = relays[1]:call("go", {}, "fail")
      assert.is_nil(v)
      assert.equals("end of line", err.why)
      assert.same(want, err.path)
      local e = syserr(relays[1].call, relays[1], "go", {}, "crash")
      assert.equals("crashed", e.code)
      assert.matches("deep boom", e.message, 1, true)
      -- each relay crashed in turn on the error raised by its call
      for i = 1, 8 do assert.is_true(dead(relays[i]), "relay " .. i .. " survived") end
    end)

    it("a call cycle across schedulers raises deadlock naming it", function()
      local a, b = troupe.spawn(Local), remote()
      local ok, code, msg = a:call_with({ timeout = 5000 }, "ask_back", b)
      assert.is_false(ok)
      assert.equals("deadlock", code)
      assert.matches("call cycle", msg)
      assert.matches("<actor " .. idtext(a), msg, 1, true)
      assert.matches("<actor " .. idtext(b), msg, 1, true)
      assert.equals("pong", a:call("ping"))
      assert.is_true(b:alive())
    end)

    it("2,000 concurrent calls to four actors on scheduler 2 are each answered exactly once", function()
      local N, S = 2000, 4
      local servers = {}
      for s = 1, S do servers[s] = remote() end
      local answers, values, total = {}, {}, 0
      local Client = {
        go = function(self, server, i)
          local ok, v = pcall(server.call, server, "mul", i, 3)
          answers[i] = (answers[i] or 0) + 1
          values[i] = ok and v or ("error: " .. tostring(v))
          total = total + 1
        end,
      }
      local clients = {}
      for i = 1, N do
        clients[i] = troupe.spawn(Client)
        assert.equals(1, troupe.scheduler(clients[i]))
      end
      for i = 1, N do clients[i]:send("go", servers[i % S + 1], i) end
      assert.is_true(wait_until(function() return total >= N end, 30000),
                     "answered " .. total .. " of " .. N)
      troupe.sleep(20) -- anything answered twice would show now
      assert.equals(N, total)
      for i = 1, N do
        assert.equals(1, answers[i], "call " .. i .. " answered " .. tostring(answers[i]) .. " times")
        assert.equals(3 * i, values[i])
      end
      local served = 0
      for s = 1, S do
        local n = servers[s]:call("served")
        assert.equals(N // S, n)
        served = served + n
      end
      assert.equals(N, served)
      for i = 1, N do clients[i]:kill() end
    end)

    it("messages from one sender arrive in order across schedulers, both ways", function()
      local r = remote()
      for i = 1, 1000 do r:send("put", i) end
      assert.same(seq(1000), r:call("got"))
      local r1 = on(1, REMOTE)
      assert.equals(1000, r:call("flood", r1, 1000))
      assert.is_true(wait_until(function() return #r1:call("got") == 1000 end))
      assert.same(seq(1000), r1:call("got"))
    end)
  end)

  describe("stop, kill and hooks on scheduler 2", function()
    it("hooks run in order: init, on_start, handlers, on_stopping, on_stopped", function()
      local logger = troupe.spawn(Local)
      local r = remote("h", logger)
      assert.equals("worked", r:call("work"))
      assert.is_true(r:stop())
      assert.is_true(wait_until(function() return #log == 5 end), "log: " .. table.concat(log, ", "))
      assert.same({ "init h", "on_start h", "work h", "on_stopping h", "on_stopped h" }, log)
      assert.is_true(dead(r))
    end)

    it("on_stopping on scheduler 2 vetoes a graceful stop asked from scheduler 1", function()
      local logger = troupe.spawn(Local)
      local r = remote("v", logger)
      r:call("veto", true)
      assert.is_true(r:stop())
      assert.is_true(wait_until(function()
        for _, l in ipairs(log) do if l == "on_stopping v" then return true end end
      end))
      troupe.sleep(20)
      assert.is_true(r:alive())
      assert.equals("v", r:call("tag"))
      local res, why = r:shutdown(500)
      assert.is_nil(res)
      assert.equals("vetoed", why)
      assert.equals("v", r:call("tag"))
      r:call("veto", false)
      assert.equals("stopped", r:shutdown(1000))
      assert.is_true(dead(r))
      assert.is_true(wait_until(function() return log[#log] == "on_stopped v" end),
                     "log: " .. table.concat(log, ", "))
    end)

    it("shutdown past its timeout kills; kill runs no hooks", function()
      local logger = troupe.spawn(Local)
      local r = remote("slow", logger)
      r:call("slow_stop", 5000)
      local t0 = troupe.now()
      assert.equals("killed", r:shutdown(50))
      assert.is_true(troupe.now() - t0 < 3000)
      assert.is_true(dead(r))
      local k = remote("k", logger)
      k:call("veto", true)
      assert.is_true(k:kill())
      assert.is_true(dead(k))
      troupe.sleep(20)
      for _, l in ipairs(log) do
        assert.is_true(l ~= "on_stopping k" and l ~= "on_stopped k", "kill ran a hook: " .. l)
        assert.is_true(l ~= "on_stopped slow", "a killed actor ran on_stopped")
      end
    end)

    it("shutdown from an actor on scheduler 1 waits for the outcome on scheduler 2", function()
      local victim = remote("victim")
      victim:call("slow_stop", 20)
      local boss = troupe.spawn({ fire = function(self, a) return a:shutdown(1000) end })
      assert.equals("stopped", boss:call("fire", victim))
      assert.is_true(dead(victim))
    end)
  end)

  describe("monitors", function()
    it("a watcher on scheduler 1 sees a scheduler-2 actor stop: ref, address, reason", function()
      local t = remote()
      local w, ref = watched(t)
      assert.equals("integer", math.type(ref))
      t:stop()
      local d = await_down(ref)
      assert.is_true(d.who == t)
      assert.is_true(d.me == w)
      assert.equals("stopped", d.reason)
      assert.is_nil(d.detail)
      assert.equals("pong", w:call("ping"))
    end)

    it("...and every other reason: normal, killed, crashed, noproc", function()
      local t1 = remote()
      local _, r1 = watched(t1)
      assert.equals("bye", t1:call("quit"))
      assert.equals("normal", await_down(r1).reason)

      local t2 = remote()
      local _, r2 = watched(t2)
      assert.is_true(t2:kill())
      local d2 = await_down(r2)
      assert.equals("killed", d2.reason)
      assert.is_nil(d2.detail)

      local t3 = remote()
      local _, r3 = watched(t3)
      pcall(t3.call, t3, "boom", "bang far away")
      local d3 = await_down(r3)
      assert.equals("crashed", d3.reason)
      assert.matches("bang far away", d3.detail.message, 1, true)
      assert.matches("stack traceback", d3.detail.traceback)

      local t4 = remote()
      t4:kill()
      assert.is_true(dead(t4))
      local _, r4 = watched(t4)
      local d4 = await_down(r4)
      assert.equals("noproc", d4.reason)
      assert.is_true(d4.who == t4)
    end)

    it("a watcher on scheduler 2 sees scheduler-1 actors go down", function()
      local w = remote()
      local t1 = troupe.spawn(Local)
      local ref1 = w:call("watch", t1)
      assert.equals("integer", math.type(ref1))
      t1:kill()
      local list = await_list(w, "downs", 1)
      assert.equals(ref1, list[1].ref)
      assert.equals("killed", list[1].reason)
      assert.is_true(list[1].who == t1)
      local t2 = troupe.spawn(Local)
      local ref2 = w:call("watch", t2)
      pcall(t2.call, t2, "boom", "near bang")
      list = await_list(w, "downs", 2)
      assert.equals(ref2, list[2].ref)
      assert.equals("crashed", list[2].reason)
      assert.matches("near bang", list[2].message, 1, true)
      local t3 = troupe.spawn(Local)
      t3:kill()
      local ref3 = w:call("watch", t3)
      list = await_list(w, "downs", 3)
      assert.equals(ref3, list[3].ref)
      assert.equals("noproc", list[3].reason)
      assert.equals(2, w:call("where")) -- the watcher itself stayed where it was
    end)

    it("demonitor across schedulers: no on_down for that ref; a second demonitor is false", function()
      -- watcher on 2, target on 1
      local w = remote()
      local t = troupe.spawn(Local)
      local r1, r2 = w:call("watch", t), w:call("watch", t)
      assert.is_true(r1 ~= r2)
      assert.is_true(w:call("unwatch", r1))
      assert.is_false(w:call("unwatch", r1))
      assert.is_false(w:call("unwatch", 987654321))
      t:kill()
      await_list(w, "downs", 1)
      troupe.sleep(20)
      local list = w:call("downs")
      assert.equals(1, #list)
      assert.equals(r2, list[1].ref)
      -- watcher on 1, target on 2
      local wl = troupe.spawn(Local)
      local tr = remote()
      local q1, q2 = wl:call("watch", tr), wl:call("watch", tr)
      assert.is_true(wl:call("unwatch", q1))
      assert.is_false(wl:call("unwatch", q1))
      tr:kill()
      await_down(q2)
      troupe.sleep(20)
      assert.is_nil(down_for(q1))
      assert.equals(1, #downs)
    end)

    it("watchers on both schedulers each get their own on_down", function()
      local t = remote()
      local lrefs, remotes, rrefs = {}, {}, {}
      for i = 1, 3 do
        local _, ref = watched(t)
        lrefs[i] = ref
        remotes[i] = remote()
        rrefs[i] = remotes[i]:call("watch", t)
      end
      pcall(t.call, t, "boom")
      for i = 1, 3 do
        assert.equals("crashed", await_down(lrefs[i]).reason)
        local list = await_list(remotes[i], "downs", 1)
        assert.equals(rrefs[i], list[1].ref)
        assert.equals("crashed", list[1].reason)
        assert.is_true(list[1].who == t)
      end
      troupe.sleep(10)
      assert.equals(3, #downs)
    end)

    it("timeout: a cpu_limit kill on scheduler 2 is seen by a watcher on scheduler 1", function()
      local t = troupe.spawn_with({ scheduler = 2, cpu_limit = 50 }, REMOTE)
      assert.equals(2, troupe.scheduler(t))
      local _, ref = watched(t)
      local e = syserr(t.call_with, t, { timeout = 10000 }, "spin")
      assert.equals("dead", e.code)
      assert.matches("(timeout)", e.message, 1, true)
      local d = await_down(ref)
      assert.equals("timeout", d.reason)
      assert.matches("CPU limit", d.detail.message)
    end)
  end)

  describe("links", function()
    it("a crash on scheduler 2 takes a linked actor on scheduler 1 down, and the other way", function()
      local a, b = troupe.spawn(Local), remote()
      assert.is_true(a:call("link", b))
      local _, ra = watched(a)
      local _, rb = watched(b)
      pcall(b.call, b, "boom")
      assert.equals("crashed", await_down(rb).reason)
      local d = await_down(ra)
      assert.equals("linked_exit", d.reason)
      assert.matches("linked actor <actor " .. idtext(b), d.detail.message, 1, true)
      assert.matches("(crashed)", d.detail.message, 1, true)

      local c, e = remote(), troupe.spawn(Local)
      assert.is_true(c:call("link", e)) -- linked from scheduler 2 this time
      local _, rc = watched(c)
      pcall(e.call, e, "boom")
      local dc = await_down(rc)
      assert.equals("linked_exit", dc.reason)
      assert.matches("linked actor <actor " .. idtext(e), dc.detail.message, 1, true)
    end)

    it("kill propagates across schedulers; normal and stopped exits do not", function()
      local a, b = troupe.spawn(Local), remote()
      a:call("link", b)
      local _, ra = watched(a)
      b:kill()
      local d = await_down(ra)
      assert.equals("linked_exit", d.reason)
      assert.matches("(killed)", d.detail.message, 1, true)

      local c, q = troupe.spawn(Local), remote()
      c:call("link", q)
      local _, rq = watched(q)
      assert.equals("bye", q:call("quit"))
      assert.equals("normal", await_down(rq).reason)
      troupe.sleep(10)
      assert.equals("pong", c:call("ping"))
      local s = remote()
      c:call("link", s)
      assert.equals("stopped", s:shutdown(1000))
      troupe.sleep(10)
      assert.equals("pong", c:call("ping"))
      assert.is_true(c:alive())
    end)

    it("a remote peer waiting in a call dies at once with its link partner; its caller hears dead", function()
      local a, b = remote(), troupe.spawn(Local)
      a:call("link", b)
      local client = on(1, REMOTE)
      client:send("call_and_keep", a, "nap", 5000)
      troupe.sleep(20)
      b:kill()
      local res = client:call("result")
      assert.is_false(res.ok)
      assert.equals("dead", res.code)
      assert.is_true(res.ms < 2000, "dead after " .. res.ms .. " ms")
      assert.is_true(dead(a))
    end)

    it("unlink across schedulers breaks the link, from either side", function()
      local a, b = troupe.spawn(Local), remote()
      a:call("link", b)
      assert.is_true(a:call("unlink", b))
      pcall(b.call, b, "boom")
      assert.is_true(dead(b))
      troupe.sleep(10)
      assert.equals("pong", a:call("ping"))
      local d, e = remote("d"), troupe.spawn(Local)
      d:call("link", e)
      assert.is_true(e:call("unlink", d)) -- unlinked from the scheduler-1 side
      e:kill()
      troupe.sleep(10)
      assert.equals("d", d:call("tag"))
    end)

    it("trap_exit on scheduler 2 turns exits of scheduler-1 peers into on_exit", function()
      local t = remote("trapper")
      assert.is_false(t:call("trap", true)) -- the old setting
      assert.is_true(t:call("trap", true))
      local peers = {}
      for i = 1, 4 do peers[i] = troupe.spawn(Local); t:call("link", peers[i]) end
      pcall(peers[1].call, peers[1], "boom", "peer bang")
      await_list(t, "exits", 1)
      peers[2]:call("quit")
      await_list(t, "exits", 2)
      peers[3]:stop()
      await_list(t, "exits", 3)
      peers[4]:kill()
      local list = await_list(t, "exits", 4)
      assert.same({ "crashed", "normal", "stopped", "killed" },
                  { list[1].reason, list[2].reason, list[3].reason, list[4].reason })
      assert.matches("peer bang", list[1].message, 1, true)
      assert.is_nil(list[4].message)
      for i = 1, 4 do assert.is_true(list[i].who == peers[i]) end
      assert.equals("trapper", t:call("tag"))
    end)

    it("trap_exit on scheduler 1 turns exits of scheduler-2 peers into on_exit", function()
      local t = troupe.spawn(Local)
      t:call("trap", true)
      local p1, p2 = remote(), remote()
      t:call("link", p1)
      t:call("link", p2)
      pcall(p1.call, p1, "boom", "far bang")
      assert.is_true(wait_until(function() return #exits == 1 end))
      assert.equals("crashed", exits[1].reason)
      assert.matches("far bang", exits[1].detail.message, 1, true)
      assert.matches("stack traceback", exits[1].detail.traceback)
      assert.is_true(exits[1].who == p1)
      assert.is_true(exits[1].me == t)
      p2:kill()
      assert.is_true(wait_until(function() return #exits == 2 end))
      assert.equals("killed", exits[2].reason)
      assert.is_nil(exits[2].detail)
      assert.is_true(exits[2].who == p2)
      assert.equals("pong", t:call("ping"))
    end)

    it("trap_exit(false) on scheduler 2 makes it mortal again", function()
      local t = remote()
      t:call("trap", true)
      assert.is_true(t:call("trap", false))
      local p = troupe.spawn(Local)
      t:call("link", p)
      local _, rt = watched(t)
      p:kill()
      assert.equals("linked_exit", await_down(rt).reason)
    end)

    it("spawn_with{link = true, scheduler = 2} from scheduler 1 links parent and child", function()
      local parent = troupe.spawn(Local)
      local child, k = parent:call("spawn_child", { link = true, scheduler = 2 }, REMOTE, "kid")
      assert.equals(2, k)
      assert.equals("kid", child:call("tag"))
      local _, rc = watched(child)
      parent:kill()
      assert.equals("linked_exit", await_down(rc).reason)

      local parent2 = troupe.spawn(Local)
      local child2 = parent2:call("spawn_child", { link = true, scheduler = 2 }, REMOTE)
      local _, rp = watched(parent2)
      pcall(child2.call, child2, "boom")
      assert.equals("linked_exit", await_down(rp).reason)
    end)

    it("a chain of 200 actors alternating between schedulers dies from one end", function()
      local N = 200
      local a = { on(1, LINKED) }
      for i = 2, N do a[i] = on(i % 2 == 0 and 2 or 1, LINKED, a[i - 1]) end
      for i = 1, N do
        assert.equals("pong", a[i]:call("ping")) -- every init (and link) ran
        assert.equals(i % 2 == 0 and 2 or 1, a[i]:call("where"))
      end
      local _, rlast = watched(a[N])
      a[1]:kill()
      assert.equals("linked_exit", await_down(rlast).reason)
      for i = 1, N do assert.is_true(dead(a[i]), "actor " .. i .. " survived") end
    end)

    it("a crash in the middle of an alternating chain spreads both ways", function()
      local N = 100
      local a = { on(2, LINKED) }
      for i = 2, N do a[i] = on(i % 2 == 0 and 1 or 2, LINKED, a[i - 1]) end
      for i = 1, N do
        assert.equals("pong", a[i]:call("ping"))
        assert.equals(i % 2 == 0 and 1 or 2, troupe.scheduler(a[i]))
      end
      local _, r1 = watched(a[1])
      local _, rN = watched(a[N])
      pcall(a[N // 2].call, a[N // 2], "boom")
      assert.equals("linked_exit", await_down(r1).reason)
      assert.equals("linked_exit", await_down(rN).reason)
      for i = 1, N do assert.is_true(dead(a[i]), "actor " .. i .. " survived") end
    end)
  end)

  describe("names", function()
    after_each(function()
      for _, n in ipairs({ "sched_two", "sched_one", "sched_alias", "sched_dup", "sched_gone",
                           "sched_gone2", "sched_spawned", "sched_dead", "sched_svc" }) do
        troupe.unregister(n)
      end
    end)

    it("a name registered on scheduler 2 is found from main code and from scheduler 1", function()
      local r = remote("reg2")
      assert.is_true(r:call("reg", "sched_two"))
      local w = troupe.whereis("sched_two")
      assert.is_true(w == r)
      assert.equals(2, troupe.scheduler(w))
      assert.equals("reg2", w:call("tag"))
      local l = troupe.spawn(Local)
      assert.is_true(l:call("lookup", "sched_two") == r)
    end)

    it("a name registered for a scheduler-1 actor is found and called from scheduler 2", function()
      local l = troupe.spawn(Local, "one")
      assert.is_true(troupe.register("sched_one", l))
      local r = remote()
      assert.is_true(r:call("lookup", "sched_one") == l)
      assert.equals("one", r:call("call_name", "sched_one", "tag"))
      assert.is_nil(r:call("lookup", "nobody"))
      -- main code names a scheduler-2 actor; another scheduler-2 actor finds it
      local r2 = remote("aliased")
      assert.is_true(troupe.register("sched_alias", r2))
      assert.equals("aliased", r:call("call_name", "sched_alias", "tag"))
    end)

    it("a duplicate name across schedulers raises exists; the first owner keeps it", function()
      local r = remote()
      r:call("reg", "sched_dup")
      local l = troupe.spawn(Local)
      local e = syserr(troupe.register, "sched_dup", l)
      assert.equals("exists", e.code)
      assert.matches("sched_dup", e.message)
      local r2 = remote()
      local ok, code, msg = r2:call("try_reg", "sched_dup")
      assert.is_false(ok)
      assert.equals("exists", code)
      assert.matches("sched_dup", msg)
      assert.is_true(troupe.whereis("sched_dup") == r)
      assert.is_true(r:call("reg", "sched_dup")) -- the owner again: fine
    end)

    it("a remote actor's names vanish when it dies and can be reused from the other side", function()
      local r = remote()
      r:call("reg", "sched_gone")
      troupe.register("sched_gone2", r)
      r:kill()
      assert.is_true(wait_until(function()
        return troupe.whereis("sched_gone") == nil and troupe.whereis("sched_gone2") == nil
      end))
      local l = troupe.spawn(Local)
      assert.is_true(troupe.register("sched_gone", l))
      local r2 = remote()
      assert.is_true(r2:call("lookup", "sched_gone") == l)
    end)

    it("spawn_with{name, scheduler = 2} registers the name; a taken name refuses the spawn", function()
      local a = troupe.spawn_with({ name = "sched_spawned", scheduler = 2 }, REMOTE, "named")
      assert.equals(2, troupe.scheduler(a))
      assert.is_true(troupe.whereis("sched_spawned") == a)
      for k = 1, 2 do
        local e = syserr(troupe.spawn_with, { name = "sched_spawned", scheduler = k }, REMOTE)
        assert.equals("exists", e.code)
        assert.matches("sched_spawned", e.message)
      end
      assert.is_true(troupe.whereis("sched_spawned") == a)
      assert.equals("named", troupe.whereis("sched_spawned"):call("tag"))
    end)

    it("a dead remote actor cannot be registered", function()
      local r = remote()
      r:kill()
      assert.is_true(dead(r))
      local e = syserr(troupe.register, "sched_dead", r)
      assert.equals("dead", e.code)
      assert.is_nil(troupe.whereis("sched_dead"))
    end)
  end)

  describe("deferred replies", function()
    it("a scheduler-2 actor defers, serves others meanwhile, and answers a scheduler-1 caller later", function()
      local d = remote()
      local client = on(1, REMOTE)
      client:send("call_and_keep", d, "get", "client")
      assert.is_true(wait_until(function() return d:call("pending") == 1 end))
      assert.equals("busy?", d:call("echo", "busy?")) -- not blocked by what it owes
      assert.is_true(d:call("release", 1, "two", { 3 }))
      local res = client:call("result")
      assert.is_true(res.ok)
      assert.equals(3, res.n)
      assert.same({ 1, "two", { 3 } }, res.values)
    end)

    it("a scheduler-1 actor defers and a scheduler-2 caller gets the answer or the failure", function()
      local d = on(1, REMOTE)
      local client = remote()
      client:send("call_and_keep", d, "get")
      assert.is_true(wait_until(function() return d:call("pending") == 1 end))
      assert.is_true(d:call("release", "deferred value"))
      local res = client:call("result")
      assert.is_true(res.ok)
      assert.equals("deferred value", res.values[1])
      client:send("call_and_keep", d, "get")
      assert.is_true(wait_until(function() return d:call("pending") == 1 end))
      assert.is_true(d:call("release_fail", { reason = "later" }))
      res = client:call("result")
      assert.is_true(res.ok) -- a failure value is not a system error
      assert.equals(2, res.n)
      assert.is_nil(res.values[1])
      assert.same({ reason = "later" }, res.values[2])
    end)

    it("a token answered by a timer on scheduler 2; main code waits for it", function()
      local d = remote()
      local t0 = troupe.now()
      local v, w = d:call("later", 30, "late value")
      assert.equals("late value", v)
      assert.equals("from timer", w)
      assert.is_true(troupe.now() - t0 >= 25)
    end)

    it("an unanswered token on a killed scheduler-2 actor fails the scheduler-1 caller at once", function()
      local d = remote()
      local client = on(1, REMOTE)
      client:send("call_and_keep", d, "get")
      assert.is_true(wait_until(function() return d:call("pending") == 1 end))
      d:kill()
      local res = client:call("result")
      assert.is_false(res.ok)
      assert.equals("dead", res.code)
      assert.is_true(res.ms < 1000, "dead after " .. res.ms .. " ms")
    end)

    it("a token dropped on scheduler 2 fails the call with dropped", function()
      local d = remote()
      local e = syserr(d.call_with, d, { timeout = 3000 }, "drop")
      assert.equals("dropped", e.code)
      assert.is_true(d:alive())
    end)
  end)

  describe("timers on scheduler 2", function()
    it("send_after fires in deadline order, with its arguments, from the actor itself", function()
      local r = remote()
      r:call("after", { { 30, "c" }, { 10, "a" }, { 20, "b" }, { 0, "zero" }, { 40, "d" } })
      assert.same({ "zero", "a", "b", "c", "d" }, await_list(r, "ticks", 5))
      assert.is_true(r:call("tick_from_self"))
      r:call("after_args", 1, 1, 2.5, "three", { four = 4 }, nil, true)
      await_list(r, "ticks", 6)
      assert.same({ n = 6, 1, 2.5, "three", { four = 4 }, nil, true }, r:call("tick_args"))
    end)

    it("do not fire early", function()
      local r = remote()
      local t0 = troupe.now()
      r:call("after", { { 300, "x" } })
      troupe.sleep(10)
      assert.same({}, r:call("ticks"))
      await_list(r, "ticks", 1)
      -- the two schedulers' loop clocks may differ by a little
      assert.is_true(troupe.now() - t0 >= 295, "fired after " .. (troupe.now() - t0) .. " ms")
    end)

    it("send_every repeats until cancelled", function()
      local r = remote()
      r:call("every", 5, "t")
      await_list(r, "ticks", 4)
      assert.is_true(r:call("cancel"))
      local n = #r:call("ticks")
      troupe.sleep(30)
      assert.equals(n, #r:call("ticks"), "ticks after cancel")
      assert.is_false(r:call("cancel"))
    end)

    it("a scheduler-2 actor's timers die with it", function()
      fired = 0
      local counter = troupe.spawn(Local)
      local ticker = remote()
      ticker:call("forward_every", 2, counter)
      assert.is_true(wait_until(function() return fired > 3 end))
      ticker:kill()
      assert.is_true(dead(ticker))
      troupe.sleep(10) -- ticks already on their way land now
      local n = fired
      troupe.sleep(30)
      assert.equals(n, fired)
    end)

    it("sleep on scheduler 2 suspends only that actor", function()
      local sleeper = remote()
      sleeper:send("nap", 2000)
      local other = remote("awake")
      local t0 = troupe.now()
      assert.equals("awake", other:call("tag"))
      assert.is_true(troupe.now() - t0 < 1500)
      assert.is_true(sleeper:alive())
      sleeper:kill()
    end)
  end)

  describe("addresses inside messages", function()
    it("cross schedulers, nested, and stay equal (usable as table keys)", function()
      local l, r = troupe.spawn(Local, "one"), remote("two")
      local s1, s2 = r:call("self_addr"), r:call("self_addr")
      assert.is_true(s1 == r and s2 == r)
      assert.equals(2, troupe.scheduler(s1))
      local t = { [r] = "r" }
      assert.equals("r", t[s1])
      local back = r:call("echo", { list = { l, r, { deep = l } } })
      assert.is_true(back.list[1] == l)
      assert.is_true(back.list[2] == r)
      assert.is_true(back.list[3].deep == l)
      assert.equals(1, troupe.scheduler(back.list[1]))
      r:call("keep", { a = l })
      assert.is_true(r:call("kept").a == l)
      assert.equals("one", r:call("call", r:call("kept").a, "tag"))
      assert.equals("two", l:call("call", back.list[2], "tag"))
      assert.equals(l:id(), back.list[1]:id())
    end)

    it("weak addresses cross schedulers: alive, upgrade and then dead", function()
      local l, r = troupe.spawn(Local, "one"), remote()
      r:call("keep", l:weak())
      local alive, up, str = r:call("weak_info")
      assert.is_true(alive)
      assert.is_true(up == l)
      assert.is_string(str)
      assert.equals("one", r:call("weak_call", "tag"))
      l:kill()
      assert.is_true(wait_until(function() return not (r:call("weak_info")) end))
      local alive2, up2, str2 = r:call("weak_info")
      assert.is_false(alive2)
      assert.is_nil(up2)
      assert.matches("^<weak [%d.]+ dead>$", str2)
      local v, err = r:call("weak_call", "tag")
      assert.is_nil(v)
      assert.equals("gone", err)
      -- main code holding a weak address of a scheduler-2 actor
      local r2 = remote("w")
      local w = r2:weak()
      assert.equals(r2:id(), w:id())
      assert.is_nil(w.call)
      assert.is_true(w:alive())
      assert.is_true(w:upgrade() == r2)
      assert.equals("w", w:upgrade():call("tag"))
      r2:kill()
      assert.is_true(wait_until(function() return not w:alive() end))
      assert.is_nil(w:upgrade())
    end)

    it("an owned scheduler-2 actor lives while any strong address does, on either scheduler", function()
      local holder = remote()
      local w, w2
      do
        local a = troupe.spawn_with({ owned = true, scheduler = 2 }, REMOTE, "owned")
        assert.equals("owned", a:call("tag"))
        w = a:weak()
        holder:call("keep", w) -- a weak address on scheduler 2 does not keep it
      end
      collectgarbage()
      collectgarbage()
      assert.is_true(wait_until(function() return not w:alive() end),
                     "an owned actor outlived its last strong address")
      assert.is_false((holder:call("weak_info")))
      do
        local b = troupe.spawn_with({ owned = true, scheduler = 2 }, REMOTE, "kept")
        w2 = b:weak()
        holder:call("keep", b) -- a strong address held on scheduler 2 does
      end
      collectgarbage()
      collectgarbage()
      troupe.sleep(30)
      assert.is_true(w2:alive())
      assert.equals("kept", holder:call("call", holder:call("kept"), "tag"))
      holder:call("keep", nil)
      holder:call("gc")
      collectgarbage()
      collectgarbage()
      assert.is_true(wait_until(function() return not w2:alive() end),
                     "the holder dropped its address but the owned actor lives on")
    end)

    it("an owned C actor placed on scheduler 2 lives while main code holds its address", function()
      local Account = troupe.load_c(BANK_SO).Account
      local w
      do
        local a = troupe.spawn_with({ owned = true, scheduler = 2 }, Account, 10)
        assert.equals(2, troupe.scheduler(a))
        w = a:weak()
        -- an actor on scheduler 2 takes a strong address, then drops it:
        -- main code's reference still counts
        local holder = remote()
        holder:call("keep", a)
        holder:call("keep", nil)
        holder:call("gc")
        collectgarbage()
        collectgarbage()
        troupe.sleep(30)
        assert.is_true(w:alive(), "stopped while main code held its address")
        assert.equals(10, a:call("balance"))
      end
      collectgarbage()
      collectgarbage()
      assert.is_true(wait_until(function() return not w:alive() end),
                     "an owned C actor outlived its last strong address")
    end)
  end)

  -- Strong addresses of owned actors count on every scheduler and on their
  -- way between schedulers; each case also ends with the actor stopped once
  -- the last holder and every message are gone.
  describe("owned actors' addresses across schedulers", function()
    local function gc() collectgarbage(); collectgarbage() end

    it("a holder on scheduler 2 keeps a scheduler-1 owned actor alive; it stops once dropped", function()
      local holder = remote()
      local w
      do
        local a = troupe.spawn_with({ owned = true }, Local, "one")
        assert.equals(1, troupe.scheduler(a))
        w = a:weak()
        holder:call("keep", a)
      end
      gc()
      troupe.sleep(30)
      assert.is_true(w:alive(), "stopped while an actor on scheduler 2 held its address")
      assert.equals("one", holder:call("call", holder:call("kept"), "tag"))
      holder:call("keep", nil)
      holder:call("gc")
      gc()
      assert.is_true(dead(w), "the holder dropped its address but the owned actor lives on")
      holder:kill()
    end)

    it("a scheduler-2 owned actor handed over in a reply lives while scheduler 1 holds it", function()
      local maker = remote()
      local c = maker:call("spawn_child", { owned = true }, ADDER, 5)
      assert.equals(2, troupe.scheduler(c))
      local w = c:weak()
      maker:call("gc") -- the spawner's own address is gone
      troupe.sleep(30)
      assert.is_true(w:alive(), "stopped while scheduler 1 held its address")
      assert.equals(15, c:call("add", 10))
      c = nil
      gc()
      assert.is_true(dead(w), "scheduler 1 dropped its address but the owned actor lives on")
      maker:kill()
    end)

    it("a message on its way to a busy scheduler-2 actor keeps it alive", function()
      local holder = remote()
      holder:send("nap", 60)
      local a = troupe.spawn_with({ owned = true }, Local, "flying")
      local w = a:weak()
      holder:send("keep", a) -- the only other reference is in flight
      a = nil
      gc()
      troupe.sleep(100)
      assert.is_true(w:alive(), "stopped while a message to scheduler 2 held its address")
      assert.equals("flying", holder:call("call", holder:call("kept"), "tag"))
      holder:call("keep", nil)
      holder:call("gc")
      gc()
      assert.is_true(dead(w), "leaked: the owned actor outlived every address")
      holder:kill()
    end)

    it("spawn arguments for scheduler 2 keep it alive", function()
      local a = troupe.spawn_with({ owned = true }, Local, "arg")
      local w = a:weak()
      local h = remote(a) -- its init keeps a (as its tag)
      a = nil
      gc()
      troupe.sleep(30)
      assert.is_true(w:alive(), "stopped while spawn arguments held its address")
      assert.equals("arg", h:call("call", h:call("tag"), "tag"))
      h:kill()
      local other = remote()
      other:call("gc")
      gc()
      assert.is_true(dead(w), "leaked: the owned actor outlived every address")
      other:kill()
    end)

    it("a message waiting for room in a scheduler-1 mailbox keeps it alive", function()
      local sink = troupe.spawn_with({ scheduler = 1, mailbox = 1 }, REMOTE)
      local flag = troupe.spawn(Local)
      sink:send("pause", 150, flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end))
      local prod, other = remote(), remote()
      assert.is_true(prod:call("send_to", sink, "put", 1)) -- fills the mailbox
      local a = troupe.spawn_with({ owned = true }, Local, "waiting")
      local w = a:weak()
      prod:send("send_to_keep", sink, "put", a) -- waits for room
      troupe.sleep(30)
      prod:kill() -- the sender's stack is gone: the waiting message is the only holder
      a = nil
      gc()
      other:call("gc")
      assert.is_true(wait_until(function() return #sink:call("got") >= 1 end))
      troupe.sleep(30)
      local got = sink:call("got")
      if got[2] ~= nil then -- let in: it arrived alive
        assert.equals("waiting", got[2]:call("tag"))
      end
      got = nil
      sink:kill()
      gc()
      assert.is_true(dead(w), "leaked: the owned actor outlived every address")
      other:kill()
    end)

    it("messages dropped on scheduler 2 release their references", function()
      local a = troupe.spawn_with({ owned = true }, Local, "dropped")
      local w = a:weak()
      local h = remote()
      h:send("nope", a)                       -- no such handler
      assert.is_false((pcall(h.call, h, "nope", { a })))
      local busy = remote()
      busy:send("nap", 1000)
      busy:send("keep", a)                    -- discarded with its mailbox
      busy:send("keep", { a, a })
      local gone = remote()
      gone:kill()
      gone:send("keep", a)                    -- to a dead actor
      troupe.sleep(20)
      busy:kill()
      a = nil
      gc()
      assert.is_true(dead(w), "leaked: a dropped message kept its reference")
      h:kill()
    end)
  end)

  describe("printing addresses across schedulers", function()
    after_each(function()
      troupe.unregister("sched_print")
      troupe.unregister("sched_print1")
    end)

    it("an actor on the other scheduler prints with its behaviour and names, as a local one does", function()
      assert.matches("^<actor [%d.]+ Adder>$", tostring(on(2, ADDER)))
      local r = remote()
      assert.matches("^<actor [%d.]+ Remote>$", tostring(r))
      assert.is_true(r:call("reg", "sched_print"))
      assert.matches('^<actor [%d.]+ Remote "sched_print">$', tostring(r))
      assert.matches('^<weak [%d.]+ Remote "sched_print">$', tostring(r:weak()))
      local acct = on(2, troupe.load_c(BANK_SO).Account, 1)
      assert.matches("^<actor [%d.]+ Account>$", tostring(acct))
      -- and scheduler 2 printing scheduler-1 addresses
      local l = troupe.spawn(Local)
      assert.is_true(troupe.register("sched_print1", l))
      assert.matches('^<actor [%d.]+ Local "sched_print1">$', r:call("show", l))
      assert.matches('^<weak [%d.]+ Local "sched_print1">$', r:call("show", l:weak()))
      -- the same id either side
      assert.equals(idtext(l), r:call("show", l):match("^<actor ([^%s>]+)"))
      assert.equals(idtext(r), r:call("show", r):match("^<actor ([^%s>]+)"))
    end)
  end)

  describe("runaway handlers on scheduler 2", function()
    it("do not block scheduler 1 nor their neighbours, and can be killed", function()
      local flag = troupe.spawn(Local)
      local spinner = remote()
      spinner:send("spin", flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end), "the spinner never started")
      local l = troupe.spawn(Local)
      local t0 = troupe.now()
      for _ = 1, 50 do assert.equals("pong", l:call_with({ timeout = 3000 }, "ping")) end
      -- (a generous bound: a loaded machine stretches this; blocked, it would never finish)
      assert.is_true(troupe.now() - t0 < 2500, "scheduler 1 slowed: " .. (troupe.now() - t0) .. " ms")
      local neighbour = remote("neighbour")
      t0 = troupe.now()
      for _ = 1, 20 do assert.equals("neighbour", neighbour:call_with({ timeout = 3000 }, "tag")) end
      assert.is_true(troupe.now() - t0 < 3000)
      assert.is_true(spinner:alive())
      assert.is_true(spinner:kill())
      assert.is_true(dead(spinner, 2000))
      assert.equals("dead", syserr(spinner.call, spinner, "tag").code)
      assert.equals("neighbour", neighbour:call("tag"))
    end)

    it("cpu_limit kills one with timeout while scheduler 1 keeps serving", function()
      local t = troupe.spawn_with({ scheduler = 2, cpu_limit = 50 }, REMOTE)
      assert.equals(2, troupe.scheduler(t))
      local client = on(1, REMOTE)
      client:send("call_and_keep", t, "spin")
      local l = troupe.spawn(Local)
      for _ = 1, 20 do assert.equals("pong", l:call_with({ timeout = 1000 }, "ping")) end
      local res = client:call("result")
      assert.is_false(res.ok)
      assert.equals("dead", res.code)
      assert.matches("(timeout)", res.message, 1, true)
      assert.is_true(res.ms < 5000, "killed after " .. res.ms .. " ms")
      assert.is_true(dead(t))
      -- main code calling one directly
      local t2 = troupe.spawn_with({ scheduler = 2, cpu_limit = 50 }, REMOTE)
      local t0 = troupe.now()
      local e = syserr(t2.call_with, t2, { timeout = 10000 }, "spin")
      assert.equals("dead", e.code)
      assert.matches("(timeout)", e.message, 1, true)
      assert.is_true(troupe.now() - t0 < 5000)
    end)
  end)

  describe("backpressure across schedulers", function()
    it("main code waits for room in a full scheduler-2 mailbox; order is kept", function()
      local sink = troupe.spawn_with({ scheduler = 2, mailbox = 2 }, REMOTE)
      assert.equals(2, troupe.scheduler(sink))
      sink:send("pause", 30)
      for i = 1, 10 do assert.is_true(sink:send("put", i)) end
      assert.same(seq(10), sink:call("got"))
    end)

    it("main code's send to a full scheduler-2 mailbox returns once there is room", function()
      local flag, done = troupe.spawn(Local), troupe.spawn(Local)
      local sink = troupe.spawn_with({ scheduler = 2, mailbox = 2 }, REMOTE)
      sink:send("pause", 300, flag, done)
      assert.is_true(wait_until(function() return flag:call("is_set") end)) -- pause taken
      assert.is_true(sink:send("put", 1))
      assert.is_true(sink:send("put", 2))
      assert.is_false(done:call("is_set"))
      -- full: this one waits until the sink has taken a message, which is
      -- after its pause (done's set() is queued before the answer comes)
      assert.is_true(sink:send("put", 3))
      assert.is_true(done:call("is_set"), "the send went past the bound of a busy mailbox")
      for i = 4, 20 do assert.is_true(sink:send("put", i)) end
      assert.same(seq(20), sink:call("got"))
    end)

    it("main code's send and call to a full scheduler-2 mailbox wait behind earlier senders", function()
      local flag = troupe.spawn(Local)
      local sink = troupe.spawn_with({ scheduler = 2, mailbox = 2 }, REMOTE)
      sink:send("pause", 300, flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end)) -- pause taken
      assert.is_true(sink:try_send("put", 1))
      assert.is_true(sink:try_send("put", 2))
      local prod = on(1, REMOTE)
      prod:send("send_to_keep", sink, "put", 3) -- a handler's send: waits to be let in
      troupe.sleep(50)
      -- main code's wait queues behind it: nothing goes past the bound
      assert.is_true(sink:send("put", 4))
      assert.same({ 1, 2, 3, 4 }, sink:call("got"))
      assert.same({ true }, prod:call("result"))
    end)

    it("a handler's call to a full mailbox on the other scheduler waits for room, in order", function()
      local flag = troupe.spawn(Local)
      local sink = troupe.spawn_with({ scheduler = 1, mailbox = 1 }, REMOTE)
      sink:send("pause", 300, flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end)) -- pause taken
      assert.is_true(sink:try_send("put", 1))
      local a, b = remote(), remote()
      a:send("send_to_keep", sink, "put", 2) -- waits to be let in
      troupe.sleep(50)
      b:send("call_and_keep", sink, "got") -- waits behind it
      assert.is_true(wait_until(function() return b:call("result") ~= nil end))
      local res = b:call("result")
      assert.is_true(res.ok)
      assert.same({ 1, 2 }, res.values[1])
      assert.same({ true }, a:call("result"))
    end)

    it("a handler's call waiting for room in a mailbox on the other scheduler hears dead when it dies", function()
      local flag = troupe.spawn(Local)
      local sink = troupe.spawn_with({ scheduler = 1, mailbox = 1 }, REMOTE)
      sink:send("pause", 2000, flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end))
      assert.is_true(sink:try_send("put", 1))
      local b = remote()
      b:send("call_and_keep", sink, "got")
      troupe.sleep(50)
      sink:kill()
      assert.is_true(wait_until(function() return b:call("result") ~= nil end))
      local res = b:call("result")
      assert.is_false(res.ok)
      assert.equals("dead", res.code)
    end)

    it("main code's call to a full scheduler-2 mailbox waits for room; nowait says full", function()
      local flag = troupe.spawn(Local)
      local sink = troupe.spawn_with({ scheduler = 2, mailbox = 1 }, REMOTE)
      sink:send("pause", 300, flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end))
      assert.is_true(sink:try_send("put", 1))
      local e = syserr(sink.call_with, sink, { nowait = true }, "got")
      assert.equals("full", e.code)
      assert.same({ 1 }, sink:call("got"))
      -- it dies while main code waits for room: the send says dead
      assert.is_true(sink:send("pause", 2000))
      assert.is_true(sink:send("put", 2)) -- (once the pause is taken)
      troupe.spawn(Local):send("kill_later", sink, 100)
      local err
      for i = 3, 10 do
        local ok, e3 = sink:send("put", i)
        if not ok then
          err = e3
          break
        end
      end
      assert.is_not_nil(err, "the sends went past the bound")
      assert.equals("dead", err.code)
    end)

    it("try_send to a full scheduler-2 mailbox returns nil, full", function()
      local flag = troupe.spawn(Local)
      local sink = troupe.spawn_with({ scheduler = 2, mailbox = 2 }, REMOTE)
      assert.equals(2, troupe.scheduler(sink))
      sink:send("pause", 300, flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end)) -- pause taken
      assert.is_true(sink:try_send("put", 1))
      assert.is_true(sink:try_send("put", 2))
      local ok, e = sink:try_send("put", 3)
      assert.is_nil(ok)
      assert.is_true(troupe.is_error(e))
      assert.equals("full", e.code)
      assert.same({ 1, 2 }, sink:call("got"))
    end)

    it("a scheduler-2 sender is held back while a scheduler-1 mailbox is full", function()
      local sink = troupe.spawn_with({ scheduler = 1, mailbox = 2 }, REMOTE)
      local flag = troupe.spawn(Local)
      sink:send("pause", 1500, flag) -- long enough for a loaded machine to see the flood held
      assert.is_true(wait_until(function() return flag:call("is_set") end)) -- pause taken
      local prod, counter = remote(), remote()
      assert.equals(2, troupe.scheduler(prod))
      prod:send("flood_count", sink, 50, counter)
      troupe.sleep(150)
      local sent = counter:call("count")
      -- 2 fit in the mailbox; a third may be on its way when it is seen full
      assert.is_true(sent <= 3, ("%d sends went through a mailbox of 2 while its actor was busy"):format(sent))
      assert.is_true(wait_until(function() return #sink:call("got") == 50 end))
      assert.same(seq(50), sink:call("got"))
      assert.equals(50, counter:call("count"))
    end)

    it("a scheduler-2 sender waiting for room hears dead when the actor dies", function()
      local sink = troupe.spawn_with({ scheduler = 1, mailbox = 1 }, REMOTE)
      local flag = troupe.spawn(Local)
      sink:send("pause", 2000, flag)
      assert.is_true(wait_until(function() return flag:call("is_set") end))
      local prod = remote()
      assert.is_true(prod:call("send_to", sink, "put", 1)) -- fills the mailbox
      prod:send("send_to_keep", sink, "put", 2) -- waits for room
      troupe.sleep(50)
      sink:kill()
      assert.is_true(wait_until(function() return prod:call("result") ~= nil end))
      assert.same({ nil, "dead" }, prod:call("result"))
    end)

    it("a scheduler-2 sender waits for room in a full scheduler-1 mailbox", function()
      local sink = troupe.spawn_with({ scheduler = 1, mailbox = 1 }, REMOTE)
      assert.equals(1, troupe.scheduler(sink))
      sink:send("pause", 20)
      local prod = remote()
      assert.equals(50, prod:call("flood", sink, 50))
      assert.is_true(wait_until(function() return #sink:call("got") == 50 end))
      assert.same(seq(50), sink:call("got"))
    end)
  end)

  describe("C behaviours on scheduler 2", function()
    local Account
    setup(function() Account = troupe.load_c(BANK_SO).Account end)

    it("values, failure values and system errors, called from both schedulers", function()
      local acct = troupe.spawn_with({ scheduler = 2 }, Account, 100)
      assert.equals(2, troupe.scheduler(acct))
      assert.equals(150, acct:call("deposit", 50))
      local v, err = acct:call("withdraw", 1000)
      assert.is_nil(v)
      assert.same({ reason = "insufficient funds", requested = 1000, available = 150 }, err)
      local e = syserr(acct.call, acct, "withdraw", "lots")
      assert.equals("bad_value", e.code)
      assert.equals("withdraw needs a positive integer", e.message)
      local e2 = syserr(acct.call, acct, "steal")
      assert.equals("no_handler", e2.code)
      assert.matches("no handler 'steal'", e2.message, 1, true)
      local l, r = troupe.spawn(Local), remote()
      assert.equals(150, l:call("call", acct, "balance"))
      assert.equals(151, r:call("call", acct, "deposit", 1))
      local ok, v2, err2 = r:call("try_call", acct, nil, "withdraw", 10000)
      assert.is_true(ok)
      assert.is_nil(v2)
      assert.equals("insufficient funds", err2.reason)
      assert.is_true(acct:kill())
      assert.equals("dead", syserr(acct.call, acct, "balance").code)
    end)

    it("C behaviours spawned from main code stay on scheduler 1 unless placed", function()
      -- a C behaviour's code may share memory with the program embedding the
      -- host: it only runs on another scheduler's thread when asked to
      local a1, a2 = troupe.spawn(Account, 1), troupe.spawn(Account, 2)
      assert.equals(1, troupe.scheduler(a1))
      assert.equals(1, troupe.scheduler(a2))
      local a3 = troupe.spawn_with({ scheduler = 2 }, Account, 3)
      assert.equals(2, troupe.scheduler(a3))
      assert.equals(1, a1:call("balance"))
      assert.equals(2, a2:call("balance"))
      assert.equals(3, a3:call("balance"))
    end)
  end)

  describe("supervisors on scheduler 2", function()
    after_each(function() troupe.unregister("sched_svc") end)

    it("restart their child there; its name follows the restart", function()
      local boss = remote()
      local sup = boss:call("start_sup", "sched_svc")
      assert.equals(2, troupe.scheduler(sup))
      assert.is_true(wait_until(function() return troupe.whereis("sched_svc") ~= nil end))
      local w = troupe.whereis("sched_svc")
      assert.equals(2, troupe.scheduler(w))
      assert.equals(2, w:call("where"))
      assert.equals(1, w:call("bump"))
      assert.equals(2, w:call("bump"))
      for _ = 1, 2 do
        local old = troupe.whereis("sched_svc")
        local e = syserr(old.call, old, "boom")
        assert.equals("crashed", e.code)
        assert.matches("worker boom", e.message, 1, true)
        assert.is_true(wait_until(function()
          local now = troupe.whereis("sched_svc")
          return now ~= nil and now ~= old
        end), "the child was not restarted")
        local now = troupe.whereis("sched_svc")
        assert.equals(2, troupe.scheduler(now))
        assert.equals(1, now:call("bump")) -- a fresh child
      end
      assert.equals("stopped", sup:shutdown(2000))
      assert.is_true(wait_until(function() return troupe.whereis("sched_svc") == nil end))
    end)
  end)
end)
