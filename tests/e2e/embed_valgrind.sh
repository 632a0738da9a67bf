#!/usr/bin/env bash
# examples/embed under valgrind: the right answers, exit code 0, no memory
# errors and no definite or indirect leaks (error exit code 9 otherwise).
set -u
: "${TROUPE_BINARY_DIR:?}"
if [ "${TROUPE_SANITIZE:-OFF}" = "ON" ]; then
  echo "embed_valgrind.sh: skipped: valgrind and AddressSanitizer do not mix (TROUPE_SANITIZE=ON)"
  exit 0
fi
if ! command -v valgrind >/dev/null; then
  echo "embed_valgrind.sh: FAIL: valgrind is not installed" >&2
  exit 1
fi
embed="$TROUPE_BINARY_DIR/examples/embed"
[ -x "$embed" ] || { echo "embed_valgrind.sh: FAIL: $embed not built" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
  "$embed" >"$tmp/out" 2>"$tmp/err"
code=$?
failed=0
if [ "$code" -ne 0 ]; then
  echo "FAIL: embed under valgrind exited with $code (9: valgrind found errors)" >&2
  cat "$tmp/err" >&2
  failed=1
fi
# The answers may come in any order; each must be there exactly once.
sort >"$tmp/expected" <<'EOF'
reply: ok "HELLO, EMBEDDER"
error: no_handler "<actor 2 Relay> has no handler 'nope'"
reply: ok "HELLO, C"
EOF
grep -v '^3 answers$' "$tmp/out" | sort >"$tmp/got"
if ! diff -u "$tmp/expected" "$tmp/got"; then
  echo "FAIL: embed printed other answers (above)" >&2
  failed=1
fi
if [ "$(tail -n 1 "$tmp/out")" != "3 answers" ]; then
  echo "FAIL: embed's last line is not '3 answers': $(tail -n 1 "$tmp/out")" >&2
  failed=1
fi
if grep -q "==[0-9]*==" "$tmp/err"; then
  echo "FAIL: valgrind reported:" >&2
  cat "$tmp/err" >&2
  failed=1
fi
[ "$failed" -eq 0 ] && echo "embed_valgrind.sh: all passed"
exit "$failed"
