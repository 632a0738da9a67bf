-- callchain: actors A1..A10; a call to Ai calls A(i+1) and answers its result
-- + 1, A10 answers 0. A client makes N calls to A1, each must return 9.
-- The rate counts client calls (each is a chain of 10 nested calls).
--   troupe run tests/bench/callchain.lua [N]     (default N = 100,000)
local troupe = require "troupe"
local B = dofile(((arg and arg[0] or ""):match("(.*/)") or "./") .. "common.lua")
local N = B.n(100000)
local DEPTH = 10
local now, error, tostring = B.now, error, tostring

local Link = {
  _NAME = "Link",
  init = function(self, nxt) self.nxt = nxt end,
  get = function(self)
    local nxt = self.nxt
    if nxt then return nxt:call("get") + 1 end
    return 0
  end,
}

local Client = {
  _NAME = "Client",
  init = function(self, head) self.head = head end,
  run = function(self, n)
    local head = self.head
    local t0 = now()
    for i = 1, n do
      local r = head:call("get")
      if r ~= DEPTH - 1 then error(("callchain: call %d answered %s, want %d"):format(i, tostring(r), DEPTH - 1)) end
    end
    return n, now() - t0
  end,
}

B.main(function()
  local nxt = nil
  for _ = DEPTH, 1, -1 do nxt = troupe.spawn(Link, nxt) end
  local client = troupe.spawn(Client, nxt)
  local done, ms = client:call_with(B.forever, "run", N)
  B.check(done == N, "callchain: %s calls checked, want %d", tostring(done), N)
  B.report("callchain", B.rate(N, ms), "calls/s")
end)
