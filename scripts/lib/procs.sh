# Starting and stopping local processes, shared by scripts/run-local, scripts/bench and
# scripts/lib/bench-proxy.sh. Source it; don't run it. Needs bash and ruby (scripts/test
# installs ruby).

# free_port prints a loopback port that was free a moment ago.
free_port() {
  ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close'
}

# port_open PORT succeeds when something accepts on 127.0.0.1:PORT (one try, at most 2 s).
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# wait_port PORT [PID] [SECONDS]: waits (default 30 s) until PORT accepts connections. It
# fails at once, saying so on stderr, when PID (if given) exits first.
wait_port() {
  local port="$1" pid="${2:-}" deadline=$((SECONDS + ${3:-30}))
  until port_open "${port}"; do
    if [ -n "${pid}" ] && ! kill -0 "${pid}" 2>/dev/null; then
      echo "process ${pid} exited before listening on 127.0.0.1:${port}" >&2
      return 1
    fi
    if [ "${SECONDS}" -ge "${deadline}" ]; then
      echo "nothing listens on 127.0.0.1:${port}" >&2
      return 1
    fi
    sleep 0.1
  done
}

# stop_pids PID...: SIGTERM to each, then 10 s (for all together) to exit before SIGKILL,
# said on stderr; reaps the ones that are children of this shell.
stop_pids() {
  local p deadline=$((SECONDS + 10))
  for p in "$@"; do kill -TERM "${p}" 2>/dev/null || true; done
  for p in "$@"; do
    while kill -0 "${p}" 2>/dev/null && [ "${SECONDS}" -lt "${deadline}" ]; do sleep 0.1; done
    if kill -0 "${p}" 2>/dev/null; then
      echo "pid ${p} ignored SIGTERM for 10s; killing it" >&2
      kill -KILL "${p}" 2>/dev/null || true
    fi
    wait "${p}" 2>/dev/null || true
  done
}
