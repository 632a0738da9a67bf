#!/usr/bin/env bash
# troupe repl through a terminal: the bank scenario, values and tables,
# addresses, errors and :tb, continuation lines, Tab completion, Ctrl-C on a
# runaway line and at the prompt, timers firing while at the prompt, history
# across runs, Ctrl-D.
. "$(dirname "$0")/repl_lib.bash"

start r "$TROUPE repl"
wait_for r ":help for commands"
# the bank scenario
type_line r 'acct = troupe.spawn_with({name = "bank"}, "examples/account.lua", 50)'
type_line r 'acct:call("withdraw", 20)'
wait_for r $'30'
type_line r 'acct'
wait_for r '<actor 2 Account "bank">'
type_line r 'acct:call("withdraw", 100)'
wait_for r 'nil, {available = 30, reason = "insufficient funds", requested = 100}'
type_line r '{1, "two", {x = 1, [10] = true}, addr = acct}'
wait_for r '{1, "two", {[10] = true, x = 1}, addr = <actor 2 Account "bank">}'
type_line r 'acct:call("nosuch")'
wait_for r 'no_handler: <actor 2 Account "bank"> has no handler '"'nosuch'"
# errors: one line, the traceback on demand
type_line r 'error("boom")'
wait_for r 'stdin:1: boom'
type_line r ':tb'
wait_for r 'stack traceback:'
# continuation lines
type_line r 'function double(x)'
wait_for r '>> '
type_line r '  return x * 2'
type_line r 'end'
type_line r 'double(21)'
wait_for r '42'
# globals persist; a long table prints on several lines
type_line r 'big = {} for i = 1, 30 do big[i] = i * 1000 end'
type_line r 'big'
wait_for r '  1000,'
# Tab completion: an address's methods, its handler names, globals, commands, names
tm send-keys -t main:r -l 'acct:ca'
keys r Tab
tm send-keys -t main:r -l '("wi'
keys r Tab
tm send-keys -t main:r -l '", 1)'
keys r Enter
wait_for r 'acct:call("withdraw", 1)'
wait_for r '29'
tm send-keys -t main:r -l 'dou'
keys r Tab
tm send-keys -t main:r -l '(5)'
keys r Enter
wait_for r 'double(5)'
wait_for r '10'
tm send-keys -t main:r -l ':inf'
keys r Tab
tm send-keys -t main:r -l ' ba'
keys r Tab
keys r Enter
wait_for r '  handlers   balance, deposit, withdraw'
# Ctrl-C interrupts a runaway line, not the host
type_line r 'while true do end'
sleep 0.5
keys r C-c
wait_for r 'interrupted'
type_line r 'acct:call("balance")'
wait_count r '29' 2
# ...also a runaway loop inside a coroutine of the line's own
type_line r 'coroutine.wrap(function() coroutine.wrap(function() while true do end end)() end)()'
sleep 0.5
keys r C-c
wait_count r 'interrupted' 2
type_line r 'acct:call("balance")'
wait_count r '29' 3
# Ctrl-C while a line waits in a call
type_line r 'troupe.sleep(60000)'
sleep 0.5
keys r C-c
wait_count r 'interrupted' 3
# Ctrl-C at the prompt drops the typed line
tm send-keys -t main:r -l 'this is not sent'
keys r C-c
type_line r '6 * 7'
wait_count r '42' 2
screen r | grep -q 'syntax error near' && fail "the line dropped by Ctrl-C was evaluated"
# timers keep firing while we sit at the prompt
type_line r 'ticker = troupe.spawn({init = function(s) s.n = 0 troupe.send_every(20, "tick") end, tick = function(s) s.n = s.n + 1 end, get = function(s) return s.n end})'
sleep 1
type_line r 'ticker:call("get") > 10'
wait_for r 'true'
# print goes to the prompt
type_line r 'print("hello", 1)'
wait_for r 'hello'
# Ctrl-D leaves
keys r C-d
wait_exit r
grep -qF 'double(21)' "$HOME/.troupe_history" || fail "history file lacks the lines typed"
# history persists: Up shows the last line of the previous run
start r2 "$TROUPE repl"
wait_for r2 ":help for commands"
keys r2 Up
wait_for r2 '> print("hello", 1)'
keys r2 C-u
keys r2 C-d
wait_exit r2
# troupe repl SCRIPT: its actors are running when the prompt comes
cat >"$TMP/app.lua" <<'LUA'
local troupe = require "troupe"
bank = troupe.spawn_with({name = "bank"}, "examples/account.lua", 100)
LUA
start r3 "$TROUPE repl $TMP/app.lua"
wait_for r3 ":help for commands"
type_line r3 'bank:call("deposit", 5)'
wait_for r3 '105'
keys r3 C-d
wait_exit r3
finish
