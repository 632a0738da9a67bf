#!/usr/bin/env bash
# The REPL on the actors of another scheduler (the host runs two, whatever
# TROUPE_SCHEDULERS says): :state renders their state, :trace prints their
# messages in and out (in order) until :untrace, :reload swaps their handlers.
. "$(dirname "$0")/repl_lib.bash"

cat >"$TMP/counter.lua" <<'LUA'
local troupe = require "troupe"
return {
  init = function(s, n) s.count = n s.tags = {"a", "b"} end,
  add = function(s, n) s.count = s.count + n return s.count end,
  get = function(s) return s.count end,
}
LUA
cat >"$TMP/fwd.lua" <<'LUA'
return { fwd = function(s, to, n) to:send("add", n) return to:call("get") end }
LUA
cat >"$TMP/app.lua" <<LUA
local troupe = require "troupe"
c4 = troupe.spawn_with({name = "c4", scheduler = 2}, "$TMP/counter.lua", 4)
f5 = troupe.spawn_with({name = "f5", scheduler = 2}, "$TMP/fwd.lua")
LUA

start r "TROUPE_SCHEDULERS=2 $TROUPE repl $TMP/app.lua"
wait_for r ":help for commands"
type_line r 'c4:call("get"), c4, f5'
wait_for r '4, <actor 1.1 Counter "c4">, <actor 1.2 Fwd "f5">'

# :state: rendered on scheduler 2's thread
type_line r ':state c4'
wait_for r '{count = 4, tags = {"a", "b"}}'
type_line r ':state 1.2'
wait_for r '{}'

# :trace: messages in and out of actors of scheduler 2
type_line r ':trace c4'
wait_for r 'tracing <actor 1.1 Counter "c4">'
type_line r ':trace f5'
wait_for r 'tracing <actor 1.2 Fwd "f5">'
type_line r 'c4:call("add", 2)'
wait_for r '<actor 1.1 Counter "c4"> <- <actor'
wait_for r 'call add(2)'
wait_for r '<actor 1.1 Counter "c4"> => ok 6'
type_line r 'f5:call("fwd", c4, 3)'
wait_for r '<actor 1.2 Fwd "f5"> => ok 9'
wait_for r '<actor 1.1 Counter "c4"> => ok 9'
# one actor's lines in the order it made them
order=$(screen r | grep -E '^[0-9:.]+ <actor 1\.2 Fwd "f5"> (<-|->|=>) ' |
  sed -E 's/.*"f5"> (<-|->|=>) .*(fwd\(|send add\(3\)|call get\(\)|ok 9).*/\1 \2/' | tr '\n' '|')
[ "$order" = "<- fwd(|-> send add(3)|-> call get()|=> ok 9|" ] ||
  fail "f5's trace lines out of order or missing: $order"
screen r | grep -F '<actor 1.1 Counter "c4"> <- <actor 1.2 Fwd "f5"> send add(3)' >/dev/null ||
  fail "c4's trace misses the send from f5"
# :untrace stops them
type_line r ':untrace c4'
wait_for r 'stopped tracing c4'
type_line r 'c4:call("add", 100)'
wait_for r '109'
type_line r 'f5:call("fwd", c4, 1000)'
wait_for r '<actor 1.2 Fwd "f5"> => ok 1109'
[ "$(count r 'add(100)')" -eq 0 ] || fail "c4 was traced after :untrace"
[ "$(count r 'c4"> => ok 1109')" -eq 0 ] || fail "c4 was traced after :untrace"
type_line r ':untrace'
wait_for r 'tracing nothing'
type_line r 'f5:call("fwd", c4, 1)'
wait_for r '1110'
[ "$(count r 'fwd(<actor 1.1 Counter "c4">, 1)')" -eq 0 ] || fail "f5 was traced after :untrace"
type_line r ':trace 1.99'
wait_for r "no live actor '1.99'"

keys r C-d
wait_exit r
finish
