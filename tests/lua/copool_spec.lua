-- A single message runs in a pooled coroutine that keeps, below the handler,
-- the behaviour table and the method name of the last message it ran
-- (lua_host.c, co_get / co_put): whichever actor, behaviour and name come
-- next, each message must find its own handler, and a call's results must
-- be exactly its handler's. Every send/call here is one message to an idle
-- actor (main code waits for each), so none of them goes to the runner.
local troupe = require "troupe"

local log = {}
local function clear() for k in pairs(log) do log[k] = nil end end

local function behaviour(tag)
  return {
    ping = function(self, i) return tag .. "ping" .. i end,
    pong = function(self, i) return tag .. "pong" .. i end,
    note = function(self, i) log[#log + 1] = tag .. i end,
    none = function(self) end,
    three = function(self, a, b) return a, nil, b end,
    nils = function(self) return nil, nil end,
  }
end

describe("pooled coroutines of single messages", function()
  before_each(clear)

  it("alternating behaviours with the same names each use their own handlers", function()
    local A, B = behaviour("A"), behaviour("B")
    local as, bs = {}, {}
    for i = 1, 4 do as[i] = troupe.spawn(A); bs[i] = troupe.spawn(B) end
    for i = 1, 50 do
      local k = i % 4 + 1
      assert.equals("Aping" .. i, as[k]:call("ping", i))
      assert.equals("Bping" .. i, bs[k]:call("ping", i))
      assert.equals("Bpong" .. i, bs[k]:call("pong", i))
      assert.equals("Apong" .. i, as[k]:call("pong", i))
    end
  end)

  it("one-way sends alternating names and behaviours reach the right handler", function()
    local a, b = troupe.spawn(behaviour("A")), troupe.spawn(behaviour("B"))
    for i = 1, 20 do
      a:send("note", i)
      a:call("none")
      b:send("note", i)
      b:call("none")
    end
    assert.equals(40, #log)
    for i = 1, 20 do
      assert.equals("A" .. i, log[2 * i - 1])
      assert.equals("B" .. i, log[2 * i])
    end
  end)

  it("a call's results are its handler's, whatever it returns", function()
    local a = troupe.spawn(behaviour("A"))
    for _ = 1, 3 do
      assert.equals(0, select("#", a:call("none")))
      local n = select("#", a:call("three", 1, 2))
      assert.equals(3, n)
      local x, y, z = a:call("three", "p", "q")
      assert.equals("p", x); assert.is_nil(y); assert.equals("q", z)
      assert.equals(2, select("#", a:call("nils")))
      assert.equals("Aping1", a:call("ping", 1))
    end
  end)

  it("names that look alike (same length, same ends, long ones) are told apart", function()
    local names = { "ab1c", "ab2c", "x", "y", "abcdefgh", "abcdefgi", "bbcdefgh",
                    "abcdefghijklmnop", "abcdefghijklmnoq", "abcdefghXjklmnop",
                    "abcdefghijklmnopqrstuvw", "abcdefghijklmnopqrstuvx",
                    "abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456788" }
    local beh = {}
    for _, n in ipairs(names) do beh[n] = function(self) return n end end
    local a = troupe.spawn(beh)
    for round = 1, 3 do
      for i = 1, #names do
        local n = names[(i * round) % #names + 1]
        assert.equals(n, a:call(n))
      end
    end
  end)

  it("a handler changed between two messages is the one that runs", function()
    local beh = { get = function(self) return 1 end }
    local a = troupe.spawn(beh)
    assert.equals(1, a:call("get"))
    beh.get = function(self) return 2 end
    assert.equals(2, a:call("get"))
    beh.get = nil
    local ok, err = pcall(a.call, a, "get")
    assert.is_false(ok)
    assert.equals("no_handler", err.code)
    beh.get = function(self) return 3 end
    assert.equals(3, a:call("get"))
  end)

  it("a missing handler or a raising one leaves the next message its own", function()
    local B = behaviour("B")
    B._ON_ERROR = "reply"
    B.boom = function(self) error("boom") end
    local b = troupe.spawn(B)
    for i = 1, 3 do
      local ok = pcall(b.call, b, "nope")
      assert.is_false(ok)
      assert.equals("Bping" .. i, b:call("ping", i))
      ok = pcall(b.call, b, "boom")
      assert.is_false(ok)
      assert.equals("Bpong" .. i, b:call("pong", i))
    end
  end)

  it("inherited handlers (__index) and init through a metatable still work", function()
    local Base = behaviour("C")
    Base.init = function(self, v) self.v = v end
    Base.getv = function(self) return self.v end
    local a = troupe.spawn(setmetatable({}, { __index = Base }), 42)
    local b = troupe.spawn(behaviour("A"))
    for i = 1, 3 do
      assert.equals(42, a:call("getv"))
      assert.equals("Aping" .. i, b:call("ping", i))
      assert.equals("Cping" .. i, a:call("ping", i))
    end
  end)

  it("stop hooks still decide after single messages", function()
    local a = troupe.spawn({
      ping = function(self) return "p" end,
      allow = function(self) self.allow = true end,
      on_stopping = function(self) return self.allow == true end,
    })
    assert.equals("p", a:call("ping"))
    assert.is_true(a:stop())
    troupe.sleep(5)
    assert.is_true(a:alive())
    assert.equals("p", a:call("ping"))
    a:call("allow")
    a:stop()
    troupe.sleep(5)
    assert.is_false(a:alive())
    local b = troupe.spawn({ on_stopping = function() end, ping = function() return 1 end })
    assert.equals(1, b:call("ping"))
    b:stop()
    troupe.sleep(5)
    assert.is_false(b:alive())
  end)
end)
