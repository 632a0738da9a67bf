-- Calls: results, timeouts (default and per call), late replies.
local troupe = require "troupe"

local Slow = troupe.behaviour("Slow", {
  nap = function(self, ms, v) troupe.sleep(ms); self.naps = (self.naps or 0) + 1; return v end,
  naps = function(self) return self.naps or 0 end,
  multi = function(self) return 1, nil, "three", nil end,
  none = function(self) end,
})

describe("calls", function()
  it("return every value, nils included", function()
    local s = troupe.spawn(Slow)
    assert.equals(4, select("#", s:call("multi")))
    local a, b, c, d = s:call("multi")
    assert.same({ 1, nil, "three", nil }, { a, b, c, d })
    assert.equals(0, select("#", s:call("none")))
  end)

  it("the default timeout is 5000 ms", function()
    assert.equals(5000, troupe.DEFAULT_TIMEOUT)
  end)

  it("a per-call timeout overrides the default, both ways", function()
    local s = troupe.spawn(Slow)
    local t0 = troupe.now()
    local ok, e = pcall(s.call_with, s, { timeout = 30 }, "nap", 300, "x")
    assert.is_false(ok)
    assert.equals("timeout", e.code)
    local dt = troupe.now() - t0
    assert.is_true(dt >= 25 and dt < 250, "took " .. dt .. " ms")
    -- a longer timeout lets a slow answer through
    local s2 = troupe.spawn(Slow)
    assert.equals("y", s2:call_with({ timeout = 1000 }, "nap", 40, "y"))
    -- no timeout at all
    assert.equals("z", s2:call_with({ timeout = false }, "nap", 10, "z"))
    assert.equals("w", s2:call_with({ timeout = math.huge }, "nap", 10, "w"))
  end)

  it("bad timeouts are refused", function()
    local s = troupe.spawn(Slow)
    assert.has_error(function() s:call_with({ timeout = -5 }, "nap", 1) end)
    assert.has_error(function() s:call_with("not a table", "nap", 1) end)
  end)

  it("a late reply after a timeout is dropped (main code)", function()
    local s = troupe.spawn(Slow)
    local ok, e = pcall(s.call_with, s, { timeout = 20 }, "nap", 50, "late")
    assert.is_false(ok)
    assert.equals("timeout", e.code)
    -- the next call gets its own answer, not the late one
    assert.equals("mine", s:call("nap", 0, "mine"))
    assert.equals(2, s:call("naps"))
  end)

  it("a late reply after a timeout is dropped (actor caller)", function()
    local slow = troupe.spawn(Slow)
    local other = troupe.spawn(Slow)
    local caller = troupe.spawn({
      go = function(self, a, b)
        local ok, e = pcall(a.call_with, a, { timeout = 20 }, "nap", 60, "late")
        local code = e and e.code
        -- a second call, still pending when the late reply comes
        local t0 = troupe.now()
        local v = b:call("nap", 80, "second")
        local slept = troupe.now() - t0
        return code, v, slept
      end,
    })
    local code, v, slept = caller:call("go", slow, other)
    assert.equals("timeout", code)
    assert.equals("second", v)
    assert.is_true(slept >= 70, "woken early by the late reply (" .. slept .. " ms)")
  end)

  it("a late reply does not wake a sleeping caller", function()
    local slow = troupe.spawn(Slow)
    local caller = troupe.spawn({
      go = function(self, a)
        pcall(a.call_with, a, { timeout = 10 }, "nap", 30, "late")
        local t0 = troupe.now()
        troupe.sleep(60)
        return troupe.now() - t0
      end,
    })
    local slept = caller:call("go", slow)
    assert.is_true(slept >= 55, "sleep cut short: " .. slept)
  end)

  it("many concurrent callers each get their own answer", function()
    local s = troupe.spawn({ double = function(self, x) return x * 2 end })
    local callers = {}
    for i = 1, 50 do
      callers[i] = troupe.spawn({
        go = function(self, t, v) self.r = t:call("double", v) end,
        r = function(self) return self.r end,
      })
      callers[i]:send("go", s, i)
    end
    for i = 1, 50 do assert.equals(i * 2, callers[i]:call("r")) end
  end)

  it("call and send check their arguments", function()
    local s = troupe.spawn(Slow)
    assert.has_error(function() s:call("") end)
    assert.has_error(function() s:send("") end)
    assert.has_error(function() s.call({}, "x") end)
    assert.has_error(function() s:call() end)
  end)

  it("a method name with a zero byte reaches its own handler, not the one named by its first part", function()
    local got = {}
    local a = troupe.spawn({
      ["m"] = function() return "m" end,
      ["m\0x"] = function() return "m\0x" end,
      ["t"] = function() got[#got + 1] = "t" end,
      ["t\0y"] = function() got[#got + 1] = "t\0y" end,
      arm = function() troupe.send_after(1, "t\0y") end,
    })
    assert.equals("m\0x", a:call("m\0x")) -- from main code
    assert.equals("m", a:call("m"))
    local b = troupe.spawn({ ask = function(self, to) return to:call("m\0x") end })
    assert.equals("m\0x", b:call("ask", a)) -- from a handler
    a:send("t\0y")
    a:send("arm") -- by a timer
    assert.is_true(require("spec_helpers").wait_until(function() return #got == 2 end))
    assert.same({ "t\0y", "t\0y" }, got)
  end)

  it("troupe.run returns when nothing is left to do", function()
    local n = 0
    local a = troupe.spawn({ m = function(self, k) n = n + 1; if k > 0 then troupe.self():send("m", k - 1) end end })
    a:send("m", 10)
    troupe.run()
    assert.equals(11, n)
  end)
end)
