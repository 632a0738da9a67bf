-- Links: both ways, abnormal exits propagate (linked_exit), normal ones do
-- not, trap_exit turns exits into on_exit messages, unlink, spawn_with{link},
-- long chains (iterative, no stack overflow), misuse.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local wait_until = helpers.wait_until

local downs = {}
local exits = {}

local Peer = troupe.behaviour("Peer", {
  init = function(self, prev) if prev then troupe.link(prev) end end,
  ping = function() return "pong" end,
  link = function(self, a) return troupe.link(a) end,
  unlink = function(self, a) return troupe.unlink(a) end,
  trap = function(self, on) return troupe.trap_exit(on) end,
  try_link = function(self, a)
    local ok, e = pcall(troupe.link, a)
    if ok then return "linked" end
    return troupe.errcode(e) or "not a system error", tostring(e)
  end,
  quit = function() troupe.stop(); return "bye" end,
  boom = function() error("bang") end,
  nap = function(self, ms) troupe.sleep(ms); return "rested" end,
  kill_peer = function(self, a) a:kill(); return "killed it" end,
  spawn_linked = function(self, beh, ...)
    return troupe.spawn_with({ link = true }, beh or "Peer", ...)
  end,
  watch = function(self, a) return troupe.monitor(a) end,
  on_down = function(self, ref, who, reason, detail)
    downs[#downs + 1] = { ref = ref, who = who, reason = reason, detail = detail }
  end,
  on_exit = function(self, who, reason, detail)
    exits[#exits + 1] = { me = troupe.self(), who = who, reason = reason, detail = detail }
  end,
})

local function clear()
  for k in pairs(downs) do downs[k] = nil end
  for k in pairs(exits) do exits[k] = nil end
end

local function dead(a) return wait_until(function() return not a:alive() end) end

-- A watcher that records downs; returns the reason once `a` is down.
local watcher
local function watch(a)
  watcher = watcher and watcher:alive() and watcher or troupe.spawn(Peer)
  return watcher:call("watch", a)
end
local function reason_of(ref)
  local got
  assert.is_true(wait_until(function()
    for _, d in ipairs(downs) do if d.ref == ref then got = d; return true end end
  end), "no on_down")
  return got.reason, got.detail
end

describe("links", function()
  before_each(clear)

  it("a crash takes the linked peer down with linked_exit, both ways", function()
    local a, b = troupe.spawn(Peer), troupe.spawn(Peer)
    assert.is_true(a:call("link", b))
    local ra, rb = watch(a), watch(b)
    pcall(b.call, b, "boom")
    assert.equals("crashed", (reason_of(rb)))
    local r, detail = reason_of(ra)
    assert.equals("linked_exit", r)
    assert.matches("linked actor <actor " .. b:id(), detail.message, 1, true)
    assert.matches("(crashed)", detail.message, 1, true)

    local c, d = troupe.spawn(Peer), troupe.spawn(Peer)
    assert.is_true(d:call("link", c)) -- the other direction
    local rc = watch(c)
    pcall(d.call, d, "boom")
    assert.equals("linked_exit", (reason_of(rc)))
  end)

  it("kill propagates (killed is abnormal)", function()
    local a, b = troupe.spawn(Peer), troupe.spawn(Peer)
    a:call("link", b)
    local ra = watch(a)
    b:kill()
    local r, detail = reason_of(ra)
    assert.equals("linked_exit", r)
    assert.matches("(killed)", detail.message, 1, true)
  end)

  it("normal and stopped exits do not propagate", function()
    local a, b = troupe.spawn(Peer), troupe.spawn(Peer)
    a:call("link", b)
    local rb = watch(b)
    assert.equals("bye", b:call("quit"))
    assert.equals("normal", (reason_of(rb)))
    troupe.sleep(5)
    assert.equals("pong", a:call("ping"))

    local c = troupe.spawn(Peer)
    a:call("link", c)
    assert.equals("stopped", c:shutdown(1000))
    troupe.sleep(5)
    assert.equals("pong", a:call("ping"))
    a:kill()
  end)

  it("a peer that dies while its own handler runs dies when the handler returns", function()
    local a, b = troupe.spawn(Peer), troupe.spawn(Peer)
    a:call("link", b)
    local ra = watch(a)
    assert.equals("killed it", a:call("kill_peer", b)) -- its reply still arrives
    assert.equals("linked_exit", (reason_of(ra)))
  end)

  it("a peer waiting in a call or a sleep dies at once, and its caller hears dead", function()
    local a, b = troupe.spawn(Peer), troupe.spawn(Peer)
    a:call("link", b)
    local results = {}
    local client = troupe.spawn({
      go = function(self, x)
        local ok, e = pcall(x.call, x, "nap", 5000)
        results[#results + 1] = ok and "ok" or e.code
      end,
    })
    client:send("go", a)
    troupe.sleep(10)
    b:kill()
    assert.is_true(wait_until(function() return #results == 1 end, 2000))
    assert.equals("dead", results[1])
    assert.is_false(a:alive())
  end)

  it("unlink breaks the link (both sides); linking twice is one link", function()
    local a, b = troupe.spawn(Peer), troupe.spawn(Peer)
    a:call("link", b)
    a:call("link", b)
    b:call("link", a)
    assert.is_true(a:call("unlink", b))
    pcall(b.call, b, "boom")
    troupe.sleep(5)
    assert.equals("pong", a:call("ping"))
    -- unlinking what was never linked (or is dead) is harmless
    assert.is_true(a:call("unlink", b))
    local c = troupe.spawn(Peer)
    assert.is_true(a:call("unlink", c))
    -- b unlinked from its side
    local d, e = troupe.spawn(Peer), troupe.spawn(Peer)
    d:call("link", e)
    e:call("unlink", d)
    e:kill()
    troupe.sleep(5)
    assert.equals("pong", d:call("ping"))
  end)

  describe("trap_exit", function()
    it("turns exits into on_exit(who, reason, detail), normal ones included", function()
      local t = troupe.spawn(Peer)
      assert.is_false(t:call("trap", true)) -- returns the old setting
      assert.is_true(t:call("trap", true))
      local peers = {}
      for i = 1, 4 do peers[i] = troupe.spawn(Peer); t:call("link", peers[i]) end
      pcall(peers[1].call, peers[1], "boom")
      assert.is_true(wait_until(function() return #exits == 1 end))
      peers[2]:call("quit")
      assert.is_true(wait_until(function() return #exits == 2 end))
      peers[3]:stop()
      assert.is_true(wait_until(function() return #exits == 3 end))
      peers[4]:kill()
      assert.is_true(wait_until(function() return #exits == 4 end))
      assert.equals("crashed", exits[1].reason)
      assert.matches("bang", exits[1].detail.message)
      assert.matches("stack traceback", exits[1].detail.traceback)
      assert.equals("normal", exits[2].reason)
      assert.equals("stopped", exits[3].reason)
      assert.equals("killed", exits[4].reason)
      assert.is_nil(exits[4].detail)
      for i = 1, 4 do
        assert.is_true(exits[i].who == peers[i])
        assert.is_true(exits[i].me == t)
      end
      assert.equals("pong", t:call("ping"))
      t:kill()
    end)

    it("trap_exit(false) makes it mortal again", function()
      local t, p = troupe.spawn(Peer), troupe.spawn(Peer)
      t:call("trap", true)
      assert.is_true(t:call("trap", false))
      t:call("link", p)
      p:kill()
      assert.is_true(dead(t))
      assert.equals(0, #exits)
    end)

    it("a trapping actor without on_exit drops the notice and lives", function()
      local t = troupe.spawn({ init = function() troupe.trap_exit(true) end,
                               link = function(self, a) troupe.link(a) end,
                               ping = function() return "pong" end })
      local p = troupe.spawn(Peer)
      t:call("link", p)
      p:kill()
      troupe.sleep(5)
      assert.equals("pong", t:call("ping"))
      t:kill()
    end)
  end)

  describe("spawn_with{link = true}", function()
    it("links the child to the spawner", function()
      local parent = troupe.spawn(Peer)
      local child = parent:call("spawn_linked")
      assert.equals("pong", child:call("ping"))
      local rp = watch(parent)
      pcall(child.call, child, "boom")
      assert.equals("linked_exit", (reason_of(rp)))
    end)

    it("the child dies with its parent", function()
      local parent = troupe.spawn(Peer)
      local child = parent:call("spawn_linked")
      local rc = watch(child)
      parent:kill()
      assert.equals("linked_exit", (reason_of(rc)))
    end)

    it("from the main script (no spawner) it raises", function()
      local ok, e = pcall(troupe.spawn_with, { link = true }, "Peer")
      assert.is_false(ok)
      assert.matches("spawn from a handler", tostring(e))
    end)
  end)

  describe("chains", function()
    local N = 1000
    local function chain()
      local a = { troupe.spawn(Peer) }
      for i = 2, N do a[i] = troupe.spawn(Peer, a[i - 1]) end
      for i = 1, N do assert.equals("pong", a[i]:call("ping")) end -- every init ran
      return a
    end

    it("a chain of 1,000 linked actors dies from one end without overflowing", function()
      local a = chain()
      local rlast = watch(a[N])
      a[1]:kill()
      assert.equals("linked_exit", (reason_of(rlast)))
      for i = 1, N do assert.is_false(a[i]:alive(), "actor " .. i .. " survived") end
      -- the host is fine
      assert.equals("pong", troupe.spawn(Peer):call("ping"))
    end)

    it("a crash in the middle spreads both ways", function()
      local a = chain()
      local r1, rN = watch(a[1]), watch(a[N])
      pcall(a[N // 2].call, a[N // 2], "boom")
      assert.equals("linked_exit", (reason_of(r1)))
      assert.equals("linked_exit", (reason_of(rN)))
      for i = 1, N do assert.is_false(a[i]:alive()) end
    end)

    it("a trapping link stops the spread", function()
      local a = chain()
      local mid = N // 2
      a[mid]:call("trap", true)
      a[1]:kill()
      assert.is_true(wait_until(function() return #exits >= 1 end))
      assert.is_true(dead(a[mid - 1]))
      assert.is_true(exits[1].me == a[mid])
      assert.is_true(exits[1].who == a[mid - 1])
      assert.equals("linked_exit", exits[1].reason)
      -- the detail is why a[mid - 1] died: its own peer a[mid - 2] exited
      assert.matches("<actor " .. a[mid - 2]:id() .. " Peer> exited (linked_exit)",
                     exits[1].detail.message, 1, true)
      for i = mid, N do assert.is_true(a[i]:alive(), "actor " .. i .. " died") end
      for i = 1, mid - 1 do assert.is_false(a[i]:alive()) end
      for i = mid, N do a[i]:stop() end -- stopped: does not spread further
      assert.is_true(dead(a[N]))
    end)
  end)

  describe("misuse", function()
    it("linking to a dead actor raises dead (noproc); the caller survives if it handles it", function()
      local a, gone = troupe.spawn(Peer), troupe.spawn(Peer)
      gone:kill()
      local code, msg = a:call("try_link", gone)
      assert.equals("dead", code)
      assert.matches("noproc", msg)
      assert.equals("pong", a:call("ping"))
    end)

    it("an unhandled link error crashes only the caller", function()
      local a, gone = troupe.spawn(Peer), troupe.spawn(Peer)
      gone:kill()
      local ok, e = pcall(a.call, a, "link", gone)
      assert.is_false(ok)
      assert.equals("crashed", e.code)
      assert.matches("noproc", e.message)
    end)

    it("linking to itself is invalid", function()
      local a = troupe.spawn(Peer)
      local code = a:call("try_link", a)
      assert.equals("invalid", code)
      assert.equals("pong", a:call("ping"))
    end)

    it("link, unlink and trap_exit outside a handler raise", function()
      local a = troupe.spawn(Peer)
      assert.has_error(function() troupe.link(a) end)
      assert.has_error(function() troupe.unlink(a) end)
      assert.has_error(function() troupe.trap_exit(true) end)
      local code = a:call("try_link", 42)
      assert.equals("not a system error", code)
    end)
  end)
end)
