-- A backlog of plain messages runs in one coroutine per turn (the runner,
-- lua_host.c): every semantic of one-coroutine-per-message must hold inside
-- such a batch. Main code queues messages without running the loop, so the
-- actor finds them all at once when main code next waits.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local wait_until = helpers.wait_until

-- Handlers close over this table (inline behaviours share the spec's state),
-- so a test sees what happened and in which order.
local log = {}
local function clear() for k in pairs(log) do log[k] = nil end end

local Recorder = {
  a = function(self, i) log[#log + 1] = "a" .. i end,
  b = function(self, i) log[#log + 1] = "b" .. i end,
  get = function(self, i) log[#log + 1] = "get" .. i; return i * 10, "x" end,
  -- waits in the middle of the batch
  nap = function(self, ms) log[#log + 1] = "nap<"; troupe.sleep(ms); log[#log + 1] = ">nap" end,
  ask = function(self, other, v)
    log[#log + 1] = "ask<"
    local r = other:call("get", v)
    log[#log + 1] = ">ask" .. r
    return r
  end,
  refuse = function(self, v) error(troupe.fail("refused " .. v)) end,
  crash = function(self) error("boom in a batch") end,
  halt = function(self) log[#log + 1] = "halt"; troupe.stop(troupe.self()) end,
  die = function(self) log[#log + 1] = "die"; troupe.kill(troupe.self()) end,
  on_stopping = function(self) log[#log + 1] = "stopping" end,
}

local function spawn() return troupe.spawn(Recorder) end

describe("a batch of messages in one turn", function()
  before_each(clear)

  it("keeps their order and gives each call its own results", function()
    local r = spawn()
    for i = 1, 40 do r:send(i % 2 == 0 and "a" or "b", i) end
    local v, x = r:call("get", 7)
    assert.equals(70, v)
    assert.equals("x", x)
    assert.equals(41, #log)
    for i = 1, 40 do assert.equals((i % 2 == 0 and "a" or "b") .. i, log[i]) end
    assert.equals("get7", log[41])
  end)

  it("a handler that sleeps holds the ones after it back", function()
    local r = spawn()
    r:send("a", 1)
    r:send("nap", 20)
    r:send("a", 2)
    r:call("get", 0)
    assert.same({ "a1", "nap<", ">nap", "a2", "get0" }, log)
  end)

  it("a handler that calls another actor holds the ones after it back", function()
    local r, other = spawn(), spawn()
    r:send("a", 1)
    -- a call from main code in the middle of the batch, answered after the
    -- nested call
    r:send("ask", other, 4)
    r:send("a", 2)
    assert.equals(50, r:call("get", 5))
    assert.same({ "a1", "ask<", "get4", ">ask40", "a2", "get5" }, log)
  end)

  it("a handler's own failure answers its caller and the batch goes on", function()
    local r = spawn()
    local results = {}
    -- d1 queues a1 and a call that fails; d2 queues a2, a3 behind them:
    -- r finds all four in its mailbox at once
    local d1 = troupe.spawn({
      go = function(self, t)
        t:send("a", 1)
        results.r = { t:call("refuse", "v") }
      end,
    })
    local d2 = troupe.spawn({ go = function(self, t) t:send("a", 2); t:send("a", 3) end })
    d1:send("go", r)
    d2:send("go", r)
    assert.is_true(wait_until(function() return results.r ~= nil end))
    assert.same({ nil, "refused v" }, results.r) -- nil, v: the handler's own error
    assert.equals(10, r:call("get", 1))
    assert.same({ "a1", "a2", "a3", "get1" }, log)
    -- a send whose handler fails: dropped, the actor keeps going
    r:send("a", 4)
    r:send("refuse", "w")
    r:send("a", 5)
    assert.equals(20, r:call("get", 2))
    assert.same({ "a1", "a2", "a3", "get1", "a4", "a5", "get2" }, log)
    assert.is_true(r:alive())
  end)

  it("a failure from main code's call in a batch, then the next messages", function()
    local r = spawn()
    for i = 1, 3 do r:send("a", i) end
    local v, e = r:call("refuse", 9)
    assert.is_nil(v)
    assert.equals("refused 9", e)
    for i = 4, 6 do r:send("b", i) end
    assert.equals(20, r:call("get", 2))
    assert.same({ "a1", "a2", "a3", "b4", "b5", "b6", "get2" }, log)
  end)

  it("an unknown handler in a batch is answered and skipped", function()
    local r = spawn()
    r:send("a", 1)
    r:send("nosuch", 1) -- a send: logged and dropped
    r:send("a", 2)
    local e = helpers.syserr(r.call, r, "nosuch_call")
    assert.equals("no_handler", e.code)
    assert.matches("nosuch_call", e.message)
    r:send("init") -- hooks are not handlers
    r:send("a", 3)
    assert.equals(30, r:call("get", 3))
    assert.same({ "a1", "a2", "a3", "get3" }, log)
  end)

  it("a crash in a batch kills the actor; the calls queued behind hear it", function()
    local r = spawn()
    r:send("a", 1)
    r:send("crash")
    r:send("a", 2)
    local e = helpers.syserr(r.call, r, "get", 1)
    assert.is_truthy(e.code == "crashed" or e.code == "dead", e.code)
    assert.is_false(r:alive())
    assert.same({ "a1" }, log)
  end)

  it("with _ON_ERROR = 'reply' a raise answers the caller and the batch goes on", function()
    local T = {}
    for k, v in pairs(Recorder) do T[k] = v end
    T._ON_ERROR = "reply"
    local r = troupe.spawn(T)
    r:send("a", 1)
    r:send("crash") -- a send: logged, actor kept
    r:send("a", 2)
    local e = helpers.syserr(r.call, r, "crash")
    assert.equals("crashed", e.code)
    assert.matches("boom in a batch", e.message)
    r:send("a", 3)
    assert.equals(40, r:call("get", 4))
    assert.same({ "a1", "a2", "a3", "get4" }, log)
    assert.is_true(r:alive())
  end)

  it("a handler that kills its own actor ends the batch there", function()
    local r = spawn()
    r:send("a", 1)
    r:send("die")
    r:send("a", 2)
    r:send("a", 3)
    local e = helpers.syserr(r.call, r, "get", 1)
    assert.is_truthy(e.code == "killed" or e.code == "dead", e.code)
    assert.same({ "a1", "die" }, log)
  end)

  it("a stop asked for in the middle of a batch comes before the rest", function()
    local r = spawn()
    r:send("a", 1)
    r:send("halt")
    r:send("a", 2)
    r:send("a", 3)
    assert.is_true(wait_until(function() return not r:alive() end))
    -- the stop goes in the private lane: the runner hands the turn back
    -- and the stop hooks run before the queued sends
    assert.same({ "a1", "halt", "stopping" }, log)
  end)

  it("a handler changed by an earlier message of the batch is the one called", function()
    local B = {
      set = function(self) end,
      v = function(self) log[#log + 1] = "old" end,
    }
    B.set = function(self) B.v = function() log[#log + 1] = "new" end end
    local r = troupe.spawn(B)
    r:send("v")
    r:send("set")
    r:send("v")
    r:send("v")
    assert.is_nil(r:call("set"))
    assert.same({ "old", "new", "new" }, log)
  end)

  it("a long backlog does not keep the others waiting (turns are bounded)", function()
    local progress = { n = 0 }
    local busy = troupe.spawn({ tick = function() progress.n = progress.n + 1 end })
    local other = troupe.spawn({ look = function() progress.seen = progress.n end })
    for _ = 1, 1000 do busy:send("tick") end
    other:send("look")
    assert.is_true(wait_until(function() return progress.n == 1000 and progress.seen end))
    assert.is_true(progress.seen > 0 and progress.seen < 1000,
      "the other actor ran after " .. tostring(progress.seen) .. " of 1000")
  end)

  it("a runaway handler in a batch is preempted; the batch resumes after", function()
    local stop = { now = false }
    local spinner = troupe.spawn({
      a = function(self, i) log[#log + 1] = "a" .. i end,
      spin = function() while not stop.now do end; log[#log + 1] = "spun" end,
    })
    local other = troupe.spawn({ ping = function() return "pong" end })
    spinner:send("a", 1)
    spinner:send("spin")
    spinner:send("a", 2)
    assert.is_true(wait_until(function() return log[1] == "a1" end))
    -- the spinner is inside its batch; others are still served
    for _ = 1, 5 do assert.equals("pong", other:call_with({ timeout = 3000 }, "ping")) end
    assert.same({ "a1" }, log)
    stop.now = true
    assert.is_true(wait_until(function() return #log == 3 end))
    assert.same({ "a1", "spun", "a2" }, log)
  end)

  it("the method-name cache tells apart names that share a prefix or length", function()
    local seen = {}
    local r = troupe.spawn({
      ab = function() seen[#seen + 1] = "ab" end,
      abc = function() seen[#seen + 1] = "abc" end,
      ba = function() seen[#seen + 1] = "ba" end,
      done = function() return #seen end,
    })
    local order = { "ab", "ab", "abc", "ba", "ab", "ba", "ba", "abc" }
    for _, m in ipairs(order) do r:send(m) end
    assert.equals(#order, r:call("done"))
    assert.same(order, seen)
  end)

  it("inherited handlers and a raising __index, in the middle of a batch", function()
    local seen = {}
    local Base = { inh = function(self, i) seen[#seen + 1] = "inh" .. i end }
    local B = setmetatable({
      own = function(self, i) seen[#seen + 1] = "own" .. i end,
      count = function() return #seen end,
    }, {
      __index = function(t, k)
        if k == "explode" then error("index exploded") end
        return Base[k]
      end,
    })
    local r = troupe.spawn(B)
    r:send("own", 1)
    r:send("inh", 2)
    r:send("explode") -- refused (logged), the batch goes on
    r:send("inh", 3)
    r:send("missing", 4)
    r:send("own", 5)
    assert.equals(4, r:call("count"))
    assert.same({ "own1", "inh2", "inh3", "own5" }, seen)
    assert.is_true(r:alive())
  end)

  it("names that share a slot of the name cache, and long names, reach their own handlers", function()
    -- same length, first, middle and last bytes: the same slot of the cache
    local long1 = string.rep("h", 30) .. "1"
    local long2 = string.rep("h", 30) .. "2"
    local r = troupe.spawn({
      abcdef = function() return "abcdef" end,
      aXcdef = function() return "aXcdef" end,
      [long1] = function() return "long1" end,
      [long2] = function() return "long2" end,
    })
    for _ = 1, 3 do -- one message at a time, then in a batch
      assert.equals("abcdef", r:call("abcdef"))
      assert.equals("aXcdef", r:call("aXcdef"))
      assert.equals("long1", r:call(long1))
      assert.equals("long2", r:call(long2))
    end
    local e = helpers.syserr(r.call, r, "abcdeX")
    assert.equals("no_handler", e.code)
  end)

  it("many arguments, tables and returned values inside a batch", function()
    local got = {}
    local r = troupe.spawn({
      many = function(self, ...) got[#got + 1] = select("#", ...); return ... end,
      tab = function(self, t, x) got[#got + 1] = t.k .. x; return t end,
      echo = function(self, ...) return ... end,
    })
    local args = {}
    for i = 1, 40 do args[i] = i end
    r:send("many", table.unpack(args)) -- a send's returned values go nowhere
    r:send("tab", { k = "v" }, 1)
    r:send("many", 1, 2, 3)
    local back = { r:call("echo", table.unpack(args)) }
    assert.same(args, back)
    assert.same({ 40, "v1", 3 }, got)
    -- a batch made only of calls with many values, from an actor
    local res = {}
    local c = troupe.spawn({
      go = function(self, t)
        for i = 1, 5 do res[i] = select("#", t:call("echo", table.unpack(args, 1, 10 * i))) end
      end,
    })
    c:call("go", r)
    assert.same({ 10, 20, 30, 40, 50 }, res)
  end)

  it("a crash's traceback in a batch shows the handler, not the runner", function()
    local r = spawn()
    r:send("a", 1) -- the crashing call is the second message of a batch
    local e = helpers.syserr(r.call, r, "crash")
    assert.equals("crashed", e.code)
    assert.matches("boom in a batch", e.message)
    assert.matches("runner_spec.lua:%d+: in", e.traceback)
    assert.is_nil(e.traceback:find("[C]: in ?", 1, true), e.traceback)
    assert.same({ "a1" }, log)
  end)
end)
