#!/bin/sh
# tmux (libevent_core): a detached session started, listed and killed,
# exactly as without loopsan. Run by loopsan run (the .expect file): the
# tmux client, the server it forks and the session's shell are all traced.
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/loopsan-tmux.XXXXXX") || exit 99
TMUX_TMPDIR=$dir
export TMUX_TMPDIR
unset TMUX
sock=loopsan$$
tmux -L "$sock" -f /dev/null new-session -d -s probe 'sleep 30' || exit 1
sessions=$(tmux -L "$sock" list-sessions -F '#{session_name}')
tmux -L "$sock" kill-server
status=$?
rm -rf "$dir"
echo "sessions: $sessions"
test "$sessions" = probe && test "$status" -eq 0
