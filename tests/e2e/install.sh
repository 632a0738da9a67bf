#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then use the installed tree the
# ways a user would: a C program (tests/e2e/consumer) built with pkg-config
# and with find_package(troupe), the installed troupe binary, and the Lua
# module from a plain lua5.4.
set -u
: "${TROUPE_BINARY_DIR:?}"
src=${TROUPE_SOURCE_DIR:-$(pwd)}
if [ "${TROUPE_SANITIZE:-OFF}" = "ON" ]; then
  echo "install.sh: skipped under TROUPE_SANITIZE=ON (kept for the plain build)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# step NAME CMD...: runs CMD with its output in $tmp/NAME.log, shown on failure
step() {
  local name=$1
  shift
  if ! "$@" >"$tmp/$name.log" 2>&1; then
    fail "$name: $*"
    sed 's/^/    /' "$tmp/$name.log" | tail -n 40 >&2
    return 1
  fi
}

step install cmake --install "$TROUPE_BINARY_DIR" --prefix "$prefix" || exit 1
for f in include/troupe.h lib/libtroupe.so lib/libtroupe.a lib/pkgconfig/troupe.pc \
         lib/cmake/troupe/troupeConfig.cmake lib/lua/5.4/troupe.so bin/troupe; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

check_consumer() { # NAME BINARY
  if ! "$2" >"$tmp/$1.out" 2>&1; then
    fail "$1: the consumer failed:"
    sed 's/^/    /' "$tmp/$1.out" >&2
    return
  fi
  grep -q "^troupe .*: 3 of 3$" "$tmp/$1.out" || fail "$1: unexpected output: $(cat "$tmp/$1.out")"
  # the shared library it runs with is the installed one
  if command -v ldd >/dev/null; then
    ldd "$2" | grep -q "$prefix/lib/libtroupe.so" || fail "$1: does not use $prefix/lib/libtroupe.so"
  fi
}

# ---- pkg-config
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
flags=$(pkg-config --cflags --libs troupe) || fail "pkg-config --cflags --libs troupe failed"
case "$flags" in *"-I$prefix/include"* | *"-I${prefix}/lib/pkgconfig/../../include"*) ;;
  *) [ "$(pkg-config --variable=includedir troupe)" -ef "$prefix/include" ] ||
       fail "pkg-config does not point at the installed headers: $flags" ;;
esac
[ "$(pkg-config --modversion troupe)" = "$(sed -n 's/#define TROUPE_VERSION_STRING "\(.*\)"/\1/p' "$src/host/include/troupe.h")" ] ||
  fail "pkg-config --modversion troupe: $(pkg-config --modversion troupe)"
# shellcheck disable=SC2086
if step pkgconfig-build cc -o "$tmp/consumer-pc" "$src/tests/e2e/consumer/consumer.c" $flags; then
  check_consumer pkgconfig "$tmp/consumer-pc"
fi

# ---- CMake: find_package(troupe), troupe::troupe
if step cmake-configure cmake -S "$src/tests/e2e/consumer" -B "$tmp/cmake-build" \
     -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release &&
   step cmake-build cmake --build "$tmp/cmake-build"; then
  check_consumer cmake "$tmp/cmake-build/consumer"
fi

# ---- the installed command line
printf 'local troupe = require "troupe"\nprint(troupe.spawn({ hi = function() return "hi" end }):call("hi"))\n' \
  >"$tmp/hi.lua"
out=$("$prefix/bin/troupe" run "$tmp/hi.lua" 2>&1) || fail "installed troupe failed: $out"
[ "$out" = "hi" ] || fail "installed troupe printed: $out"

# ---- the Lua module from a plain lua5.4
out=$(lua5.4 -e "package.cpath = '$prefix/lib/lua/5.4/?.so;' .. package.cpath
local t = require 'troupe'
assert(t.version, 'no version')
local a = t.spawn({ double = function(self, x) return x * 2 end })
local b = t.spawn({ init = function(self, peer) self.peer = peer end,
                    quad = function(self, x) return self.peer:call('double', x) * 2 end }, a)
print(t.version, a:call('double', 21), b:call('quad', 5))" 2>&1) || fail "lua5.4 require 'troupe' failed: $out"
case "$out" in *"	42	20") ;; *) fail "lua5.4 with the installed module printed: $out" ;; esac
# and it is the installed module that was loaded
out=$(lua5.4 -e "package.cpath = '$prefix/lib/lua/5.4/?.so'
local ok, t = pcall(require, 'troupe'); print(ok)" 2>&1)
[ "$out" = "true" ] || fail "require 'troupe' with only the installed cpath: $out"

if [ "$failures" -ne 0 ]; then
  echo "install.sh: $failures failure(s)" >&2
  exit 1
fi
echo "install.sh: all passed"
