-- The Lua-written part of the REPL (host/src/repl.c): the hidden actor that
-- evaluates prompt lines, the value formatter and tab completion. It runs
-- once per host, with a table of C helpers as its argument.
local C = ...
local troupe = require "troupe"

local M = {}
local WIDTH = 78       -- a table that fits in this many columns prints on one line
local MAX_ITEMS = 100  -- entries shown per table
local MAX_DEPTH = 8

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in local nil not
            or repeat return then true until while]]):gmatch("%a+") do keywords[w] = true end

local function is_ident(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not keywords[s]
end

local function quote(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"):gsub("\r", "\\r"))
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then
    local ok, s = pcall(tostring, v)
    if ok and type(s) == "string" then return s end
  end
  if t == "table" then return nil end
  return (tostring(v):gsub("^(%a+): 0x0*", "%1: 0x"))
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    if ta == "number" then return true end
    if tb == "number" then return false end
    return ta < tb
  end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local render

-- The entries of t as {key text or nil, value}, array part first.
local function entries(t)
  local list, n = {}, #t
  for i = 1, n do list[#list + 1] = {nil, t[i]} end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  for _, k in ipairs(keys) do list[#list + 1] = {k, rawget(t, k)} end
  return list
end

local function key_text(k, seen, depth)
  if is_ident(k) then return k end
  return "[" .. render(k, 0, seen, depth + 1) .. "]"
end

function render(v, indent, seen, depth)
  local s = scalar(v)
  if s then return s end
  if seen[v] then return "<cycle>" end
  if depth >= MAX_DEPTH then return "{...}" end
  local list = entries(v)
  if #list == 0 then return "{}" end
  seen[v] = true
  local parts, more = {}, 0
  for i, e in ipairs(list) do
    if i > MAX_ITEMS then
      more = #list - MAX_ITEMS
      break
    end
    local val = render(e[2], indent + 2, seen, depth + 1)
    parts[#parts + 1] = e[1] == nil and val or (key_text(e[1], seen, depth) .. " = " .. val)
  end
  seen[v] = nil
  if more > 0 then parts[#parts + 1] = "... (" .. more .. " more)" end
  local one = "{" .. table.concat(parts, ", ") .. "}"
  if #one + indent <= WIDTH and not one:find("\n", 1, true) then return one end
  local pad = string.rep(" ", indent + 2)
  return "{\n" .. pad .. table.concat(parts, ",\n" .. pad) .. "\n" .. string.rep(" ", indent) .. "}"
end

function M.format(v) return render(v, 0, {}, 0) end

-- Values separated by ", " (a table that does not fit goes on its own lines).
function M.format_values(t, i, j)
  local out = {}
  for k = i, j do out[#out + 1] = render(t[k], 0, {}, 0) end
  return table.concat(out, ", ")
end

-- One clear line for an error value.
function M.errline(e)
  if type(e) == "string" then return e end
  if troupe.is_error(e) then
    return tostring(e.code) .. ": " .. tostring(e.message)
  end
  return "error: " .. M.format(e)
end

local function traceback(e)
  local tb = debug.traceback(M.errline(e), 3)
  -- drop the REPL's own frames below the line's code
  tb = tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
  if type(e) == "table" and type(e.traceback) == "string" then
    tb = tb .. "\n(in the callee)\n" .. e.traceback
  end
  return tb
end

-- A session's globals: reads fall through to the host's globals (the
-- script's), writes stay in the session.
function M.new_env(sid)
  local env = setmetatable({}, {__index = _G})
  env.troupe = troupe
  env.print = function(...)
    local t = table.pack(...)
    for k = 1, t.n do t[k] = tostring(t[k]) end
    C.out(sid, table.concat(t, "\t", 1, t.n))
  end
  return env
end

-- The hidden per-session actor: each line runs as one call to `eval`, in
-- the handler's coroutine, so calls and sleeps at the prompt suspend only
-- this actor.
local Repl = {
  eval = function(self, src, ...)
    local env = self.env
    local f, err = load("return " .. src, "=stdin", "t", env)
    if not f then f, err = load(src, "=stdin", "t", env) end
    if not f then return false, err end
    local tb
    C.begin(self.sid)
    local r = table.pack(xpcall(f, function(e)
      tb = traceback(e)
      return e
    end, ...))
    C.finish(self.sid)
    if r[1] then
      if r.n == 1 then return true end
      return true, M.format_values(r, 2, r.n)
    end
    return false, M.errline(r[2]), tb
  end,
}
M.Repl = troupe.behaviour("Repl", Repl)

function M.spawn() return troupe.spawn(M.Repl) end

-- ---- completion -----------------------------------------------------------------------
local BREAK = "[%s\"'`@$><=;|&{}(),+%-*/%%^~%[%]#]"
local addr_methods = {"call", "call_with", "send", "try_send", "stop", "kill", "alive", "weak", "id"}

local function sorted_keys(t, prefix, out, seen)
  local ok = pcall(function()
    for k in pairs(t) do
      if type(k) == "string" and k:sub(1, #prefix) == prefix and not seen[k] then
        seen[k] = true
        out[#out + 1] = k
      end
    end
  end)
  return ok
end

-- Value of a dotted path ("a.b.c") in env, or nil; no code runs except
-- __index metamethods.
local function lookup(env, path)
  local v = env
  for part in path:gmatch("[^%.:]+") do
    if type(v) ~= "table" and type(v) ~= "userdata" then return nil end
    local ok, r = pcall(function() return v[part] end)
    if not ok then return nil end
    v = r
  end
  return v
end

local function handler_names(v)
  local id = C.addr_id(v)
  if not id then return {} end
  return C.handlers(id)
end

local function addr_arg(env, prefix)
  local out = {}
  for _, n in ipairs(C.names()) do
    if n:sub(1, #prefix) == prefix then out[#out + 1] = n end
  end
  local seen = {}
  for _, t in ipairs({env, _G}) do
    pcall(function()
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, #prefix) == prefix and not seen[k] and C.addr_id(v) then
          seen[k] = true
          out[#out + 1] = k
        end
      end
    end)
  end
  return out
end

local ADDR_CMDS = {info = 1, state = 1, send = 1, call = 1, stop = 1, kill = 1, trace = 1,
                   untrace = 1, mailbox = 1, reload = 1}

-- Candidates that replace the last word of `line` (split as libedit does).
function M.complete(env, line, commands)
  local word = line:match("[^%s\"'`@$><=;|&{}(),+%-*/%%^~%[%]#]*$") or ""
  local before = line:sub(1, #line - #word)
  local out = {}
  -- :commands
  local cmd, rest = line:match("^%s*:(%a*)(.*)$")
  if cmd then
    if rest == "" then
      for _, c in ipairs(commands) do
        if (":" .. c):sub(1, #word) == word then out[#out + 1] = ":" .. c end
      end
      return out
    end
    local args = {}
    for a in rest:gmatch("%S+") do args[#args + 1] = a end
    local nargs = #args - (rest:match("%s$") and 0 or 1) -- complete arguments before this one
    if ADDR_CMDS[cmd] and nargs == 0 then return addr_arg(env, word) end
    if (cmd == "send" or cmd == "call") and nargs == 1 then
      local target = C.resolve(args[1], env)
      if target then
        for _, h in ipairs(C.handlers(target)) do
          if h:sub(1, #word) == word then out[#out + 1] = h end
        end
      end
      return out
    end
    return out
  end
  -- inside a string: addr:call("wi / addr:send("wi / troupe.whereis("ba
  local expr, meth, str = line:match("([%a_][%w_%.]*):(%a[%w_]*)%(%s*['\"]([%w_]*)$")
  if expr and (meth == "call" or meth == "send" or meth == "try_send") then
    for _, h in ipairs(handler_names(lookup(env, expr))) do
      if h:sub(1, #str) == str then out[#out + 1] = h end
    end
    return out
  end
  if line:match("whereis%(%s*['\"][^'\"]*$") or line:match("unregister%(%s*['\"][^'\"]*$") then
    for _, n in ipairs(C.names()) do
      if n:sub(1, #word) == word then out[#out + 1] = n end
    end
    return out
  end
  if before:match("['\"]$") then return out end
  -- a path: a.b.c / addr:meth
  local base, sep, last = word:match("^(.*)([%.:])([%w_]*)$")
  if base then
    local v = lookup(env, base)
    local seen = {}
    if sep == ":" then
      if C.addr_id(v) then
        for _, m in ipairs(addr_methods) do
          if m:sub(1, #last) == last then out[#out + 1] = base .. ":" .. m end
        end
        return out
      end
    end
    if type(v) == "table" then
      local names = {}
      sorted_keys(v, last, names, seen)
      local mt = getmetatable(v)
      if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
        sorted_keys(rawget(mt, "__index"), last, names, seen)
      end
      table.sort(names)
      for _, k in ipairs(names) do out[#out + 1] = base .. sep .. k end
    elseif C.addr_id(v) then
      for _, m in ipairs(addr_methods) do
        if m:sub(1, #last) == last then out[#out + 1] = base .. ":" .. m end
      end
    end
    return out
  end
  if word == "" then return out end
  local names, seen = {}, {}
  sorted_keys(env, word, names, seen)
  sorted_keys(_G, word, names, seen)
  for k in pairs(keywords) do
    if k:sub(1, #word) == word and not seen[k] then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

-- :state of a Lua actor: a read-only rendering of its state table.
M.render = M.format

-- :reload runs migrate(state) on the live state: if it fails halfway, the
-- actor keeps its old code, and must keep its old state too. snapshot(t)
-- records the entries and metatable of every table reachable from t (keys,
-- values, metatables; iteratively: state may nest deeply); restore(s) puts
-- them back in place, so each table keeps its identity.
local getmt, setmt = debug.getmetatable, debug.setmetatable
function M.snapshot(root)
  local saved, stack, n = {}, { root }, 1
  while n > 0 do
    local t = stack[n]
    stack[n] = nil
    n = n - 1
    if not saved[t] then
      local copy = {}
      saved[t] = { entries = copy, mt = getmt(t) }
      for k, v in next, t do
        copy[k] = v
        if type(k) == "table" and not saved[k] then n = n + 1; stack[n] = k end
        if type(v) == "table" and not saved[v] then n = n + 1; stack[n] = v end
      end
      local mt = saved[t].mt
      if type(mt) == "table" and not saved[mt] then n = n + 1; stack[n] = mt end
    end
  end
  return saved
end

function M.restore(saved)
  for t, s in next, saved do
    local keys = {}
    for k in next, t do keys[#keys + 1] = k end
    for i = 1, #keys do rawset(t, keys[i], nil) end
    for k, v in next, s.entries do rawset(t, k, v) end
    setmt(t, s.mt)
  end
end

return M
