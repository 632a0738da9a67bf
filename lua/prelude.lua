-- The Lua-written part of the troupe module. It runs once per Lua state, with
-- the module table (built in C) as its argument, and returns the runner the
-- host uses for an actor's first message (init, then on_start).
local troupe = ...

local function run_init(behaviour, self, ...)
  local init = behaviour.init
  if init then init(self, ...) end
  local on_start = behaviour.on_start
  if on_start then on_start(self) end
end

-- troupe.errcode(err): the stable code of a system error value, or nil.
function troupe.errcode(err)
  if troupe.is_error(err) then return err.code end
  return nil
end

return run_init
