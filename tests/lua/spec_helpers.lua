-- Shared helpers for the busted specs (not a spec itself).
local troupe = require "troupe"
local assert = require "luassert"

local M = {}

-- Polls (running the loop) until pred() is true or `ms` (default 5000) have
-- gone by; returns whether pred() became true.
function M.wait_until(pred, ms)
  local deadline = troupe.now() + (ms or 5000)
  while not pred() do
    if troupe.now() > deadline then return false end
    troupe.sleep(2)
  end
  return true
end

-- Calls f(...) expecting it to raise; returns the error value.
function M.raised(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return e
end

-- Calls f(...) expecting a troupe system error; returns it.
function M.syserr(f, ...)
  local e = M.raised(f, ...)
  assert.is_true(troupe.is_error(e), "not a system error: " .. tostring(e))
  return e
end

return M
