-- counting: a producer sends N one-way inc(1) messages to a counter, then
-- one call reads the sum, which must be N.
--   troupe run tests/bench/counting.lua [N]      (default N = 10,000,000)
local troupe = require "troupe"
local B = dofile(((arg and arg[0] or ""):match("(.*/)") or "./") .. "common.lua")
local N = B.n(10000000)
local now, error, tostring = B.now, error, tostring

local Counter = {
  _NAME = "Counter",
  init = function(self) self.n = 0 end,
  inc = function(self, k) self.n = self.n + k end,
  get = function(self) return self.n end,
}

local Producer = {
  _NAME = "Producer",
  init = function(self, counter) self.counter = counter end,
  run = function(self, n)
    local counter = self.counter
    local t0 = now()
    for _ = 1, n do
      local ok, err = counter:send("inc", 1)
      if not ok then error("counting: send failed: " .. tostring(err)) end
    end
    -- the counter's mailbox is usually full here: this call first waits for
    -- room, then for the reply
    local sum = counter:call("get")
    return sum, now() - t0
  end,
}

B.main(function()
  local counter = troupe.spawn(Counter)
  local producer = troupe.spawn(Producer, counter)
  local sum, ms = producer:call_with(B.forever, "run", N)
  B.check(sum == N, "counting: the counter read %s, want %d", tostring(sum), N)
  B.report("counting", B.rate(N, ms), "msgs/s")
end)
