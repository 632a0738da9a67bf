-- Deferred replies: troupe.defer() takes the reply of the current call into a
-- token answered later (from another message or a timer).
local troupe = require "troupe"

local Deferrer = troupe.behaviour("Deferrer", {
  -- keeps the token; answered by `release`
  get = function(self, tag)
    self.waiting = self.waiting or {}
    self.waiting[#self.waiting + 1] = troupe.defer()
    self.log = self.log or {}
    self.log[#self.log + 1] = "get " .. tostring(tag)
  end,
  release = function(self, ...)
    local tok = table.remove(self.waiting, 1)
    return tok:reply(...)
  end,
  release_fail = function(self, v)
    local tok = table.remove(self.waiting, 1)
    return tok:fail(v)
  end,
  ping = function(self)
    self.log = self.log or {}
    self.log[#self.log + 1] = "ping"
    return "pong"
  end,
  log = function(self) return self.log end,
  -- answered by a timer
  later = function(self, ms, v)
    self.tok = troupe.defer()
    troupe.send_after(ms, "answer", v)
  end,
  answer = function(self, v) self.tok:reply(v, "from timer") end,
  -- answered twice
  twice = function(self)
    local tok = troupe.defer()
    local r1, e1 = tok:reply("first")
    local r2, e2 = tok:reply("second")
    local r3, e3 = tok:fail("third")
    self.twice = { r1, e1 == nil, r2, e2 and e2.code, troupe.is_error(e2), r3, e3 and e3.code }
  end,
  twice_result = function(self) return self.twice end,
  -- deferred, then the actor stops
  orphan = function(self, ms)
    self.tok = troupe.defer()
    troupe.send_after(ms, "quit")
  end,
  quit = function(self) troupe.stop() end,
  -- deferred, token dropped
  drop = function(self)
    troupe.defer()
    troupe.send_after(1, "gc")
  end,
  gc = function(self) collectgarbage(); collectgarbage() end,
  -- defer inside a send
  defer_in_send = function(self)
    local ok, err = pcall(troupe.defer)
    self.send_defer = { ok, tostring(err) }
  end,
  send_defer = function(self) return self.send_defer end,
  double_defer = function(self)
    local t = troupe.defer()
    local ok, err = pcall(troupe.defer)
    t:reply(ok, tostring(err))
  end,
  defer_and_return = function(self)
    self.tok = troupe.defer()
    return "ignored return value"
  end,
})

describe("deferred replies", function()
  it("a token answered from a later message; the actor serves others meanwhile", function()
    local d = troupe.spawn(Deferrer)
    local client = troupe.spawn({
      ask = function(self, target) self.r = { target:call("get", "client") } end,
      result = function(self) return self.r end,
    })
    client:send("ask", d)
    troupe.sleep(5)
    -- d owes the client a reply but keeps taking messages
    assert.equals("pong", d:call("ping"))
    assert.equals("pong", d:call("ping"))
    assert.same({ "get client", "ping", "ping" }, d:call("log"))
    assert.is_true(d:call("release", 1, "two", { 3 }))
    assert.same({ 1, "two", { 3 } }, client:call("result"))
  end)

  it("a token answered with fail gives the caller nil, v", function()
    local d = troupe.spawn(Deferrer)
    local client = troupe.spawn({
      ask = function(self, target) self.r = { target:call("get") } end,
      result = function(self) return self.r end,
    })
    client:send("ask", d)
    troupe.sleep(5)
    assert.is_true(d:call("release_fail", { reason = "later" }))
    local r = client:call("result")
    assert.is_nil(r[1])
    assert.same({ reason = "later" }, r[2])
  end)

  it("several tokens are answered independently, in any order", function()
    local d = troupe.spawn(Deferrer)
    local results = {}
    local clients = {}
    for i = 1, 3 do
      clients[i] = troupe.spawn({
        ask = function(self, target) self.r = target:call("get", i) end,
        result = function(self) return self.r end,
      })
      clients[i]:send("ask", d)
    end
    troupe.sleep(5)
    d:call("release", "first answer")
    d:call("release", "second answer")
    d:call("release", "third answer")
    for i = 1, 3 do results[i] = clients[i]:call("result") end
    assert.same({ "first answer", "second answer", "third answer" }, results)
  end)

  it("a token answered by a timer; main code waits for it", function()
    local d = troupe.spawn(Deferrer)
    local t0 = troupe.now()
    local v, w = d:call("later", 30, "late value")
    assert.equals("late value", v)
    assert.equals("from timer", w)
    assert.is_true(troupe.now() - t0 >= 25)
  end)

  it("the handler's return value is ignored once deferred", function()
    local d = troupe.spawn(Deferrer)
    local ok, e = pcall(d.call_with, d, { timeout = 50 }, "defer_and_return")
    -- nobody answers the token within 50 ms: timeout, not the return value
    assert.is_false(ok)
    assert.equals("timeout", e.code)
  end)

  it("a token answered twice: the second answer returns nil, already_replied", function()
    local d = troupe.spawn(Deferrer)
    assert.equals("first", d:call("twice"))
    local r = d:call("twice_result")
    assert.same({ true, true, nil, "already_replied", true, nil, "already_replied" }, r)
  end)

  it("an actor that stops with an unanswered token: the caller gets dead at once", function()
    local d = troupe.spawn(Deferrer)
    local t0 = troupe.now()
    local ok, e = pcall(d.call_with, d, { timeout = 3000 }, "orphan", 20)
    local dt = troupe.now() - t0
    assert.is_false(ok)
    assert.equals("dead", e.code)
    assert.is_true(dt < 1000, "got the error after " .. dt .. " ms")
    assert.is_false(d:alive())
  end)

  it("an actor killed with an unanswered token: the actor caller gets dead at once", function()
    local d = troupe.spawn(Deferrer)
    local client = troupe.spawn({
      ask = function(self, target)
        local t0 = troupe.now()
        local ok, e = pcall(target.call_with, target, { timeout = 3000 }, "get")
        self.r = { ok, e.code, troupe.now() - t0 }
      end,
      result = function(self) return self.r end,
    })
    client:send("ask", d)
    troupe.sleep(20)
    d:kill()
    local r = client:call("result")
    assert.is_false(r[1])
    assert.equals("dead", r[2])
    assert.is_true(r[3] < 1000)
  end)

  it("answering a token after its actor died returns nil, err and harms nothing", function()
    local stash -- a token smuggled out through an upvalue (tokens cannot be sent)
    local d = troupe.spawn({
      get = function(self) stash = troupe.defer() end,
    })
    local client = troupe.spawn({
      ask = function(self, target)
        local ok, e = pcall(target.call, target, "get")
        self.r = { ok, e and e.code }
      end,
      result = function(self) return self.r end,
    })
    client:send("ask", d)
    troupe.sleep(5)
    assert.is_not_nil(stash)
    d:kill()
    assert.same({ false, "dead" }, client:call("result"))
    local r, e = stash:reply("too late")
    assert.is_nil(r)
    assert.is_true(troupe.is_error(e))
    assert.is_true(client:alive())
  end)

  it("a dropped token fails the call with dropped", function()
    local d = troupe.spawn(Deferrer)
    local ok, e = pcall(d.call_with, d, { timeout = 3000 }, "drop")
    assert.is_false(ok)
    assert.equals("dropped", e.code)
    assert.is_true(d:alive())
  end)

  it("defer is refused in a send and when already deferred", function()
    local d = troupe.spawn(Deferrer)
    d:send("defer_in_send")
    local r = d:call("send_defer")
    assert.is_false(r[1])
    assert.matches("send, not a call", r[2])
    local ok, msg = d:call("double_defer")
    assert.is_false(ok)
    assert.matches("already deferred", msg)
  end)

  it("defer outside a handler is an error", function()
    assert.has_error(function() troupe.defer() end)
  end)
end)
