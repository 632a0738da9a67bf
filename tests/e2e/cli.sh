#!/usr/bin/env bash
# The troupe command line: --version, --help, usage errors, running scripts
# (examples/bank.lua with the Lua and the C Account), script errors, exit
# codes and script arguments.
set -u
: "${TROUPE:?TROUPE must name the troupe binary}"
: "${TROUPE_BINARY_DIR:?}"
cd "${TROUPE_SOURCE_DIR:-.}"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME CMD...: runs CMD, keeping stdout, stderr and the exit code
run() {
  local name=$1
  shift
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
}
rc() { cat "$tmp/$1.rc"; }
expect_rc() { # NAME CODE
  [ "$(rc "$1")" = "$2" ] || fail "$1: exit code $(rc "$1"), wanted $2; stderr: $(head -c 600 "$tmp/$1.err")"
}
expect_nonzero() {
  [ "$(rc "$1")" != 0 ] || fail "$1: exit code 0, wanted non-zero"
}
expect_in() { # NAME out|err TEXT
  grep -qF -- "$3" "$tmp/$1.$2" || fail "$1: $2 lacks '$3'; it was: $(head -c 600 "$tmp/$1.$2")"
}

# ---- --version, --help, no arguments
version=$(sed -n 's/#define TROUPE_VERSION_STRING "\(.*\)"/\1/p' host/include/troupe.h)
run version "$TROUPE" --version
expect_rc version 0
grep -qE "^troupe $version \(Lua 5\.4" "$tmp/version.out" || fail "--version printed: $(cat "$tmp/version.out")"

run help "$TROUPE" --help
expect_rc help 0
expect_in help out "usage: troupe run SCRIPT"
[ -s "$tmp/help.err" ] && fail "--help wrote to stderr: $(cat "$tmp/help.err")"

run noargs "$TROUPE"
expect_rc noargs 2
expect_in noargs err "usage:"
[ -s "$tmp/noargs.out" ] && fail "usage without arguments went to stdout"

run runnoscript "$TROUPE" run
expect_rc runnoscript 2
expect_in runnoscript err "run needs a script"

run badopt "$TROUPE" --frobnicate
expect_rc badopt 2
expect_in badopt err "unknown option '--frobnicate'"

# ---- examples/bank.lua, exactly
cat >"$tmp/bank.expected" <<'EOF'
opened <actor 1 Account> with 50
withdraw 20 -> 30
deposit 40 -> 70
withdraw 100 -> error: insufficient funds (requested 100, available 70)
copy withdraws 10 -> 60
original withdraws 10 -> 50
balance 50
EOF
run bank "$TROUPE" run examples/bank.lua
expect_rc bank 0
diff -u "$tmp/bank.expected" "$tmp/bank.out" >"$tmp/bank.diff" || fail "bank.lua output differs:
$(cat "$tmp/bank.diff")"

run bankc env TROUPE_BANK_SO="$TROUPE_BINARY_DIR/bank_account.so" "$TROUPE" run examples/bank.lua c
expect_rc bankc 0
diff -u "$tmp/bank.expected" "$tmp/bankc.out" >"$tmp/bankc.diff" || fail "bank.lua c output differs:
$(cat "$tmp/bankc.diff")"

# a C library that does not exist: an error, not a crash
run bankc_missing env TROUPE_BANK_SO="$tmp/nope.so" "$TROUPE" run examples/bank.lua c
expect_nonzero bankc_missing
[ "$(rc bankc_missing)" -lt 128 ] || fail "bank.lua c with a missing library died of a signal"

# shorthand: troupe SCRIPT
run short "$TROUPE" examples/bank.lua
expect_rc short 0
diff -q "$tmp/bank.expected" "$tmp/short.out" >/dev/null || fail "troupe SCRIPT output differs from troupe run SCRIPT"

# ---- script errors
printf 'local x = 1\nlocal y = = 2\n' >"$tmp/syntax.lua"
run syntax "$TROUPE" run "$tmp/syntax.lua"
expect_nonzero syntax
expect_in syntax err "syntax.lua:2:"

