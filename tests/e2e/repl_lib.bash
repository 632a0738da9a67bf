# Helpers for the REPL end-to-end tests (tests/e2e/repl_*.sh): drive the real
# troupe binary through a pseudo-terminal with tmux, as a person would.
# Each test gets its own tmux server (-L), HOME and temp dir; everything is
# removed on exit, whatever happens.
set -u
: "${TROUPE:?TROUPE must name the troupe binary}"
cd "${TROUPE_SOURCE_DIR:-.}"
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (scripts/setup)"; exit 1; }

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
TMP=$(mktemp -d)
chmod 700 "$TMP"
export HOME=$TMP/home
mkdir -p "$HOME"
SOCK="troupe-e2e-$$-$RANDOM"
# generous under the sanitizers and on a loaded machine
WAIT=${REPL_WAIT:-20}
[ "${TROUPE_SANITIZE:-OFF}" = ON ] && WAIT=60
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
PIDS=()

tm() { tmux -L "$SOCK" -f /dev/null "$@"; }
cleanup() {
  local sp
  sp=$(tm display-message -p '#{socket_path}' 2>/dev/null)
  tm kill-server >/dev/null 2>&1
  [ -n "$sp" ] && rm -f "$sp"
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# start WINDOW CMD: a new pane running CMD (a shell string), 160x50
start() {
  local w=$1
  shift
  if ! tm has-session -t main 2>/dev/null; then
    tm new-session -d -s main -n "$w" -x 160 -y 50 "$*"
  else
    tm new-window -d -t main -n "$w" "$*"
  fi
  tm set-option -g remain-on-exit on >/dev/null
  tm set-option -w -t "main:$w" remain-on-exit on >/dev/null 2>&1
}
# screen WINDOW: everything the pane shows, history included
screen() { tm capture-pane -p -J -S -5000 -t "main:$1" 2>/dev/null; }
# type WINDOW TEXT: types TEXT (literally) and Enter
type_line() {
  tm send-keys -t "main:$1" -l -- "$2"
  tm send-keys -t "main:$1" Enter
}
keys() { local w=$1; shift; tm send-keys -t "main:$w" "$@"; }
# wait_for WINDOW TEXT [SECONDS]: until the screen shows TEXT (fixed string)
wait_for() {
  local w=$1 text=$2 limit=${3:-$WAIT}
  local end=$((SECONDS + limit))
  while [ $SECONDS -lt $end ]; do
    screen "$w" | grep -qF -- "$text" && return 0
    sleep 0.1
  done
  fail "window $w: no '$text' within ${limit}s; the screen was:"
  screen "$w" | grep -v '^$' | tail -40 >&2
  return 1
}
# count WINDOW TEXT: how many lines show TEXT
count() { screen "$1" | grep -cF -- "$2"; }
# wait_count WINDOW TEXT N: until at least N lines show TEXT
wait_count() {
  local w=$1 text=$2 n=$3 limit=${4:-$WAIT}
  local end=$((SECONDS + limit))
  while [ $SECONDS -lt $end ]; do
    [ "$(count "$w" "$text")" -ge "$n" ] && return 0
    sleep 0.1
  done
  fail "window $w: fewer than $n lines with '$text' within ${limit}s; the screen was:"
  screen "$w" | grep -v '^$' | tail -40 >&2
  return 1
}
# pane_dead WINDOW: 1 when the program in it has exited
pane_dead() { tm display-message -p -t "main:$1" '#{pane_dead}' 2>/dev/null; }
wait_exit() {
  local w=$1 limit=${2:-$WAIT}
  local end=$((SECONDS + limit))
  while [ $SECONDS -lt $end ]; do
    [ "$(pane_dead "$w")" = 1 ] && return 0
    sleep 0.1
  done
  fail "window $w: the program did not exit within ${limit}s"
  return 1
}
# the last prompt line is empty ("> " and nothing typed): the REPL is idle
wait_prompt() { wait_for "$1" "${2:-> }" ; }

finish() {
  if [ "$failures" -eq 0 ]; then
    echo "ok"
    exit 0
  fi
  echo "$failures failures"
  exit 1
}
