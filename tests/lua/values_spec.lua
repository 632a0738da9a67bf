-- Values crossing between actors: what round-trips, what is refused (and
-- where), and copy semantics.
local troupe = require "troupe"

local Store = troupe.behaviour("Store", {
  echo = function(self, ...) return ... end,
  count = function(self, ...) return select("#", ...) end,
  types = function(self, ...)
    local t = {}
    for i = 1, select("#", ...) do
      local v = select(i, ...)
      t[i] = math.type(v) or type(v)
    end
    return t
  end,
  keep = function(self, v) self.kept = v end,
  kept = function(self) return self.kept end,
  mutate_kept = function(self) self.kept.x = "changed by receiver" end,
  seen = function(self) return self.seen or 0 end,
  touch = function(self) self.seen = (self.seen or 0) + 1 end,
})

local function refused(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected bad_value")
  assert.is_true(troupe.is_error(e))
  assert.equals("bad_value", e.code)
  return e.message
end

describe("values", function()
  local s
  before_each(function() s = troupe.spawn(Store) end)

  describe("round-trip", function()
    it("nil and booleans, keeping the count of values", function()
      assert.equals(4, s:call("count", nil, true, false, nil))
      local a, b, c, d = s:call("echo", nil, true, false, nil)
      assert.is_nil(a)
      assert.is_true(b)
      assert.is_false(c)
      assert.is_nil(d)
      assert.equals(4, select("#", s:call("echo", nil, true, false, nil)))
      assert.equals(0, select("#", s:call("echo")))
    end)

    it("64-bit integers, including the extremes", function()
      local ints = { 0, 1, -1, 127, 128, 255, 256, -32, -33, 65535, 65536, 2 ^ 31 | 0,
                     -(2 ^ 31 | 0), 2 ^ 32 | 0, 2 ^ 53 | 0, (2 ^ 53 | 0) + 1,
                     math.maxinteger, math.mininteger, math.maxinteger - 1,
                     math.mininteger + 1 }
      for _, i in ipairs(ints) do
        local r = s:call("echo", i)
        assert.equals("integer", math.type(r), "for " .. i)
        assert.equals(i, r)
      end
    end)

    it("the same values between actors, both ways on the scalar fast path", function()
      -- an actor's call encodes its arguments, and a handler its reply,
      -- without the general encoder: every encoding width and boundary
      local vals = { 0, 1, -1, 31, 32, 33, 127, 128, 255, 256, -32, -33, -128, -129,
                     -32768, -32769, 32767, 32768, 65535, 65536, 2 ^ 31 | 0, -(2 ^ 31 | 0),
                     -(2 ^ 31 | 0) - 1, (2 ^ 32 | 0) - 1, 2 ^ 32 | 0, 2 ^ 53 | 0,
                     math.maxinteger, math.mininteger, 0.5, -0.0, 1.0, math.huge, -math.huge,
                     1e-300, "", "x", string.rep("s", 31), string.rep("t", 32),
                     string.rep("u", 60), true, false }
      local caller = troupe.spawn({
        go = function(self, target, list)
          local bad = {}
          for i, v in ipairs(list) do
            local r = target:call("echo", v)
            if r ~= v or math.type(r) ~= math.type(v) or (v == 0 and 1 / v ~= 1 / r) then
              bad[#bad + 1] = i .. ":" .. tostring(v) .. "->" .. tostring(r)
            end
          end
          local a, b, c = target:call("echo", 300, -70000, 5000000000)
          if a ~= 300 or b ~= -70000 or c ~= 5000000000 then bad[#bad + 1] = "three" end
          return table.concat(bad, " ")
        end,
      })
      assert.equals("", caller:call("go", s, vals))
    end)

    it("floats stay floats and integers stay integers", function()
      local t = s:call("types", 1, 1.0, -0.0, 2 ^ 53, 0.5, math.huge, -math.huge, 3)
      assert.same({ "integer", "float", "float", "float", "float", "float", "float", "integer" }, t)
      local one = s:call("echo", 1.0)
      assert.equals("float", math.type(one))
      assert.equals(1.0, one)
      assert.equals(math.pi, s:call("echo", math.pi))
      assert.equals(math.huge, s:call("echo", math.huge))
      assert.equals(-math.huge, s:call("echo", -math.huge))
      local nz = s:call("echo", -0.0)
      assert.equals(-math.huge, 1 / nz)
      local nan = s:call("echo", 0 / 0)
      assert.is_true(nan ~= nan)
      assert.equals(1e-300, s:call("echo", 1e-300))
      assert.equals(math.mininteger + 0.0, s:call("echo", math.mininteger + 0.0))
      assert.equals("float", math.type(s:call("echo", math.mininteger + 0.0)))
    end)

    it("binary-safe strings", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local all = table.concat(bytes)
      for _, str in ipairs({ "", "a", "a\0b", "\0", "\0\0\0", all, string.rep("x", 100000),
                             "ünïcødé ✓" }) do
        local r = s:call("echo", str)
        assert.equals(#str, #r)
        assert.equals(str, r)
      end
    end)

    it("arrays, maps, mixed and nested tables", function()
      local cases = {
        {},
        { 1, 2, 3 },
        { "a", { "b", { "c" } } },
        { x = 1, y = "two", z = { 3 } },
        { 1, 2, x = 3 },
        { [1] = "a", [3] = "c" },          -- a hole: sent as a map
        { [0] = "zero", [1] = "one" },
        { [-5] = "neg", [1.5] = "float key", [true] = "bool key", [false] = 0 },
        { nested = { deeper = { deepest = { 1, 2, { k = "v" } } } } },
        { list = { { id = 1 }, { id = 2 } }, empty = {} },
      }
      for i, c in ipairs(cases) do
        assert.same(c, s:call("echo", c), "case " .. i)
      end
    end)

    it("a shared (non-cyclic) subtable is sent twice as a copy", function()
      local shared = { 1, 2 }
      local r = s:call("echo", { a = shared, b = shared })
      assert.same({ a = { 1, 2 }, b = { 1, 2 } }, r)
      assert.are_not.equal(r.a, r.b) -- copies, not the same table
    end)

    it("many arguments", function()
      local args = {}
      for i = 1, 40 do args[i] = i end
      assert.equals(40, s:call("count", table.unpack(args, 1, 40)))
      local r = { s:call("echo", table.unpack(args, 1, 40)) }
      assert.same(args, r)
    end)

    it("large payloads", function()
      local big = {}
      for i = 1, 10000 do big[i] = { i, tostring(i) } end
      assert.same(big, s:call("echo", big))
    end)

    it("tables 32 levels deep pass, deeper ones are refused", function()
      local function nest(n)
        local t = {}
        for _ = 1, n do t = { t } end
        return t
      end
      local ok32 = nest(31)
      assert.same(ok32, s:call("echo", ok32))
      local msg = refused(s.call, s, "echo", nest(40))
      assert.matches("nested too deeply", msg)
    end)

    it("addresses inside messages stay usable and equal", function()
      local other = troupe.spawn(Store)
      other:call("keep", "other's data")
      local r = s:call("echo", { who = other, list = { other, s } })
      assert.is_true(r.who == other)
      assert.is_true(r.list[1] == other)
      assert.is_true(r.list[2] == s)
      assert.equals(tostring(other), tostring(r.who))
      assert.equals("other's data", r.who:call("kept"))
      -- a receiver can use an address it was sent
      local relay = troupe.spawn({
        ask = function(self, target, m) return target:call(m) end,
      })
      assert.equals("other's data", relay:call("ask", other, "kept"))
      -- weak addresses travel as weak addresses
      local w = s:call("echo", other:weak())
      assert.is_true(w:upgrade() == other)
      assert.is_nil(w.call)
      -- dead addresses travel too, and stay dead
      local d = troupe.spawn(Store)
      d:kill()
      local rd = s:call("echo", d)
      assert.is_false(rd:alive())
      assert.is_true(rd == d)
    end)

    it("an actor can send values to itself and to other actors", function()
      local a = troupe.spawn({
        go = function(self, peer)
          peer:send("keep", { from = troupe.self(), n = math.maxinteger, f = 0.5, s = "\0x" })
          return peer:call("kept")
        end,
      })
      local r = a:call("go", s)
      assert.is_true(r.from == a)
      assert.equals(math.maxinteger, r.n)
      assert.equals("float", math.type(r.f))
      assert.equals("\0x", r.s)
    end)
  end)

  describe("refused values", function()
    it("functions, naming the path", function()
      assert.equals("arg 1: function cannot be sent", refused(s.send, s, "keep", print))
      assert.equals("arg 3 .cb: function cannot be sent",
                    refused(s.send, s, "keep", 1, 2, { cb = function() end }))
      assert.equals("arg 1[2][1]: function cannot be sent",
                    refused(s.call, s, "echo", { 1, { function() end } }))
    end)

    it("coroutines", function()
      local co = coroutine.create(function() end)
      assert.equals("arg 1: thread cannot be sent", refused(s.send, s, "keep", co))
      assert.equals("arg 1 .co: thread cannot be sent", refused(s.call, s, "echo", { co = co }))
    end)

    it("foreign userdata", function()
      assert.equals("arg 1: userdata cannot be sent", refused(s.send, s, "keep", io.stdout))
      assert.equals("arg 2 .f: userdata cannot be sent",
                    refused(s.call, s, "echo", 1, { f = io.stderr }))
    end)

    it("cyclic tables", function()
      local t = { name = "loop" }
      t.self = t
      local msg = refused(s.send, s, "keep", t)
      assert.matches("^arg 1 .self: cyclic table cannot be sent$", msg)
      local a, b = {}, {}
      a.b = b
      b.list = { a }
      assert.equals("arg 1 .b .list[1]: cyclic table cannot be sent", refused(s.call, s, "echo", a))
    end)

    it("a function used as a table key", function()
      local msg = refused(s.send, s, "keep", { [print] = 1 })
      assert.matches("function cannot be sent", msg)
    end)

    it("delivers nothing when refused", function()
      refused(s.send, s, "touch", print)
      refused(s.try_send, s, "touch", { f = print })
      refused(s.call, s, "touch", coroutine.create(print))
      refused(s.call_with, s, { timeout = 100 }, "touch", io.stdout)
      assert.equals(0, s:call("seen"))
      s:send("touch", "fine")
      assert.equals(1, s:call("seen"))
    end)

    it("inside an actor the refusal is raised in the sender, which can catch it", function()
      local a = troupe.spawn({
        go = function(self, peer)
          local ok, e = pcall(peer.send, peer, "touch", { cb = function() end })
          return ok, e.code, e.message
        end,
      })
      local ok, code, msg = a:call("go", s)
      assert.is_false(ok)
      assert.equals("bad_value", code)
      assert.equals("arg 1 .cb: function cannot be sent", msg)
      assert.equals(0, s:call("seen"))
    end)
  end)

  describe("isolation by copy", function()
    it("the receiver never sees the sender's later mutation (send)", function()
      local t = { x = "original", list = { 1, 2 } }
      s:send("keep", t)
      t.x = "mutated"
      t.list[1] = 99
      t.new = true
      assert.same({ x = "original", list = { 1, 2 } }, s:call("kept"))
    end)

    it("the receiver never sees the sender's later mutation (call)", function()
      local t = { x = "original" }
      s:call("keep", t)
      t.x = "mutated"
      assert.same({ x = "original" }, s:call("kept"))
    end)

    it("the sender never sees the receiver's mutation, nor a reply's", function()
      local t = { x = "original" }
      s:call("keep", t)
      s:call("mutate_kept")
      assert.equals("original", t.x)
      local r = s:call("kept")
      assert.equals("changed by receiver", r.x)
      r.x = "changed by caller"
      assert.equals("changed by receiver", s:call("kept").x)
    end)

    it("mutation between two actors in handlers", function()
      local a = troupe.spawn({
        go = function(self, peer)
          local t = { v = 1 }
          peer:send("keep", t)
          t.v = 2
          return peer:call("kept")
        end,
      })
      assert.same({ v = 1 }, a:call("go", s))
    end)

    it("spawn arguments are copied too", function()
      local t = { v = 1 }
      local a = troupe.spawn({
        init = function(self, arg) self.arg = arg end,
        get = function(self) return self.arg end,
      }, t)
      t.v = 2
      assert.same({ v = 1 }, a:call("get"))
    end)
  end)
end)
