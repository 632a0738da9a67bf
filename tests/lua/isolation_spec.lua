-- Isolation: each actor's global writes go to its own table; one message at a
-- time per actor.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local tmpfiles = {}
local function behaviour_file(code)
  local base = os.tmpname() -- (creates the file: removed with the others)
  local path = base .. "_beh.lua"
  tmpfiles[#tmpfiles + 1] = base
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  tmpfiles[#tmpfiles + 1] = path
  return path
end

local GLOBALS_CODE = [[
local troupe = require "troupe"
local function helper(v) helper_global = v end -- a local function writing a global
return {
  set = function(self, v) iso_x = v; return iso_x end,
  get = function(self) return iso_x end,
  set_via_helper = function(self, v) helper(v) end,
  get_helper = function(self) return helper_global end,
  read_main = function(self) return iso_main_value end,
  lib = function(self) return type(string.format), type(troupe.spawn) end,
}
]]

describe("isolation", function()
  teardown(function()
    for _, p in ipairs(tmpfiles) do os.remove(p) end
  end)

  describe("globals", function()
    local function check(make)
      local a = make()
      local b = make()
      assert.is_nil(iso_x)
      assert.equals(1, a:call("set", 1))
      assert.equals(1, a:call("get"))
      assert.is_nil(b:call("get"), "another actor sees the global")
      assert.is_nil(iso_x, "the main code sees the global")
      assert.is_nil(rawget(_G, "iso_x"))
      assert.equals(2, b:call("set", 2))
      assert.equals(1, a:call("get"))
      assert.equals(2, b:call("get"))
      -- a fresh actor of the same behaviour starts clean
      assert.is_nil(make():call("get"))
    end

    it("inline behaviour tables", function()
      local Beh = {
        set = function(self, v) iso_x = v; return iso_x end,
        get = function(self) return iso_x end,
      }
      check(function() return troupe.spawn(Beh) end)
    end)

    it("behaviours from strings of code", function()
      check(function() return troupe.spawn(GLOBALS_CODE) end)
    end)

    it("behaviours from files", function()
      local path = behaviour_file(GLOBALS_CODE)
      check(function() return troupe.spawn(path) end)
    end)

    it("helper functions of a file or string write to the running actor's globals", function()
      for _, beh in ipairs({ GLOBALS_CODE, behaviour_file(GLOBALS_CODE) }) do
        local a = troupe.spawn(beh)
        local b = troupe.spawn(beh)
        a:call("set_via_helper", "A's")
        assert.equals("A's", a:call("get_helper"))
        assert.is_nil(b:call("get_helper"))
        assert.is_nil(helper_global)
      end
    end)

    it("handlers read the main code's globals and the standard library", function()
      -- (busted runs specs in their own env table: set the real global)
      rawset(_G, "iso_main_value", "from main")
      local a = troupe.spawn(GLOBALS_CODE)
      assert.equals("from main", a:call("read_main"))
      local f, s = a:call("lib")
      assert.equals("function", f)
      assert.equals("function", s)
      local inline = troupe.spawn({ read = function() return iso_main_value, type(print) end })
      local v, p = inline:call("read")
      assert.equals("from main", v)
      assert.equals("function", p)
      rawset(_G, "iso_main_value", nil)
    end)

    it("an actor's own global shadows the main code's", function()
      iso_shadow = "main"
      local a = troupe.spawn({
        set = function(self) iso_shadow = "actor" end,
        get = function(self) return iso_shadow end,
      })
      assert.equals("main", a:call("get"))
      a:call("set")
      assert.equals("actor", a:call("get"))
      assert.equals("main", iso_shadow)
      iso_shadow = nil
    end)

    it("the same behaviour table spawned many times keeps globals apart", function()
      local Counter = {
        bump = function(self) iso_count = (iso_count or 0) + 1; return iso_count end,
      }
      local actors = {}
      for i = 1, 5 do actors[i] = troupe.spawn(Counter) end
      for i = 1, 5 do
        for _ = 1, i do actors[i]:call("bump") end
      end
      for i = 1, 5 do assert.equals(i + 1, actors[i]:call("bump")) end
      assert.is_nil(iso_count)
    end)

    it("state in self is private to each actor", function()
      local Beh = {
        init = function(self, v) self.v = v end,
        get = function(self) return self.v end,
        set = function(self, v) self.v = v end,
      }
      local a = troupe.spawn(Beh, "a")
      local b = troupe.spawn(Beh, "b")
      a:call("set", "changed")
      assert.equals("changed", a:call("get"))
      assert.equals("b", b:call("get"))
    end)

    it("a behaviour file is named after the file and loads once", function()
      local path = behaviour_file(GLOBALS_CODE)
      local a = troupe.spawn(path)
      assert.matches("^<actor [%d.]+ %S+>$", tostring(a))
      local b = troupe.spawn(path)
      assert.equals(tostring(a):match("^<actor [%d.]+ (%S+)>$"), tostring(b):match("^<actor [%d.]+ (%S+)>$"))
    end)

    it("a missing file or broken code is an error", function()
      local ok, e = pcall(troupe.spawn, "/nonexistent/nowhere.lua")
      assert.is_false(ok)
      assert.equals("not_found", e.code)
      local ok2, e2 = pcall(troupe.spawn, "return {\n")
      assert.is_false(ok2)
      assert.equals("load", e2.code)
      local ok3, e3 = pcall(troupe.spawn, "return 42\n")
      assert.is_false(ok3)
      assert.equals("load", e3.code)
    end)
  end)

  describe("one message at a time", function()
    it("while a handler waits in a call, its actor takes no other message", function()
      local log = {}
      local slow = troupe.spawn({ work = function(self) troupe.sleep(200); return "done" end })
      local a = troupe.spawn({
        relay = function(self, target)
          log[#log + 1] = "relay start"
          self.busy = true
          local r = target:call("work")
          self.busy = false
          log[#log + 1] = "relay end " .. r
        end,
        probe = function(self)
          log[#log + 1] = "probe busy=" .. tostring(self.busy)
          return self.busy
        end,
      })
      a:send("relay", slow)
      -- a is now suspended in its call (for 200 ms): the probe arrives then
      assert.is_true(helpers.wait_until(function() return #log > 0 end))
      assert.same({ "relay start" }, log)
      assert.is_false(a:call("probe"))
      assert.same({ "relay start", "relay end done", "probe busy=false" }, log)
    end)

    it("while a handler sleeps, its actor takes no other message", function()
      local log = {}
      local a = troupe.spawn({
        nap = function(self) log[#log + 1] = "nap start"; troupe.sleep(20); log[#log + 1] = "nap end" end,
        hi = function(self) log[#log + 1] = "hi" end,
      })
      a:send("nap")
      a:send("hi")
      a:call("hi")
      assert.same({ "nap start", "nap end", "hi", "hi" }, log)
    end)

    it("troupe.yield lets other actors run but not other messages of the same actor", function()
      local log = {}
      local a = troupe.spawn({
        long = function(self)
          for i = 1, 3 do log[#log + 1] = "a" .. i; troupe.yield() end
        end,
        hi = function() log[#log + 1] = "a hi" end,
      })
      local b = troupe.spawn({ hi = function() log[#log + 1] = "b hi" end })
      a:send("long")
      a:send("hi")
      b:send("hi")
      troupe.sleep(5)
      -- a's second message comes after the whole of `long`
      local pos = {}
      for i, v in ipairs(log) do pos[v] = i end
      assert.is_true(pos["a hi"] > pos["a3"])
      assert.is_true(pos["b hi"] < pos["a3"], "b did not run while a yielded")
    end)

    it("messages from one sender arrive in order", function()
      local got = {}
      local a = troupe.spawn({ m = function(self, i) got[#got + 1] = i end })
      for i = 1, 500 do a:send("m", i) end
      a:call("m", 501)
      for i = 1, 501 do assert.equals(i, got[i]) end
    end)

    it("troupe.self and troupe.sender inside handlers", function()
      local a = troupe.spawn({
        who = function(self) return troupe.self(), troupe.sender() end,
        ask = function(self, other) return other:call("who") end,
      })
      local me, sender = a:call("who")
      assert.is_true(me == a)
      assert.is_nil(sender) -- main code is nobody
      local b = troupe.spawn({ who = function() return troupe.self(), troupe.sender() end })
      local bself, bsender = a:call("ask", b)
      assert.is_true(bself == b)
      assert.is_true(bsender == a)
      assert.is_nil(troupe.self())
      assert.is_nil(troupe.sender())
    end)
  end)
end)
