-- threadring: 503 actors in a ring pass an integer token with one-way sends,
-- decrementing it at each hop, for T hops. The actor that receives 0 reports
-- its number, which must be T % 503 + 1 (actor 1 sends the first hop).
--   troupe run tests/bench/threadring.lua [T]    (default T = 10,000,000)
local troupe = require "troupe"
local B = dofile(((arg and arg[0] or ""):match("(.*/)") or "./") .. "common.lua")
local T = B.n(10000000)
local RING = 503
local now, defer = B.now, troupe.defer

local Node = {
  _NAME = "Node",
  init = function(self, id) self.id = id end,
  link = function(self, nxt, first)
    self.nxt = nxt
    self.first = first
  end,
  token = function(self, k)
    if k == 0 then self.first:send("done", self.id)
    else self.nxt:send("token", k - 1) end
  end,
  -- on actor 1: the main script's call; answered when the token reaches 0
  start = function(self, t)
    self.waiter = defer()
    self.t0 = now()
    if t == 0 then self.first:send("done", self.id)
    else self.nxt:send("token", t - 1) end
  end,
  done = function(self, id)
    local w = self.waiter
    self.waiter = nil
    w:reply(id, now() - self.t0)
  end,
}

B.main(function()
  local nodes = {}
  for i = 1, RING do nodes[i] = troupe.spawn(Node, i) end
  for i = 1, RING do nodes[i]:send("link", nodes[i % RING + 1], nodes[1]) end
  local id, ms = nodes[1]:call_with(B.forever, "start", T)
  local want = T % RING + 1
  B.check(id == want, "threadring: token ended at actor %s, want %d", tostring(id), want)
  B.report("threadring", B.rate(T, ms), "hops/s")
end)
