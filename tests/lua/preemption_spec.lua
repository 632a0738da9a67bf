-- Preemption, CPU and memory limits, crash semantics, hostile input.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local wait_until = helpers.wait_until

local raised = helpers.syserr

local spins = 0
local Busy = troupe.behaviour("Busy", {
  spin = function() while true do spins = spins + 1 end end,
  ping = function() return "pong" end,
  -- a long pure computation: sum of i*i mod m over n steps
  sum = function(self, n)
    local s = 0
    for i = 1, n do s = (s + i * i) % 1000000007 end
    return s
  end,
  hog = function(self)
    local t = {}
    for i = 1, 10000000 do t[i] = { i } end
    return #t
  end,
  grab = function(self, n) self.keep = string.rep("x", n); return #self.keep end,
})

local function expected_sum(n)
  local s = 0
  for i = 1, n do s = (s + i * i) % 1000000007 end
  return s
end

describe("preemption", function()
  it("a spinning actor does not starve the others", function()
    local spinner = troupe.spawn(Busy)
    local other = troupe.spawn(Busy)
    spinner:send("spin")
    assert.is_true(wait_until(function() return spins > 0 end))
    local t0 = troupe.now()
    for _ = 1, 20 do assert.equals("pong", other:call_with({ timeout = 3000 }, "ping")) end
    assert.is_true(troupe.now() - t0 < 3000)
    -- a fresh actor spawned now is served too
    assert.equals("pong", troupe.spawn(Busy):call_with({ timeout = 3000 }, "ping"))
    assert.is_true(spinner:alive())
    local before = spins
    troupe.sleep(30)
    assert.is_true(spins > before, "the spinner makes progress between the others' turns")
    spinner:kill()
  end)

  it("a long computation finishes correctly after many preemptions", function()
    local n = 3000000
    local worker = troupe.spawn(Busy)
    local results = {}
    local caller = troupe.spawn({
      go = function(self, w, k) results.sum = w:call_with({ timeout = 60000 }, "sum", k) end,
    })
    caller:send("go", worker, n)
    local other = troupe.spawn(Busy)
    local pings = 0
    while results.sum == nil do
      assert.equals("pong", other:call_with({ timeout = 3000 }, "ping"))
      pings = pings + 1
      troupe.sleep(1)
    end
    assert.equals(expected_sum(n), results.sum)
    assert.is_true(pings >= 1)
    assert.equals("pong", worker:call("ping")) -- it lives on
  end)

  it("a spinning actor can be killed; calls queued on it get dead", function()
    local spinner = troupe.spawn(Busy)
    local results = {}
    local client = troupe.spawn({
      go = function(self, s)
        local ok, e = pcall(s.call_with, s, { timeout = 10000 }, "spin")
        results[#results + 1] = ok and "ok" or e.code
        local ok2, e2 = pcall(s.call, s, "ping")
        results[#results + 1] = ok2 and "ok" or e2.code
      end,
    })
    client:send("go", spinner)
    local queued = troupe.spawn({
      go = function(self, s)
        local ok, e = pcall(s.call_with, s, { timeout = 10000 }, "ping")
        results.queued = ok and "ok" or e.code
      end,
    })
    troupe.sleep(20)
    queued:send("go", spinner)
    troupe.sleep(20)
    assert.is_true(spinner:kill())
    assert.is_true(wait_until(function() return #results == 2 and results.queued end))
    assert.same({ "dead", "dead" }, { results[1], results[2] })
    assert.equals("dead", results.queued)
    assert.is_false(spinner:alive())
  end)

  it("a spinning actor can be stopped gracefully only by kill or shutdown's timeout", function()
    local spinner = troupe.spawn(Busy)
    spinner:send("spin")
    troupe.sleep(15)
    assert.equals("killed", spinner:shutdown(50))
    assert.is_false(spinner:alive())
  end)

  it("cpu_limit: a spinning handler dies with timeout", function()
    local a = troupe.spawn_with({ cpu_limit = 50 }, Busy)
    assert.equals("pong", a:call("ping"))
    local t0 = troupe.now()
    local e = raised(a.call_with, a, { timeout = 10000 }, "spin")
    assert.equals("dead", e.code)
    assert.matches("(timeout)", e.message, 1, true)
    assert.is_true(troupe.now() - t0 < 5000)
    assert.is_false(a:alive())
  end)

  it("cpu_limit: a handler looping inside a C function (a sort comparator) dies with timeout", function()
    local a = troupe.spawn_with({ cpu_limit = 50 }, {
      spin = function() table.sort({ 3, 2, 1 }, function() while true do end end) end,
      gspin = function() return (string.gsub("abc", "%w", function() while true do end end)) end,
    })
    local t0 = troupe.now()
    local e = raised(a.call_with, a, { timeout = 10000 }, "spin")
    assert.equals("dead", e.code)
    assert.matches("(timeout)", e.message, 1, true)
    assert.is_true(troupe.now() - t0 < 5000)
    assert.is_false(a:alive())
    local b = troupe.spawn_with({ cpu_limit = 50 }, {
      gspin = function() return (string.gsub("abc", "%w", function() while true do end end)) end,
    })
    e = raised(b.call_with, b, { timeout = 10000 }, "gspin")
    assert.equals("dead", e.code)
    assert.matches("(timeout)", e.message, 1, true)
    assert.equals("pong", troupe.spawn(Busy):call("ping"))
  end)

  it("spawn options are checked", function()
    assert.has_error(function() troupe.spawn_with({ cpu_limit = -1 }, Busy) end)
    assert.has_error(function() troupe.spawn_with({ max_memory = -1 }, Busy) end)
    assert.has_error(function() troupe.spawn_with({ mailbox = -1 }, Busy) end)
  end)
end)

describe("memory caps", function()
  it("an actor over max_memory dies out_of_memory; the host keeps serving others", function()
    local others = {}
    for i = 1, 5 do others[i] = troupe.spawn(Busy) end
    local hog = troupe.spawn_with({ max_memory = 2 * 1024 * 1024 }, Busy)
    local e = raised(hog.call, hog, "hog")
    assert.equals("dead", e.code)
    assert.matches("(out_of_memory)", e.message, 1, true)
    assert.is_false(hog:alive())
    for i = 1, 5 do assert.equals("pong", others[i]:call("ping")) end
    -- memory went back: a fresh actor can allocate again
    local ok = troupe.spawn_with({ max_memory = 4 * 1024 * 1024 }, Busy)
    assert.equals(1000000, ok:call("grab", 1000000))
  end)

  it("a single huge allocation over the cap fails the same way", function()
    local a = troupe.spawn_with({ max_memory = 1024 * 1024 }, Busy)
    local e = raised(a.call, a, "grab", 8 * 1024 * 1024)
    assert.equals("dead", e.code)
    assert.matches("(out_of_memory)", e.message, 1, true)
  end)

  it("under the cap nothing happens", function()
    local a = troupe.spawn_with({ max_memory = 4 * 1024 * 1024 }, Busy)
    for _ = 1, 50 do assert.equals(100000, a:call("grab", 100000)) end
    assert.is_true(a:alive())
  end)
end)

describe("crash semantics", function()
  local Counter = {
    init = function(self) self.n = 0 end,
    bump = function(self) self.n = self.n + 1; return self.n end,
    bump_then_fail = function(self) self.n = self.n + 100; error("half way") end,
    get = function(self) return self.n end,
    note = function(self) self.n = self.n + 1000; error("in a send") end,
  }

  it("by default a crash discards the state: a restarted child starts fresh", function()
    troupe.behaviour("CrashCounter", Counter)
    local sup = troupe.supervisor{ children = { { id = "c", behaviour = "CrashCounter",
                                                  name = "crash_counter" } } }
    local c = sup:call("whereis_child", "c")
    c:call("bump")
    c:call("bump")
    local e = raised(c.call, c, "bump_then_fail")
    assert.equals("crashed", e.code)
    assert.matches("half way", e.message)
    assert.is_string(e.traceback)
    assert.is_false(c:alive())
    local e2 = raised(c.call, c, "get")
    assert.equals("dead", e2.code)
    assert.is_true(wait_until(function()
      local n = troupe.whereis("crash_counter")
      return n ~= nil and n ~= c
    end))
    assert.equals(0, troupe.whereis("crash_counter"):call("get"))
    sup:shutdown(2000)
  end)

  it("_ON_ERROR = 'reply': the caller gets crashed, the actor keeps its state", function()
    local beh = {}
    for k, v in pairs(Counter) do beh[k] = v end
    beh._ON_ERROR = "reply"
    local c = troupe.spawn(beh)
    c:call("bump")
    local e = raised(c.call, c, "bump_then_fail")
    assert.equals("crashed", e.code)
    assert.matches("half way", e.message)
    assert.matches("stack traceback", e.traceback)
    assert.is_true(c:alive())
    assert.equals(101, c:call("get")) -- whatever the handler left
    c:send("note") -- an error in a send handler: logged, actor kept
    assert.equals(1101, c:call("get"))
    assert.equals(1102, c:call("bump"))
  end)

  it("_ON_ERROR = 'reply' does not cover init", function()
    local c = troupe.spawn({ _ON_ERROR = "reply", init = function() error("no start") end,
                             get = function() return 1 end })
    local e = raised(c.call, c, "get")
    assert.equals("dead", e.code)
    assert.is_false(c:alive())
  end)
end)

describe("hostile input", function()
  it("spawning code with a syntax error raises a load error naming file:line", function()
    local e = raised(troupe.spawn, "return {\n  ok = function() return 1 end,\n  bad = function( end\n}")
    assert.equals("load", e.code)
    assert.matches("behaviour:3:", e.message, 1, true)
    local base = os.tmpname() -- (creates the file)
    os.remove(base)
    local path = base .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write("return {\n\n  x = = 1,\n}\n")
    f:close()
    local e2 = raised(troupe.spawn, path)
    os.remove(path)
    assert.equals("load", e2.code)
    assert.matches(path .. ":3:", e2.message, 1, true)
    -- code that raises while loading is a load error too
    local e3 = raised(troupe.spawn, "error('nope at load')\nreturn {}")
    assert.equals("load", e3.code)
    assert.matches("nope at load", e3.message)
    -- and code that returns no table
    local e4 = raised(troupe.spawn, "return 42\n")
    assert.equals("load", e4.code)
    assert.matches("must return a table", e4.message)
    -- a missing file
    local e5 = raised(troupe.spawn, "/nonexistent/dir/none.lua")
    assert.equals("not_found", e5.code)
  end)

  it("a message over 64 MiB is refused at send time with bad_value", function()
    local a = troupe.spawn(Busy)
    local big = string.rep("x", 64 * 1024 * 1024 + 1)
    local e = raised(a.call, a, "grab", big)
    assert.equals("bad_value", e.code)
    assert.matches("larger than the maximum", e.message)
    local e2 = raised(a.send, a, "grab", big)
    assert.equals("bad_value", e2.code)
    assert.matches("larger than the maximum", e2.message)
    -- many parts that only together go over: refused as a whole, not truncated
    local mib = string.rep("y", 1024 * 1024)
    local parts = {}
    for i = 1, 65 do parts[i] = mib end
    local e3 = raised(a.send, a, "grab", parts)
    assert.equals("bad_value", e3.code)
    local e4 = raised(troupe.spawn, Busy, parts)
    assert.equals("bad_value", e4.code)
    big, parts, mib = nil, nil, nil
    collectgarbage()
    -- a long timeout: the main script's loop clock is only updated when the
    -- loop runs, and building 64 MiB strings under ASan takes seconds
    assert.equals("pong", a:call_with({ timeout = 60000 }, "ping"))
  end)

  it("wrong argument types crash only that actor", function()
    local a = troupe.spawn({ add = function(self, x, y) return x + y end })
    local b = troupe.spawn(Busy)
    assert.equals(3, a:call("add", 1, 2))
    local e = raised(a.call, a, "add", "one", {})
    assert.equals("crashed", e.code)
    assert.matches("attempt to add", e.message)
    assert.is_false(a:alive())
    assert.equals("pong", b:call("ping"))
  end)

  it("an unknown method is no_handler and the actor lives", function()
    local a = troupe.spawn(Busy)
    local e = raised(a.call, a, "no_such_method")
    assert.equals("no_handler", e.code)
    assert.equals("pong", a:call("ping"))
  end)
end)
