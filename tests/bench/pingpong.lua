-- pingpong: a client actor makes N synchronous calls to a server actor; the
-- server answers with its integer argument + 1; the client checks every reply.
--   troupe run tests/bench/pingpong.lua [N]      (default N = 1,000,000)
local troupe = require "troupe"
local B = dofile(((arg and arg[0] or ""):match("(.*/)") or "./") .. "common.lua")
local N = B.n(1000000)
local now, error = B.now, error

local Server = {
  _NAME = "Server",
  ping = function(self, i) return i + 1 end,
}

local Client = {
  _NAME = "Client",
  init = function(self, server) self.server = server end,
  run = function(self, n)
    local server = self.server
    local t0 = now()
    for i = 1, n do
      local r = server:call("ping", i)
      if r ~= i + 1 then error(("pingpong: call %d answered %s, want %d"):format(i, tostring(r), i + 1)) end
    end
    return n, now() - t0
  end,
}

B.main(function()
  local server = troupe.spawn(Server)
  local client = troupe.spawn(Client, server)
  local done, ms = client:call_with(B.forever, "run", N)
  B.check(done == N, "pingpong: %s calls checked, want %d", tostring(done), N)
  B.report("pingpong", B.rate(N, ms), "calls/s")
end)
