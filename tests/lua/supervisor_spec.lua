-- Supervisors: strategies with their exact restart sets and order, restart
-- types, restart intensity (the supervisor gives up and its parent sees it),
-- nested trees, names that move to restarted children, ordered start and
-- reverse-order shutdown with per-child timeouts, start_child and
-- terminate_child, bad specs.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local wait_until = helpers.wait_until

local log = {}
local function clear() for k in pairs(log) do log[k] = nil end end

troupe.behaviour("Worker", {
  init = function(self, id, slow)
    self.id, self.n, self.slow = id, 0, slow
    log[#log + 1] = "start " .. id
  end,
  on_stopping = function(self)
    if self.slow then log[#log + 1] = "stopping " .. self.id; troupe.sleep(self.slow) end
  end,
  on_stopped = function(self) log[#log + 1] = "stop " .. self.id end,
  bump = function(self) self.n = self.n + 1; return self.n end,
  get = function(self) return self.n end,
  id = function(self) return self.id end,
  boom = function(self) log[#log + 1] = "crash " .. self.id; error("boom " .. self.id) end,
  quit = function(self) log[#log + 1] = "quit " .. self.id; troupe.stop() end,
})

local downs = {}
troupe.behaviour("SupWatcher", {
  watch = function(self, a) return troupe.monitor(a) end,
  spawn_sup = function(self, spec) -- monitored before its init can run
    local s = troupe.supervisor(spec)
    return s, troupe.monitor(s)
  end,
  on_down = function(self, ref, who, reason, detail)
    downs[ref] = { reason = reason, detail = detail }
  end,
})
local function watch(a)
  local w = troupe.spawn("SupWatcher")
  local ref = w:call("watch", a)
  return function()
    assert.is_true(wait_until(function() return downs[ref] ~= nil end), "no on_down")
    return downs[ref].reason, downs[ref].detail
  end
end

local function child(id, extra)
  local c = { id = id, behaviour = "Worker", args = { id } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function addrs(sup)
  local out = {}
  for _, c in ipairs(sup:call("which_children")) do out[c.id] = c.address end
  return out
end

-- Crashes child `id` of `sup` and waits until the supervisor has a new one.
local function crash(sup, id)
  local old = sup:call("whereis_child", id)
  pcall(old.call, old, "boom")
  assert.is_true(wait_until(function()
    local now = sup:alive() and sup:call("whereis_child", id)
    return now and now ~= old and now:alive()
  end), "child " .. id .. " was not restarted")
end

local function sup3(strategy, extra)
  local spec = { strategy = strategy, intensity = 10, period = 5,
                 children = { child("a"), child("b"), child("c") } }
  for k, v in pairs(extra or {}) do spec[k] = v end
  local sup = troupe.supervisor(spec)
  assert.is_true(wait_until(function() return #log == 3 end))
  return sup
end

describe("supervisors", function()
  before_each(clear)

  it("starts children in order; which_children and count_children describe them", function()
    local sup = sup3("one_for_one")
    assert.same({ "start a", "start b", "start c" }, log)
    local wc = sup:call("which_children")
    assert.equals(3, #wc)
    for i, id in ipairs({ "a", "b", "c" }) do
      assert.equals(id, wc[i].id)
      assert.equals("permanent", wc[i].restart)
      assert.is_false(wc[i].supervisor)
      assert.equals(id, wc[i].address:call("id"))
    end
    assert.same({ specs = 3, active = 3 }, sup:call("count_children"))
    assert.is_true(sup:call("whereis_child", "b") == wc[2].address)
    assert.is_nil(sup:call("whereis_child", "zz"))
    sup:shutdown(2000)
  end)

  describe("strategies", function()
    it("one_for_one restarts only the child that died", function()
      local sup = sup3("one_for_one")
      local before = addrs(sup)
      clear()
      crash(sup, "b")
      troupe.sleep(10)
      assert.same({ "crash b", "start b" }, log)
      local after = addrs(sup)
      assert.is_true(after.a == before.a and after.c == before.c)
      assert.is_false(before.b:alive())
      sup:shutdown(2000)
    end)

    it("one_for_all stops the others (reverse order) and restarts all (in order)", function()
      local sup = sup3("one_for_all")
      local before = addrs(sup)
      clear()
      crash(sup, "b")
      assert.is_true(wait_until(function() return #log == 6 end))
      troupe.sleep(10)
      assert.same({ "crash b", "stop c", "stop a", "start a", "start b", "start c" }, log)
      local after = addrs(sup)
      for _, id in ipairs({ "a", "b", "c" }) do
        assert.is_true(after[id] ~= before[id])
        assert.is_false(before[id]:alive())
        assert.is_true(after[id]:alive())
      end
      sup:shutdown(2000)
    end)

    it("rest_for_one restarts the child and those started after it", function()
      local sup = sup3("rest_for_one")
      local before = addrs(sup)
      clear()
      crash(sup, "b")
      assert.is_true(wait_until(function() return #log == 4 end))
      troupe.sleep(10)
      assert.same({ "crash b", "stop c", "start b", "start c" }, log)
      local after = addrs(sup)
      assert.is_true(after.a == before.a)
      assert.is_true(after.b ~= before.b and after.c ~= before.c)
      clear()
      crash(sup, "c") -- the last one: only itself
      troupe.sleep(10)
      assert.same({ "crash c", "start c" }, log)
      sup:shutdown(2000)
    end)
  end)

  describe("restart types", function()
    it("permanent: restarted after any exit, normal ones included", function()
      local sup = troupe.supervisor{ children = { child("p") } }
      local old = sup:call("whereis_child", "p")
      old:call("quit")
      assert.is_true(wait_until(function()
        local now = sup:call("whereis_child", "p")
        return now and now ~= old
      end))
      old = sup:call("whereis_child", "p")
      old:kill()
      assert.is_true(wait_until(function()
        local now = sup:call("whereis_child", "p")
        return now and now ~= old
      end))
      sup:shutdown(2000)
    end)

    it("transient: restarted after a crash, not after a normal exit", function()
      local sup = troupe.supervisor{ children = { child("t", { restart = "transient" }) } }
      crash(sup, "t")
      local t = sup:call("whereis_child", "t")
      t:call("quit")
      assert.is_true(wait_until(function() return sup:call("whereis_child", "t") == nil end))
      troupe.sleep(20)
      assert.is_nil(sup:call("whereis_child", "t"))
      assert.same({ specs = 1, active = 0 }, sup:call("count_children"))
      assert.equals("transient", sup:call("which_children")[1].restart)
      sup:shutdown(2000)
    end)

    it("temporary: never restarted, and forgotten", function()
      local sup = troupe.supervisor{ children = { child("tmp", { restart = "temporary" }),
                                                  child("keep") } }
      local tmp = sup:call("whereis_child", "tmp")
      pcall(tmp.call, tmp, "boom")
      assert.is_true(wait_until(function() return #sup:call("which_children") == 1 end))
      troupe.sleep(20)
      assert.equals("keep", sup:call("which_children")[1].id)
      assert.is_nil(sup:call("whereis_child", "tmp"))
      sup:shutdown(2000)
    end)
  end)

  describe("intensity", function()
    it("too many restarts: the supervisor stops its children and exits crashed", function()
      local sup = troupe.supervisor{ intensity = 2, period = 5,
                                     children = { child("a"), child("x") } }
      local down = watch(sup)
      crash(sup, "x")
      crash(sup, "x")
      local a = sup:call("whereis_child", "a")
      local x = sup:call("whereis_child", "x")
      pcall(x.call, x, "boom")
      local reason, detail = down()
      assert.equals("crashed", reason)
      assert.matches("reached maximum restart intensity", detail.message)
      assert.matches("more than 2 restarts in 5 s", detail.message, 1, true)
      assert.is_false(sup:alive())
      assert.is_true(wait_until(function() return not a:alive() end))
      assert.is_false(x:alive())
    end)

    it("restarts older than the period do not count", function()
      local sup = troupe.supervisor{ intensity = 1, period = 0.1, children = { child("x") } }
      crash(sup, "x")
      troupe.sleep(150)
      crash(sup, "x")
      troupe.sleep(150)
      crash(sup, "x")
      assert.is_true(sup:alive())
      sup:shutdown(2000)
    end)

    it("a parent supervisor sees the child supervisor give up, and restarts it", function()
      local outer = troupe.supervisor{
        intensity = 5,
        children = {
          child("other"),
          { id = "inner", supervisor = { intensity = 1, children = { child("w") } } },
        },
      }
      assert.is_true(wait_until(function() return #log == 2 end))
      local wc = outer:call("which_children")
      assert.is_true(wc[2].supervisor)
      local other = outer:call("whereis_child", "other")
      local inner = outer:call("whereis_child", "inner")
      local down = watch(inner)
      crash(inner, "w")
      local w = inner:call("whereis_child", "w")
      pcall(w.call, w, "boom")
      local reason, detail = down()
      assert.equals("crashed", reason)
      assert.matches("maximum restart intensity", detail.message)
      assert.is_true(wait_until(function()
        local now = outer:call("whereis_child", "inner")
        return now and now ~= inner and now:alive()
      end))
      local inner2 = outer:call("whereis_child", "inner")
      local w2 = inner2:call("whereis_child", "w")
      assert.equals(0, w2:call("get")) -- a fresh w
      assert.is_true(outer:call("whereis_child", "other") == other) -- untouched
      outer:shutdown(2000)
    end)
  end)

  describe("nested trees", function()
    it("stop from the top down, and a dying parent takes the tree with it", function()
      local top = troupe.supervisor{ children = {
        child("a"),
        { id = "mid", supervisor = { children = {
          child("b"),
          { id = "low", supervisor = { children = { child("c") } } },
        } } },
      } }
      assert.is_true(wait_until(function() return #log == 3 end))
      assert.same({ "start a", "start b", "start c" }, log)
      local mid = top:call("whereis_child", "mid")
      local low = mid:call("whereis_child", "low")
      local c = low:call("whereis_child", "c")
      assert.equals("c", c:call("id"))
      clear()
      assert.equals("stopped", top:shutdown(3000))
      assert.same({ "stop c", "stop b", "stop a" }, log)
      assert.is_false(mid:alive())
      assert.is_false(low:alive())
      assert.is_false(c:alive())
    end)

    it("a killed supervisor takes its children down (linked)", function()
      local sup = sup3("one_for_one")
      local kids = addrs(sup)
      sup:kill()
      for _, id in ipairs({ "a", "b", "c" }) do
        assert.is_true(wait_until(function() return not kids[id]:alive() end))
      end
    end)
  end)

  describe("names", function()
    it("move to the restarted child: callers using the name never notice", function()
      local sup = troupe.supervisor{ children = { child("svc", { name = "svc" }) } }
      assert.is_true(wait_until(function() return troupe.whereis("svc") ~= nil end))
      assert.equals(1, troupe.whereis("svc"):call("bump"))
      for round = 1, 3 do
        local old = troupe.whereis("svc")
        pcall(old.call, old, "boom")
        assert.is_true(wait_until(function()
          local now = troupe.whereis("svc")
          return now ~= nil and now ~= old
        end))
        local now = troupe.whereis("svc")
        assert.is_true(now == sup:call("whereis_child", "svc"))
        assert.equals(1, now:call("bump")) -- a fresh child answers under the name
        assert.equals("svc", now:call("id"))
      end
      -- a client that only ever uses the name keeps being served
      local served = 0
      for _ = 1, 20 do
        local a = troupe.whereis("svc")
        if a and pcall(a.call, a, "get") then served = served + 1 end
      end
      assert.equals(20, served)
      sup:shutdown(2000)
      assert.is_nil(troupe.whereis("svc"))
    end)

    it("a supervisor can itself be named", function()
      local sup = troupe.supervisor({ children = { child("a") } }, { name = "top_sup" })
      assert.is_true(troupe.whereis("top_sup") == sup)
      sup:shutdown(2000)
    end)
  end)

  describe("shutdown", function()
    it("stops children in reverse order; a child over its shutdown time is killed", function()
      local sup = troupe.supervisor{ children = {
        child("a"),
        child("b", { args = { "b", 5000 }, shutdown = 50 }),
        child("c"),
      } }
      assert.is_true(wait_until(function() return #log == 3 end))
      local b = sup:call("whereis_child", "b")
      local bdown = watch(b)
      clear()
      local t0 = troupe.now()
      assert.equals("stopped", sup:shutdown(5000))
      assert.is_true(troupe.now() - t0 < 2500, "took " .. (troupe.now() - t0) .. " ms")
      assert.same({ "stop c", "stopping b", "stop a" }, log)
      assert.equals("killed", (bdown()))
    end)
  end)

  describe("start_child and terminate_child", function()
    it("start_child adds and starts a child; terminate_child stops and removes it", function()
      local sup = troupe.supervisor{ children = { child("a") } }
      local d = sup:call("start_child", child("d", { restart = "transient" }))
      assert.equals("d", d:call("id"))
      assert.is_true(sup:call("whereis_child", "d") == d)
      assert.same({ specs = 2, active = 2 }, sup:call("count_children"))
      -- the added child is supervised
      crash(sup, "d")
      local d2 = sup:call("whereis_child", "d")
      assert.equals("d", d2:call("id")) -- its init has run
      clear()
      assert.is_true(sup:call("terminate_child", "d"))
      assert.same({ "stop d" }, log)
      assert.is_false(d2:alive())
      assert.is_nil(sup:call("whereis_child", "d"))
      assert.same({ specs = 1, active = 1 }, sup:call("count_children"))
      troupe.sleep(20)
      assert.same({ "stop d" }, log) -- not restarted
      sup:shutdown(2000)
    end)

    it("refuses duplicates, bad specs and unknown ids with a failure value", function()
      local sup = troupe.supervisor{ children = { child("a") } }
      local r, err = sup:call("start_child", child("a"))
      assert.is_nil(r)
      assert.equals("duplicate child id 'a'", err)
      r, err = sup:call("start_child", { id = "x" })
      assert.is_nil(r)
      assert.matches("child x: behaviour %(or supervisor%) is required", err)
      r, err = sup:call("start_child", { behaviour = "Worker" })
      assert.is_nil(r)
      assert.matches("id is required", err)
      r, err = sup:call("start_child", child("y", { restart = "sometimes" }))
      assert.is_nil(r)
      assert.matches("restart must be permanent, transient or temporary", err)
      r, err = sup:call("start_child", { id = "n", supervisor = { strategy = "nope" } })
      assert.is_nil(r)
      assert.matches("unknown strategy 'nope'", err)
      r, err = sup:call("terminate_child", "nope")
      assert.is_nil(r)
      assert.equals("no child 'nope'", err)
      assert.same({ specs = 1, active = 1 }, sup:call("count_children"))
      sup:shutdown(2000)
    end)
  end)

  describe("bad specs", function()
    local function refused(spec, pattern)
      local ok, e = pcall(troupe.supervisor, spec)
      assert.is_false(ok, "a bad spec was accepted")
      assert.matches(pattern, tostring(e))
    end

    it("fail at troupe.supervisor with a message naming the problem", function()
      refused({ strategy = "one_for_some" }, "unknown strategy 'one_for_some'")
      refused({ children = { { behaviour = "Worker" } } }, "id is required")
      refused({ children = { { id = "q" } } }, "child q: behaviour %(or supervisor%) is required")
      refused({ children = { child("a"), child("a") } }, "duplicate child id 'a'")
      refused({ children = { child("a", { restart = "always" }) } },
              "child a: restart must be permanent, transient or temporary")
      refused({ children = { child("a", { args = 5 }) } }, "child a: args must be a list")
      refused({ children = { child("a", { shutdown = -1 }) } },
              "child a: shutdown must be a time in ms")
      refused({ children = { { id = "n", supervisor = { strategy = "nope" } } } },
              "unknown strategy 'nope'")
      refused("not a table", "spec")
    end)

    it("a child whose behaviour does not exist brings the supervisor down, named", function()
      local w = troupe.spawn("SupWatcher")
      local sup, ref = w:call("spawn_sup", { children = { { id = "ghost", behaviour = "NoSuchThing" } } })
      assert.is_true(wait_until(function() return downs[ref] ~= nil end))
      assert.equals("crashed", downs[ref].reason)
      assert.matches("no behaviour named 'NoSuchThing'", downs[ref].detail.message)
      assert.is_false(sup:alive())
    end)

    it("children may be code strings or files", function()
      local sup = troupe.supervisor{ children = {
        { id = "code", behaviour = "return { hi = function() return 'hi from code' end }" },
      } }
      assert.equals("hi from code", sup:call("whereis_child", "code"):call("hi"))
      sup:shutdown(2000)
    end)
  end)
end)
