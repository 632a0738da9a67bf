-- Deadlock detection: a call that would close a wait cycle raises `deadlock`
-- at once, naming the cycle, and the rest of the chain goes on.
local troupe = require "troupe"

local function name_of(a, beh)
  return "<actor " .. a:id() .. " " .. beh .. ">"
end

-- A node forwards `go` to the next node with a call; the last hop calls back
-- into the first one. Each node catches the error and reports it.
local Node = troupe.behaviour("Node", {
  init = function(self, label) self.label = label end,
  set_next = function(self, nxt) self.next = nxt end,
  go = function(self, path)
    path = path or {}
    path[#path + 1] = self.label
    local ok, a, b, c = pcall(self.next.call, self.next, "go", path)
    if ok then return a, b, c end
    -- a system error: hand back code and message
    return "error", a.code, a.message
  end,
  ping = function(self) return "pong from " .. self.label end,
})

describe("deadlock detection", function()
  it("A -> B -> A: the documentation case", function()
    -- A calls B while B calls A: neither could ever proceed.
    local A, B
    A = troupe.spawn(troupe.behaviour("A", {
      start = function(self, b) return b:call("back", troupe.self()) end,
      hello = function(self) return "hello from A" end,
    }))
    B = troupe.spawn(troupe.behaviour("B", {
      back = function(self, a)
        local ok, e = pcall(a.call, a, "hello")
        assert(not ok)
        return e.code, e.message, troupe.is_error(e)
      end,
    }))
    local t0 = troupe.now()
    local code, msg, is_err = A:call("start", B)
    assert.is_true(troupe.now() - t0 < 1000, "detected at once, not by a timeout")
    assert.equals("deadlock", code)
    assert.is_true(is_err)
    assert.equals("call cycle: " .. name_of(B, "B") .. " -> " .. name_of(A, "A") .. " -> " ..
                  name_of(B, "B"), msg)
    -- both go on afterwards
    assert.equals("hello from A", A:call("hello"))
    assert.is_true(B:alive())
  end)

  it("A -> B -> A uncaught: B crashes with the deadlock message, A gets crashed", function()
    local A = troupe.spawn(troupe.behaviour("A", {
      start = function(self, b)
        local ok, e = pcall(b.call, b, "back", troupe.self())
        return e.code, e.message
      end,
      hello = function() return "hi" end,
    }))
    local B = troupe.spawn(troupe.behaviour("B", {
      back = function(self, a) return a:call("hello") end,
    }))
    local code, msg = A:call("start", B)
    assert.equals("crashed", code)
    assert.matches("deadlock: call cycle: ", msg, 1, true)
    assert.is_false(B:alive())
    assert.equals("hi", A:call("hello"))
  end)

  it("a 2-actor ring built from Nodes", function()
    local a = troupe.spawn(Node, "a")
    local b = troupe.spawn(Node, "b")
    a:call("set_next", b)
    b:call("set_next", a)
    local r, code, msg = a:call("go")
    -- b's call back into a is refused; b returns the error to a, which returns it
    assert.equals("error", r)
    assert.equals("deadlock", code)
    assert.equals("call cycle: " .. name_of(b, "Node") .. " -> " .. name_of(a, "Node") .. " -> " ..
                  name_of(b, "Node"), msg)
  end)

  it("A -> B -> C -> A: a 3-actor cycle names every actor", function()
    local a = troupe.spawn(Node, "a")
    local b = troupe.spawn(Node, "b")
    local c = troupe.spawn(Node, "c")
    a:call("set_next", b)
    b:call("set_next", c)
    c:call("set_next", a)
    local t0 = troupe.now()
    local r, code, msg = a:call("go")
    assert.is_true(troupe.now() - t0 < 1000)
    assert.equals("error", r)
    assert.equals("deadlock", code)
    assert.equals("call cycle: " .. name_of(c, "Node") .. " -> " .. name_of(a, "Node") .. " -> " ..
                  name_of(b, "Node") .. " -> " .. name_of(c, "Node"), msg)
    for _, n in ipairs({ a, b, c }) do assert.is_true(n:alive()) end
    assert.equals("pong from c", c:call("ping"))
  end)

  it("a chain without a cycle is not a deadlock", function()
    local a = troupe.spawn(Node, "a")
    local b = troupe.spawn(Node, "b")
    local c = troupe.spawn(Node, "c")
    local leaf = troupe.spawn({ go = function(self, path) return table.concat(path, ">") end })
    a:call("set_next", b)
    b:call("set_next", c)
    c:call("set_next", leaf)
    assert.equals("a>b>c", a:call("go"))
  end)

  it("calling an actor that waits on somebody else is fine", function()
    local slow = troupe.spawn({ nap = function(self, ms) troupe.sleep(ms); return "slept" end })
    local mid = troupe.spawn({
      relay = function(self, target) return target:call("nap", 30) end,
      hi = function() return "hi" end,
    })
    local caller = troupe.spawn({
      go = function(self, m) return m:call("hi") end,
    })
    mid:send("relay", slow) -- mid is now waiting on slow
    troupe.sleep(5)
    -- caller -> mid, and mid waits on slow: no cycle, just a wait
    assert.equals("hi", caller:call("go", mid))
  end)

  it("a self-call raises deadlock, and so does a self-call through a weak upgrade", function()
    local a = troupe.spawn(troupe.behaviour("Me", {
      go = function(self)
        local ok, e = pcall(function() return troupe.self():call("go") end)
        local ok2, e2 = pcall(function() return troupe.self():weak():upgrade():call("go") end)
        return ok, e.code, e.message, ok2, e2.code
      end,
    }))
    local ok, code, msg, ok2, code2 = a:call("go")
    assert.is_false(ok)
    assert.equals("deadlock", code)
    assert.equals("call cycle: " .. name_of(a, "Me") .. " -> " .. name_of(a, "Me"), msg)
    assert.is_false(ok2)
    assert.equals("deadlock", code2)
    assert.is_true(a:alive())
  end)

  it("a send to self is not a deadlock", function()
    local a = troupe.spawn({
      go = function(self) troupe.self():send("mark"); return true end,
      mark = function(self) self.marked = true end,
      marked = function(self) return self.marked end,
    })
    assert.is_true(a:call("go"))
    assert.is_true(a:call("marked"))
  end)

  it("a deferred reply serves a re-entrant request instead", function()
    -- A asks B; B needs A's help to answer. With defer, A is free meanwhile.
    local A = troupe.spawn({
      start = function(self, b)
        self.tok = troupe.defer()
        b:send("work", troupe.self())
      end,
      help = function(self) return 21 end,
      done = function(self, v) self.tok:reply(v) end,
    })
    local B = troupe.spawn({
      work = function(self, a)
        local v = a:call("help")
        a:send("done", v * 2)
      end,
    })
    assert.equals(42, A:call("start", B))
  end)
end)