printf 'local t = {}\nerror("kaboom at runtime")\n' >"$tmp/runtime.lua"
run runtime "$TROUPE" run "$tmp/runtime.lua"
expect_nonzero runtime
expect_in runtime err "kaboom at runtime"
expect_in runtime err "runtime.lua:2:"

# an error inside an actor's handler, raised again in the main script by call
cat >"$tmp/actorerr.lua" <<'EOF'
local troupe = require "troupe"
local a = troupe.spawn({ boom = function() error("handler exploded") end })
a:call("boom")
EOF
run actorerr "$TROUPE" run "$tmp/actorerr.lua"
expect_nonzero actorerr
expect_in actorerr err "handler exploded"

run missing "$TROUPE" run "$tmp/does-not-exist.lua"
expect_nonzero missing
expect_in missing err "does-not-exist.lua"
grep -qiE "cannot open|no such file" "$tmp/missing.err" || fail "missing script: unclear message: $(cat "$tmp/missing.err")"

# ---- exit codes
printf 'require("troupe").exit(3)\n' >"$tmp/exit3.lua"
run exit3 "$TROUPE" run "$tmp/exit3.lua"
expect_rc exit3 3

# exit from inside a handler, with a timer that would keep the host running
cat >"$tmp/exit_actor.lua" <<'EOF'
local troupe = require "troupe"
local a = troupe.spawn({
  init = function(self) troupe.send_after(60000, "never") end,
  never = function() print("timer fired") end,
  quit = function(self, code) print("quitting"); troupe.exit(code) end,
})
a:send("quit", 5)
EOF
run exit_actor timeout 20 "$TROUPE" run "$tmp/exit_actor.lua"
expect_rc exit_actor 5
expect_in exit_actor out "quitting"

# the host runs until nothing is left: a timer fires before the exit
cat >"$tmp/timer.lua" <<'EOF'
local troupe = require "troupe"
troupe.spawn({
  init = function(self) troupe.send_after(30, "ding") end,
  ding = function() print("ding") end,
})
EOF
run timer "$TROUPE" run "$tmp/timer.lua"
expect_rc timer 0
expect_in timer out "ding"

# ---- arguments reach `arg`
printf 'print(#arg, arg[0], arg[1], arg[2])\n' >"$tmp/args.lua"
run args "$TROUPE" run "$tmp/args.lua" one "two words"
expect_rc args 0
printf '2\t%s\tone\ttwo words\n' "$tmp/args.lua" >"$tmp/args.expected"
diff -u "$tmp/args.expected" "$tmp/args.out" >/dev/null || fail "arg: got $(cat "$tmp/args.out")"
run args2 "$TROUPE" "$tmp/args.lua" x
printf '1\t%s\tx\tnil\n' "$tmp/args.lua" >"$tmp/args2.expected"
diff -u "$tmp/args2.expected" "$tmp/args2.out" >/dev/null || fail "arg (shorthand): got $(cat "$tmp/args2.out")"

# ---- --schedulers N (after the script, like --control), else TROUPE_SCHEDULERS
printf 'print(require("troupe").schedulers(), #arg, arg[1])\n' >"$tmp/sched.lua"
run sched3 "$TROUPE" run "$tmp/sched.lua" x --schedulers 3
expect_rc sched3 0
expect_in sched3 out "$(printf '3\t1\tx')"
TROUPE_SCHEDULERS=2 run schedenv "$TROUPE" run "$tmp/sched.lua"
expect_rc schedenv 0
expect_in schedenv out "$(printf '2\t0\tnil')"
run schedbad "$TROUPE" run "$tmp/sched.lua" --schedulers 0
expect_rc schedbad 2
expect_in schedbad err "--schedulers needs a number from 1 to 64, not '0'"
run schedmissing "$TROUPE" run "$tmp/sched.lua" --schedulers
expect_rc schedmissing 2
expect_in schedmissing err "--schedulers needs a number"

if [ "$failures" -ne 0 ]; then
  echo "cli.sh: $failures failure(s)" >&2
  exit 1
fi
echo "cli.sh: all passed"
