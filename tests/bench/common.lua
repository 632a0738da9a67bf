-- Shared helpers of the benchmark workloads (tests/bench/*.lua).
--   N comes from the first script argument, else env BENCH_N, else the default.
--   Results are printed as one line each: BENCH <name> <value> <unit>.
--   A wrong result raises an error, so `troupe run` exits non-zero.
local troupe = require "troupe"

local B = {}

function B.n(default)
  local v = tonumber(arg and arg[1]) or tonumber(os.getenv("BENCH_N"))
  if v then return math.floor(v) end
  return default
end

-- Wall-clock milliseconds (the loop's monotonic clock, refreshed).
B.now = troupe.now

-- count events in ms milliseconds, as events per second.
function B.rate(count, ms)
  if ms < 1 then ms = 1 end
  return count * 1000 / ms
end

function B.report(name, value, unit)
  io.stdout:write(string.format("BENCH %s %.0f %s\n", name, value, unit))
  io.stdout:flush()
end

function B.check(cond, fmt, ...)
  if not cond then error(string.format("CHECK FAILED: " .. fmt, ...), 2) end
end

-- Peak resident set size of this process (VmHWM), in bytes.
function B.vmhwm()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)%s*kB")
  return kb and tonumber(kb) * 1024 or 0
end

-- Runs the main part of a workload. A failure (a wrong result, or an error
-- value raised by a call) is printed with its message and exits with 1: the
-- host's own report of an uncaught error table is only "(error object is a
-- table value)".
function B.main(fn)
  local ok, err = xpcall(fn, function(e)
    return debug.traceback(tostring(e), 2)
  end)
  if not ok then
    io.stderr:write(tostring(err), "\n")
    io.stderr:flush()
    os.exit(1)
  end
end

-- Options for a main-script call that may outlast the default call timeout.
B.forever = { timeout = math.huge }

return B
