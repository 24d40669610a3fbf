# Sourced by scripts/test.sh: a JACK server on the dummy driver (no sound card), paced in real
# time, under a private name so it never meets another jackd on the machine. Every libjack
# client (cpal's JACK host, jack_lsp, jack_connect) follows JACK_DEFAULT_SERVER.
export JACK_DEFAULT_SERVER=${JACK_DEFAULT_SERVER:-entrain_test}
export JACK_NO_START_SERVER=1        # a client must never start a server of its own
export JACK_NO_AUDIO_RESERVATION=1
JACK_LOG=${JACK_LOG:-/tmp/jackd-$JACK_DEFAULT_SERVER.log}
JACK_PIDFILE=${JACK_PIDFILE:-/tmp/jackd-$JACK_DEFAULT_SERVER.pid}

# Start it at RATE Hz with PERIOD frames (defaults 48000, 64); non-zero if it does not come up.
# -R asks for SCHED_FIFO (granted to root): without it the dummy driver misses deadlines at 64.
jack_dummy_start() {
  local rate=${1:-48000} period=${2:-64}
  if jack_wait -c 2>/dev/null | grep -qx running; then
    echo "a JACK server '$JACK_DEFAULT_SERVER' is already running; using it" >&2
    return 0
  fi
  # With no jackd running, JACK's shared memory must be empty; entries left by killed servers
  # fill its small registry and stop new servers from starting.
  if ! pgrep -x jackd >/dev/null 2>&1; then
    rm -f /dev/shm/jack-shm-registry /dev/shm/jack_* /dev/shm/jack-[0-9]* 2>/dev/null || true
  fi
  setsid jackd -n "$JACK_DEFAULT_SERVER" -R -d dummy -r "$rate" -p "$period" \
    >"$JACK_LOG" 2>&1 </dev/null &
  echo $! >"$JACK_PIDFILE"
  if ! jack_wait -w -t 10 >/dev/null 2>&1; then
    echo "jackd did not come up:" >&2
    cat "$JACK_LOG" >&2
    jack_dummy_stop
    return 1
  fi
}

jack_dummy_stop() {
  local pid
  pid=$(cat "$JACK_PIDFILE" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  wait "$pid" 2>/dev/null || true
  rm -f "$JACK_PIDFILE"
}
