-- Lifetimes: stale addresses, hooks and vetoes, kill, owned actors and weak
-- addresses, pending calls failing at once when the callee goes away.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local raised = helpers.syserr
local wait_until = helpers.wait_until

local Simple = troupe.behaviour("Simple", {
  init = function(self, tag) self.tag = tag end,
  tag = function(self) return self.tag end,
  nap = function(self, ms) troupe.sleep(ms); return "rested" end,
  boom = function(self, ms)
    if ms then troupe.sleep(ms) end
    error("boom")
  end,
  quit = function(self) troupe.stop(); return "quitting" end,
})

describe("lifetimes", function()
  describe("stale addresses", function()
    it("an address of a dead actor is dead, even after many more spawns", function()
      local old = troupe.spawn(Simple, "old")
      local id = old:id()
      old:stop()
      troupe.sleep(2)
      assert.is_false(old:alive())
      local fresh = {}
      for i = 1, 300 do fresh[i] = troupe.spawn(Simple, i) end
      for i = 1, 300 do assert.is_true(fresh[i]:id() ~= id) end
      assert.is_false(old:alive())
      local e = raised(old.call, old, "tag")
      assert.equals("dead", e.code)
      local ok, e2 = old:send("tag")
      assert.is_nil(ok)
      assert.equals("dead", e2.code)
      -- the newcomers answer for themselves
      assert.equals(300, fresh[300]:call("tag"))
      for i = 1, 300 do fresh[i]:kill() end
    end)

    it("self tables keep their registry slots while other refs are taken in between", function()
      -- the host hands out registry slots for self tables at the border it
      -- tracks; refs taken by others meanwhile (luaL_ref: the border + 1)
      -- must be stepped over, never overwritten
      local reg = debug.getregistry()
      local mine, actors = {}, {}
      for i = 1, 40 do
        actors[i] = troupe.spawn(Simple, i)
        if i % 3 == 0 then
          local k = #reg + 1
          reg[k] = "taken " .. i
          mine[k] = "taken " .. i
        end
      end
      for i = 1, 40 do assert.equals(i, actors[i]:call("tag")) end
      for k, v in pairs(mine) do assert.equals(v, reg[k]) end
      for i = 1, 40 do actors[i]:kill() end
      for k in pairs(mine) do reg[k] = false end
    end)

    it("ids are unique and addresses compare by value", function()
      local a = troupe.spawn(Simple, 1)
      local b = troupe.spawn(Simple, 2)
      assert.is_true(a:id() ~= b:id())
      assert.is_false(a == b)
      assert.equals("integer", math.type(a:id()))
      local a2 = troupe.spawn({ give = function(self, x) return x end }):call("give", a)
      assert.is_true(a == a2)
      assert.is_true(a:weak() == a)
      local t = { [a] = "a" }
      assert.equals("a", t[a2]) -- the same value: usable as a table key
    end)
  end)

  describe("hooks", function()
    it("run in order: init, on_start, handlers, on_stopping, on_stopped", function()
      local log = {}
      local a = troupe.spawn({
        init = function(self, x, y) log[#log + 1] = "init " .. x .. " " .. y; self.x = x end,
        on_start = function(self) log[#log + 1] = "on_start " .. self.x end,
        work = function(self) log[#log + 1] = "work" end,
        on_stopping = function(self) log[#log + 1] = "on_stopping" end,
        on_stopped = function(self) log[#log + 1] = "on_stopped" end,
      }, "a", "b")
      a:call("work")
      a:stop()
      troupe.sleep(5)
      assert.same({ "init a b", "on_start a", "work", "on_stopping", "on_stopped" }, log)
      assert.is_false(a:alive())
    end)

    it("init runs before the first message, even one sent at once", function()
      local log = {}
      local a = troupe.spawn({
        init = function(self) log[#log + 1] = "init" end,
        m = function(self, i) log[#log + 1] = i end,
      })
      a:send("m", 1)
      a:send("m", 2)
      a:call("m", 3)
      assert.same({ "init", 1, 2, 3 }, log)
    end)

    it("init gets its arguments whether they wait in the actor or in an envelope", function()
      -- up to 24 bytes of arguments wait in the actor's record until its
      -- first turn; longer ones, and owned addresses, come in an envelope
      local Echo = {
        init = function(self, ...) self.args = table.pack(...) end,
        args = function(self) return table.unpack(self.args, 1, self.args.n) end,
      }
      local P = table.pack
      local cases = {
        P(), P(1), P(-7, true, false), P(nil, 2), P(1.5), P("short"),
        P(string.rep("x", 21)), P(string.rep("y", 22)), P(string.rep("z", 40)),
        P(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25),
        P(2 ^ 53, -2 ^ 40, "ab"), P(troupe.spawn({})),
      }
      local actors = {}
      for i, args in ipairs(cases) do actors[i] = troupe.spawn(Echo, table.unpack(args, 1, args.n)) end
      for i, args in ipairs(cases) do
        local got = table.pack(actors[i]:call("args"))
        assert.equals(args.n, got.n, "case " .. i)
        for k = 1, args.n do assert.equals(args[k], got[k], "case " .. i .. " value " .. k) end
      end
      for _, a in ipairs(actors) do a:kill() end
    end)

    it("init and on_start: waits, spawns, inherited hooks, hooks added late", function()
      -- an init function the behaviour table holds runs directly; on_start
      -- is looked up once init has returned; a behaviour with a metatable
      -- (inherited hooks) goes through the prelude's runner
      local log = {}
      local helper = troupe.spawn({ twice = function(self, x) return 2 * x end })
      local Waits = {
        init = function(self, x)
          troupe.sleep(2)
          self.x = helper:call("twice", x)
          self.child = troupe.spawn({ init = function(c) c.ok = true end,
                                      ok = function(c) return c.ok end })
        end,
        on_start = function(self) log[#log + 1] = "on_start " .. self.x end,
        x = function(self) return self.x, self.child:call("ok") end,
      }
      local w = troupe.spawn(Waits, 21)
      assert.same({ 42, true }, { w:call("x") })
      assert.same({ "on_start 42" }, log)
      -- on_start alone; init = false; neither
      local s = troupe.spawn({ on_start = function(self) self.s = "started" end,
                               s = function(self) return self.s end })
      assert.equals("started", s:call("s"))
      local f = troupe.spawn({ init = false, on_start = false, v = function() return "v" end }, 1, 2)
      assert.equals("v", f:call("v"))
      local n = troupe.spawn({ v = function() return "n" end }, "ignored")
      assert.equals("n", n:call("v"))
      -- inherited through __index
      local Base = { init = function(self, y) self.y = y end,
                     on_start = function(self) self.y = self.y .. "+" end }
      local Child = setmetatable({ y = function(self) return self.y end }, { __index = Base })
      assert.equals("c+", troupe.spawn(Child, "c"):call("y"))
      -- an init that gives its behaviour an on_start: it runs, as it always did
      local Late = { v = function(self) return self.started end }
      Late.init = function(self) Late.on_start = function(me) me.started = "late" end end
      assert.equals("late", troupe.spawn(Late):call("v"))
      -- an init that is not callable crashes the actor, as a call of it would
      local bad = troupe.spawn({ init = 42 })
      troupe.sleep(2)
      assert.is_false(bad:alive())
      -- an init raising: the actor dies, on_start does not run
      local ran = false
      local r = troupe.spawn({ init = function() error("no") end,
                               on_start = function() ran = true end })
      troupe.sleep(2)
      assert.is_false(r:alive())
      assert.is_false(ran)
      -- troupe.fail from init: the actor lives, on_start does not run, and a
      -- later handler that returns does not run it either
      local k = troupe.spawn({ init = function() error(troupe.fail("soft")) end,
                               on_start = function(self) self.st = true end,
                               st = function(self) return self.st == true end })
      assert.is_false(k:call("st"))
      assert.is_false(k:call("st"))
      for _, a in ipairs({ helper, w, s, f, n, k }) do a:kill() end
    end)

    it("an actor stopped or killed before its init ran runs no init", function()
      local log = {}
      local B = {
        init = function(self, x) log[#log + 1] = "init " .. x end,
        on_stopped = function(self) log[#log + 1] = "stopped" end,
      }
      local a = troupe.spawn(B, 1)
      local b = troupe.spawn(B, 2)
      assert.is_true(b:kill()) -- before its first turn
      a:stop() -- queued behind its init: init runs, then the stop
      troupe.sleep(5)
      assert.is_false(a:alive())
      assert.is_false(b:alive())
      assert.same({ "init 1", "stopped" }, log)
    end)

    it("on_stopping returning false vetoes a graceful stop", function()
      local log = {}
      local a = troupe.spawn({
        on_stopping = function(self)
          log[#log + 1] = "asked"
          return self.allow == true
        end,
        on_stopped = function(self) log[#log + 1] = "stopped" end,
        allow = function(self) self.allow = true end,
        hi = function() return "still here" end,
      })
      assert.is_true(a:stop())
      troupe.sleep(5)
      assert.is_true(a:alive())
      assert.equals("still here", a:call("hi"))
      a:call("allow")
      a:stop()
      troupe.sleep(5)
      assert.is_false(a:alive())
      assert.same({ "asked", "asked", "stopped" }, log)
    end)

    it("returning nil (not false) from on_stopping does not veto", function()
      local a = troupe.spawn({ on_stopping = function() end })
      a:stop()
      troupe.sleep(5)
      assert.is_false(a:alive())
    end)

    it("kill ignores the veto and runs no hooks", function()
      local log = {}
      local a = troupe.spawn({
        on_stopping = function() log[#log + 1] = "on_stopping"; return false end,
        on_stopped = function() log[#log + 1] = "on_stopped" end,
        hi = function() return "hi" end,
      })
      assert.equals("hi", a:call("hi"))
      assert.is_true(a:kill())
      assert.is_false(a:alive())
      troupe.sleep(5)
      assert.same({}, log)
    end)

    it("an actor stops itself with troupe.stop(); the stop comes after the current message", function()
      local log = {}
      local a = troupe.spawn({
        quit = function(self) troupe.stop(); log[#log + 1] = "after stop()"; return "bye" end,
        on_stopped = function() log[#log + 1] = "on_stopped" end,
      })
      assert.equals("bye", a:call("quit"))
      troupe.sleep(5)
      assert.same({ "after stop()", "on_stopped" }, log)
      assert.is_false(a:alive())
    end)

    it("an erroring on_stopping or on_stopped does not keep the actor alive", function()
      local a = troupe.spawn({ on_stopping = function() error("oops") end })
      a:stop()
      troupe.sleep(5)
      assert.is_false(a:alive())
      local b = troupe.spawn({ on_stopped = function() error("oops") end })
      b:stop()
      troupe.sleep(5)
      assert.is_false(b:alive())
    end)

    it("a crash runs no stop hooks", function()
      local log = {}
      local a = troupe.spawn({
        boom = function() error("x") end,
        on_stopping = function() log[#log + 1] = "on_stopping" end,
        on_stopped = function() log[#log + 1] = "on_stopped" end,
      })
      pcall(a.call, a, "boom")
      assert.same({}, log)
    end)
  end)

  describe("pending calls fail at once", function()
    it("queued calls get dead when the callee crashes", function()
      local a = troupe.spawn(Simple)
      local client = troupe.spawn({
        go = function(self, target) pcall(target.call, target, "boom", 20) end,
      })
      client:send("go", a) -- a is now busy for 20 ms, then crashes
      troupe.sleep(2)
      local t0 = troupe.now()
      local e = raised(a.call_with, a, { timeout = 3000 }, "tag")
      assert.equals("dead", e.code)
      assert.is_true(troupe.now() - t0 < 1000)
    end)

    it("the call being handled gets dead when the callee is killed", function()
      local a = troupe.spawn(Simple)
      local killer = troupe.spawn({
        later = function(self, target, ms) troupe.sleep(ms); target:kill() end,
      })
      killer:send("later", a, 20)
      local t0 = troupe.now()
      local e = raised(a.call_with, a, { timeout = 3000 }, "nap", 2000)
      assert.equals("dead", e.code)
      assert.matches("killed", e.message)
      assert.is_true(troupe.now() - t0 < 1000)
    end)

    it("queued calls get dead when the callee stops gracefully", function()
      local a = troupe.spawn(Simple)
      local results = {}
      local clients = {}
      for i = 1, 3 do
        clients[i] = troupe.spawn({
          go = function(self, target)
            local ok, e = pcall(target.call_with, target, { timeout = 3000 }, "tag")
            self.r = ok and "ok" or e.code
          end,
          r = function(self) return self.r end,
        })
      end
      a:send("nap", 20)
      a:send("quit")
      troupe.sleep(2)
      for i = 1, 3 do clients[i]:send("go", a) end
      troupe.sleep(40)
      for i = 1, 3 do results[i] = clients[i]:call("r") end
      assert.same({ "dead", "dead", "dead" }, results)
    end)

    it("a caller that dies while waiting does not disturb the callee", function()
      local a = troupe.spawn(Simple, "callee")
      local client = troupe.spawn({
        go = function(self, target) return target:call("nap", 20) end,
      })
      client:send("go", a)
      troupe.sleep(2)
      client:kill()
      troupe.sleep(30) -- the reply finds nobody
      assert.equals("callee", a:call("tag"))
    end)
  end)

  describe("owned actors and weak addresses", function()
    it("an owned actor stops when its last strong address is collected", function()
      local stopped = false
      local a = troupe.spawn_with({ owned = true }, {
        on_stopped = function() stopped = true end,
        hi = function() return "hi" end,
      })
      local w = a:weak()
      assert.equals("hi", a:call("hi"))
      assert.is_true(w:upgrade() == a)
      a = nil
      collectgarbage()
      collectgarbage()
      troupe.sleep(5)
      assert.is_true(stopped)
      assert.is_false(w:alive())
      assert.is_nil(w:upgrade())
    end)

    it("a weak address alone does not keep it alive", function()
      local w
      do
        local a = troupe.spawn_with({ owned = true }, Simple, "x")
        w = a:weak()
      end
      assert.is_true(w:alive())
      collectgarbage()
      collectgarbage()
      troupe.sleep(5)
      assert.is_false(w:alive())
      assert.is_nil(w:upgrade())
      assert.matches("^<weak %d+ dead>$", tostring(w))
    end)

    it("any strong address keeps it alive: a copy, or one held by another actor", function()
      local keeper = troupe.spawn({
        keep = function(self, a) self.a = a end,
        drop = function(self) self.a = nil; collectgarbage(); collectgarbage() end,
      })
      local a = troupe.spawn_with({ owned = true }, Simple, "kept")
      local w = a:weak()
      keeper:call("keep", a)
      a = nil
      collectgarbage()
      collectgarbage()
      troupe.sleep(5)
      assert.is_true(w:alive())
      local up = w:upgrade()
      assert.equals("kept", up:call("tag"))
      up = nil
      keeper:call("drop")
      collectgarbage()
      collectgarbage()
      troupe.sleep(5)
      assert.is_false(w:alive())
    end)

    it("an actor that is not owned lives on without addresses", function()
      local w
      do
        local a = troupe.spawn(Simple, "free")
        w = a:weak()
      end
      collectgarbage()
      collectgarbage()
      troupe.sleep(5)
      assert.is_true(w:alive())
      local a = w:upgrade()
      assert.equals("free", a:call("tag"))
      a:kill()
    end)

    it("weak addresses print, compare and have no messaging methods", function()
      local a = troupe.spawn(Simple)
      local w = a:weak()
      assert.matches("^<weak %d+ Simple>$", tostring(w))
      assert.equals(a:id(), w:id())
      assert.is_nil(w.send)
      assert.is_nil(w.call)
      assert.is_true(w:alive())
      a:kill()
      assert.is_false(w:alive())
      assert.is_nil(w:upgrade())
    end)
  end)

  -- A strong address of an owned actor counts wherever it is: in a message
  -- on its way (a send, a call's arguments, a reply, spawn arguments, a
  -- timer's message), as in a variable. Each case also checks that it stops
  -- once the last holder and every message are gone (no reference leaks).
  describe("owned addresses in flight", function()
    local W = { ping = function() return "pong" end }
    local Holder = {
      init = function(self, w) self.w = w end,
      hold = function(self, ms) troupe.sleep(ms) end,
      keep = function(self, w) self.w = w end,
      drop = function(self) self.w = nil; collectgarbage(); collectgarbage() end,
      ask = function(self) return self.w:alive(), pcall(self.w.call, self.w, "ping") end,
      -- a call to `target` carrying w, from a coroutine that is killed meanwhile
      call_keep = function(self, target, w) target:call("keep", w) end,
      -- a timer whose message carries w
      arm = function(self, ms, w) troupe.send_after(ms, "keep", w) end,
      arm_every = function(self, ms, w) self.t = troupe.send_every(ms, "keep", w) end,
      cancel = function(self) self.t:cancel(); self.t = nil end,
      -- deferred: the reply leaves, then the spawner drops its address
      make = function(self)
        local tok = troupe.defer()
        local w = troupe.spawn_with({ owned = true }, W)
        tok:reply(w)
        w = nil
        collectgarbage()
        collectgarbage()
      end,
    }
    local function gc() collectgarbage(); collectgarbage() end
    -- holders are killed after each case, passed or failed (a repeating
    -- timer left behind would keep the loop busy)
    local live = {}
    local function holder(opts, ...)
      local a = troupe.spawn_with(opts or {}, Holder, ...)
      live[#live + 1] = a
      return a
    end
    after_each(function()
      for i, a in ipairs(live) do a:kill(); live[i] = nil end
    end)
    local function gone(w) return wait_until(function() return not w:alive() end) end
    -- h holds a live, answering w; once h drops it, w stops (no leak)
    local function held_then_released(h, weak)
      local alive, ok, v = h:call("ask")
      assert.is_true(alive)
      assert.is_true(ok)
      assert.equals("pong", v)
      h:call("drop")
      gc()
      assert.is_true(gone(weak), "leaked: the owned actor outlived every address")
      h:kill()
    end

    it("a send waiting in a busy mailbox keeps it alive, then it stops", function()
      local b = holder()
      b:send("hold", 50) -- b is busy for a while
      local w = troupe.spawn_with({ owned = true }, W)
      local weak = w:weak()
      b:send("keep", w) -- the only other reference is in flight
      w = nil
      gc()
      troupe.sleep(100)
      held_then_released(b, weak)
    end)

    it("a call's arguments keep it alive though the caller is gone", function()
      local b, c = holder(), holder()
      b:send("hold", 50)
      local w = troupe.spawn_with({ owned = true }, W)
      local weak = w:weak()
      c:send("call_keep", b, w)
      troupe.sleep(5) -- c calls b (busy): the call waits in b's mailbox
      c:kill()        -- c's stack (and its address) is gone
      w = nil
      gc()
      troupe.sleep(100)
      held_then_released(b, weak)
    end)

    it("a reply keeps it alive until the caller has it", function()
      local m = holder()
      local w = m:call("make")
      assert.is_true(w:alive())
      assert.equals("pong", w:call("ping"))
      local weak = w:weak()
      w = nil
      gc()
      assert.is_true(gone(weak), "leaked: the owned actor outlived every address")
      m:kill()
    end)

    it("spawn arguments keep it alive until init has them", function()
      local w = troupe.spawn_with({ owned = true }, W)
      local weak = w:weak()
      local h = holder(nil, w) -- init has not run yet
      w = nil
      gc()
      troupe.sleep(20)
      held_then_released(h, weak)
    end)

    it("a timer's message keeps it alive until it fires", function()
      local h = holder()
      local w = troupe.spawn_with({ owned = true }, W)
      local weak = w:weak()
      h:call("arm", 40, w)
      w = nil
      gc()
      h:call("hold", 1) -- (a turn of h, whose stack held the address)
      gc()
      troupe.sleep(10)
      assert.is_true(weak:alive(), "stopped while a timer's message held its address")
      troupe.sleep(60)
      held_then_released(h, weak)
    end)

    it("a repeating timer holds it until cancelled", function()
      local h = holder()
      local w = troupe.spawn_with({ owned = true }, W)
      local weak = w:weak()
      h:call("arm_every", 5, w)
      w = nil
      gc()
      troupe.sleep(30)
      h:call("drop") -- the next tick brings it back
      gc()
      troupe.sleep(30)
      assert.is_true(weak:alive(), "stopped while a timer's message held its address")
      h:call("cancel")
      h:call("drop")
      gc()
      assert.is_true(gone(weak), "leaked: a cancelled timer kept its reference")
      h:kill()
    end)

    it("messages dropped on the way release their references", function()
      local w = troupe.spawn_with({ owned = true }, W)
      local weak = w:weak()
      -- to a dead actor
      local d = holder()
      d:kill()
      assert.is_nil((d:send("keep", w)))
      assert.is_false((pcall(d.call, d, "keep", w)))
      -- to a missing handler (a send and a call), in a table too
      local h = holder()
      h:send("nope", w)
      h:send("nope", { list = { w, w } })
      assert.is_false((pcall(h.call, h, "nope", w)))
      -- left in a mailbox discarded at death
      local b = holder()
      b:send("hold", 1000)
      b:send("keep", w)
      b:send("keep", { w })
      troupe.sleep(5)
      b:kill()
      -- waiting for room when the sender dies
      local full = holder({ mailbox = 1 })
      full:send("hold", 1000)
      troupe.sleep(5)
      full:send("hold", 1) -- the mailbox is full now
      local c = holder()
      c:send("call_keep", full, w) -- waits for room
      troupe.sleep(5)
      c:kill()
      full:kill()
      w = nil
      gc()
      assert.is_true(gone(weak), "leaked: a dropped message kept its reference")
      h:kill()
    end)

    it("a weak address in flight does not keep it alive", function()
      local b = holder()
      b:send("hold", 50)
      local w = troupe.spawn_with({ owned = true }, W)
      local weak = w:weak()
      b:send("keep", weak)
      w = nil
      gc()
      assert.is_true(gone(weak))
      b:kill()
    end)
  end)

  it("a killed sleeping actor leaves nothing behind for troupe.run to wait for", function()
    local a = troupe.spawn(Simple)
    a:send("nap", 3000)
    troupe.sleep(5)
    a:kill()
    local t0 = troupe.now()
    troupe.run()
    assert.is_true(troupe.now() - t0 < 1000, "troupe.run waited " .. (troupe.now() - t0) .. " ms")
  end)

  it("stats count actors", function()
    local st = troupe.stats()
    assert.is_number(st.actors)
    assert.is_number(st.spawned)
    local a = troupe.spawn(Simple)
    assert.equals(st.spawned + 1, troupe.stats().spawned)
    assert.equals(st.actors + 1, troupe.stats().actors)
    a:kill()
    assert.equals(st.actors, troupe.stats().actors)
  end)
end)
