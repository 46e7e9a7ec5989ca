#!/usr/bin/env bash
# The proxy benchmark behind `scripts/bench` (full) and `scripts/bench --quick` (smoke test).
# Sourced by scripts/bench; also runnable on its own: scripts/lib/bench-proxy.sh [--quick].
#
# Everything runs on 127.0.0.1 and is stopped at the end (also on Ctrl-C): our sshd, OpenSSH's
# sshd (same host key), ssh-proxy, the UAA / CC / BBS development stand-ins, and a Go load
# client. It prints one table:
#   throughput  1 GiB upload (`cat > /dev/null`), 1 GiB download, 512 MiB scp, per cipher,
#               via ssh-proxy -> sshd, directly to our sshd, directly to OpenSSH's sshd;
#   latency     median and p95 of 50 sequential `ssh ... true`: through the proxy with diego
#               auth, cf auth and a static target's key, and directly to our sshd;
#   websocket   the static target's throughput and connect latency through the proxy's
#               WebSocket listener (OpenSSH with ProxyCommand app-ssh-ws, TLS on loopback) as a
#               ratio of the same through its TCP listener, in the same run;
#   concurrency proxy and sshd RSS per idle session at 2,000 sessions, and new sessions per
#               second at concurrency 16 (through the proxy and directly);
#   recording   session recording on vs off (a second proxy with recording.enabled): an
#               interactive-sized workload (2,000 short lines through a pty) and a 256 MiB
#               `cat` through a pty, time with recording / time without.
# Environment: BENCH_RUNS (default 3), BENCH_SESSIONS (2000), BENCH_CONNECTS (50),
#   SSHD_BINARY / PROXY_BINARY (use these instead of building), BENCH_KEEP=1 (keep the work dir),
#   BENCH_ONLY (comma list of concurrency, latency, throughput, recording; default all).

# Settings for the two modes (bp_mode sets them).
BP_RUNS=3 BP_UP_BYTES=$((1 << 30)) BP_SCP_BYTES=$((512 << 20)) BP_CONNECTS=50 BP_SESSIONS=2000
BP_RATE_N=400 BP_RATE_C=16 BP_STEP_TIMEOUT=600 BP_PTY_BYTES=$((256 << 20)) BP_PTY_LINES=2000
BP_CIPHERS=(aes128-gcm@openssh.com chacha20-poly1305@openssh.com)

bp_mode() {
  if [ "$1" = quick ]; then
    BP_RUNS=1 BP_UP_BYTES=$((16 << 20)) BP_SCP_BYTES=$((8 << 20)) BP_CONNECTS="${BENCH_CONNECTS:-5}" BP_SESSIONS="${BENCH_SESSIONS:-20}"
    BP_RATE_N=32 BP_RATE_C=4 BP_STEP_TIMEOUT=120 BP_PTY_BYTES=$((4 << 20)) BP_PTY_LINES=200
  else
    BP_RUNS="${BENCH_RUNS:-3}" BP_CONNECTS="${BENCH_CONNECTS:-50}" BP_SESSIONS="${BENCH_SESSIONS:-2000}"
  fi
}

bp_log() { printf '==> %s\n' "$*" >&2; }
# bp_die also shows the servers' last log lines (they never hold keys, passwords or codes).
bp_die() {
  printf 'bench: %s\n' "$*" >&2
  local f
  for f in sshd proxy; do
    if [ -n "${BP_WORK}" ] && [ -s "${BP_WORK}/${f}.log" ]; then
      printf -- '--- last lines of the %s log\n' "${f}" >&2
      tail -n 5 "${BP_WORK}/${f}.log" >&2
    fi
  done
  exit 1
}

# Port and process helpers (free_port, wait_port, stop_pids).
source "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

bp_median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
# bp_p95: the nearest-rank 95th percentile.
bp_p95() { sort -g | awk '{a[NR]=$1} END {if (NR) {r=int(0.95*NR); if (r<0.95*NR) r++; print a[r]} else print "nan"}'; }
bp_ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b+0 > 0 && a != "nan") printf "%.2f", a / b; else print "-"}'; }
bp_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
bp_now_ms() { local t="${EPOCHREALTIME}"; echo "${t/./}" | awk '{printf "%.3f", $1 / 1000}'; }

# Processes and files of this run; bp_cleanup removes them on any exit.
BP_WORK=""
BP_PIDS=()
BP_HOLD_FD=""
bp_cleanup() {
  if [ -n "${BP_HOLD_FD}" ]; then exec {BP_HOLD_FD}>&- || true; BP_HOLD_FD=""; fi
  [ "${#BP_PIDS[@]}" -eq 0 ] || stop_pids "${BP_PIDS[@]}"
  BP_PIDS=()
  if [ -n "${BP_WORK}" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "${BP_WORK}"; fi
  BP_WORK=""
}

# bp_start NAME CMD...: runs CMD in the background with its output in NAME.log.
bp_start() {
  local name="$1"; shift
  "$@" </dev/null >"${BP_WORK}/${name}.log" 2>&1 &
  BP_PIDS+=($!)
  BP_LAST_PID=$!
}

bp_build() {
  local repo="$1" bin="${BP_WORK}/bin"
  mkdir -p "${bin}"
  bp_log "building ssh-proxy, sshd, cf-standins and the load client"
  (cd "${repo}/src" && GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--mod=mod}" go build -o "${bin}/" \
    ./cmd/ssh-proxy ./cmd/sshd ./cmd/cf-standins ./cmd/app-ssh-ws ./internal/relay/benchclient)
  BP_PROXY="${PROXY_BINARY:-${bin}/ssh-proxy}"
  BP_SSHD="${SSHD_BINARY:-${bin}/sshd}"
  BP_STANDINS="${bin}/cf-standins"
  BP_CLIENT="${bin}/benchclient"
  BP_WSCLIENT="${bin}/app-ssh-ws"
}

# bp_setup: keys, configs, and every server started and listening.
bp_setup() {
  local w="${BP_WORK}" k
  for k in host_key proxy_host_key client_key login_key; do ssh-keygen -q -t ed25519 -N '' -C "bench-${k}" -f "${w}/${k}"; done
  BP_FP="$(ssh-keygen -l -E sha256 -f "${w}/host_key.pub" | awk '{print $2}')"
  BP_USER="$(id -un)"
  local ciphers_yaml
  ciphers_yaml="[$(IFS=,; echo "${BP_CIPHERS[*]}")]"

  # Our sshd: the proxy's login key and the client's key are authorized.
  BP_PORT_SSHD="$(free_port)"
  cat >"${w}/sshd.yml" <<EOF
address: 127.0.0.1:${BP_PORT_SSHD}
host_key_file: ${w}/host_key
authorized_keys:
- $(cat "${w}/client_key.pub")
- $(cat "${w}/login_key.pub")
allowed_ciphers: ${ciphers_yaml}
log_level: error
EOF
  bp_start sshd "${BP_SSHD}" -config "${w}/sshd.yml"
  BP_SSHD_PID="${BP_LAST_PID}"

  # OpenSSH's sshd, runnable by any user: explicit files, no PAM, no strict modes.
  BP_PORT_OPENSSH=""
  if [ -x /usr/sbin/sshd ]; then
    BP_PORT_OPENSSH="$(free_port)"
    if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then mkdir -p /run/sshd && chmod 0755 /run/sshd; fi
    cp "${w}/client_key.pub" "${w}/authorized_keys"
    cat >"${w}/openssh_config" <<EOF
Port ${BP_PORT_OPENSSH}
ListenAddress 127.0.0.1
HostKey ${w}/host_key
PidFile ${w}/openssh.pid
AuthorizedKeysFile ${w}/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
Ciphers $(IFS=,; echo "${BP_CIPHERS[*]}")
Subsystem sftp /usr/lib/openssh/sftp-server
MaxStartups 100
LogLevel ERROR
EOF
    bp_start openssh /usr/sbin/sshd -D -e -f "${w}/openssh_config"
    BP_OPENSSH_PID="${BP_LAST_PID}"
  else
    bp_log "OpenSSH's sshd (/usr/sbin/sshd) is not installed: its column stays empty"
  fi

  # The UAA / Cloud Controller / BBS development stand-ins route app instance 0 to our sshd.
  mkdir -p "${w}/cf"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"${w}/cf/uaa_client_secret"
  bp_start cf-standins "${BP_STANDINS}" serve -dir "${w}/cf" -sshd-address "127.0.0.1:${BP_PORT_SSHD}" \
    -sshd-host-key-fingerprint "${BP_FP}" -login-key-file "${w}/login_key" \
    -uaa-client-secret-file "${w}/cf/uaa_client_secret" -log-level error
  local i
  for i in $(seq 300); do
    [ -s "${w}/cf/standins.json" ] && break
    kill -0 "${BP_LAST_PID}" 2>/dev/null || bp_die "cf-standins exited (log: ${w}/cf-standins.log)"
    sleep 0.1
  done
  [ -s "${w}/cf/standins.json" ] || bp_die "cf-standins did not become ready"
  local sj="${w}/cf/standins.json"
  field() { ruby -rjson -e 'puts JSON.parse(File.read(ARGV[0])).fetch(ARGV[1])' "${sj}" "$1"; }
  BP_PROCESS_GUID="$(field process_guid)"
  BP_APP_GUID="$(field app_guid)"

  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"${w}/diego_credentials"
  # The WebSocket listener's certificate: self-signed for 127.0.0.1 (app-ssh-ws trusts it by --ca-cert).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "${w}/ws.key" -out "${w}/ws.crt" 2>/dev/null ||
    bp_die "openssl could not make the WebSocket listener's certificate"
  BP_PORT_WS="$(free_port)"
  BP_PORT_PROXY="$(free_port)"
  cat >"${w}/ssh_proxy.yml" <<EOF
address: 127.0.0.1:${BP_PORT_PROXY}
health_check_address: ""
log_level: info
host_key_files: [${w}/proxy_host_key]
allowed_ciphers: ${ciphers_yaml}
communication_timeout: 10s
enable_cf_auth: true
enable_diego_auth: true
diego_credentials: $(cat "${w}/diego_credentials")
uaa:
  token_url: $(field uaa_token_url)
  client_id: ssh-proxy
  client_secret: $(cat "${w}/cf/uaa_client_secret")
  ca_cert_file: ${w}/cf/ca.crt
cc:
  internal_url: $(field cc_url)
  ca_cert_file: ${w}/cf/ca.crt
bbs:
  address: https://$(field bbs_address)
  ca_cert_file: ${w}/cf/ca.crt
  client_cert_file: ${w}/cf/bbs-client.crt
  client_key_file: ${w}/cf/bbs-client.key
# One load client on loopback, with the default pre-auth limits: they must carry its parallel
# logins as they would a burst of CI jobs behind a load balancer.
static_targets:
- name: bench
  instances: [127.0.0.1:${BP_PORT_SSHD}]
  host_fingerprint: "${BP_FP}"
  private_key_file: ${w}/login_key
  authorized_keys:
  - $(cat "${w}/client_key.pub")
listen_ws_addr: 127.0.0.1:${BP_PORT_WS}
ws:
  cert_file: ${w}/ws.crt
  key_file: ${w}/ws.key
EOF
  "${BP_PROXY}" -check-config "${w}/ssh_proxy.yml" >/dev/null || bp_die "the bench's ssh_proxy.yml is invalid (above)"
  bp_start proxy "${BP_PROXY}" -config "${w}/ssh_proxy.yml"
  BP_PROXY_PID="${BP_LAST_PID}"

  wait_port "${BP_PORT_SSHD}" "${BP_SSHD_PID}" || bp_die "see the logs in ${BP_WORK}"
  [ -z "${BP_PORT_OPENSSH}" ] || wait_port "${BP_PORT_OPENSSH}" "${BP_OPENSSH_PID}" || bp_die "see the logs in ${BP_WORK}"
  wait_port "${BP_PORT_PROXY}" "${BP_PROXY_PID}" || bp_die "see the logs in ${BP_WORK}"
  wait_port "${BP_PORT_WS}" "${BP_PROXY_PID}" || bp_die "see the logs in ${BP_WORK}"

  # A password for ssh without a terminal: ssh runs this for every prompt.
  cat >"${w}/askpass" <<EOF
#!/bin/sh
exec cat "${w}/password"
EOF
  chmod 700 "${w}/askpass"
}

BP_SSH_OPTS=()
bp_ssh_opts() {
  BP_SSH_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o Compression=no -o ConnectTimeout=30)
}

# bp_path_opts PATH: sets BP_PORT_OF, BP_USER_OF and BP_VIA (extra ssh options) for PATH
# (proxy | ws | direct | openssh); ws is the proxy's WebSocket listener through app-ssh-ws.
bp_path_opts() {
  BP_VIA=()
  case "$1" in
    proxy) BP_PORT_OF="${BP_PORT_PROXY}" BP_USER_OF="bench/0" ;;
    recording) BP_PORT_OF="${BP_PORT_PROXY_REC}" BP_USER_OF="bench/0" ;;
    ws) BP_PORT_OF=22 BP_USER_OF="bench/0"
      BP_VIA=(-o "ProxyCommand=${BP_WSCLIENT} --ca-cert ${BP_WORK}/ws.crt wss://127.0.0.1:${BP_PORT_WS}") ;;
    direct) BP_PORT_OF="${BP_PORT_SSHD}" BP_USER_OF="${BP_USER}" ;;
    openssh) BP_PORT_OF="${BP_PORT_OPENSSH}" BP_USER_OF="${BP_USER}" ;;
  esac
}

# bp_key_ssh PATH CIPHER ARGS...: ssh with the client key to PATH (proxy | recording | ws | direct | openssh).
bp_key_ssh() {
  local path="$1" cipher="$2"; shift 2
  bp_path_opts "${path}"
  timeout "${BP_STEP_TIMEOUT}" ssh "${BP_SSH_OPTS[@]}" "${BP_VIA[@]}" -o BatchMode=yes -o IdentitiesOnly=yes -i "${BP_WORK}/client_key" \
    -o Ciphers="${cipher}" -p "${BP_PORT_OF}" -l "${BP_USER_OF}" 127.0.0.1 "$@"
}

bp_key_scp() {
  local path="$1" cipher="$2" src="$3" dst="$4"
  bp_path_opts "${path}"
  timeout "${BP_STEP_TIMEOUT}" scp -q "${BP_SSH_OPTS[@]}" "${BP_VIA[@]}" -o BatchMode=yes -o IdentitiesOnly=yes -i "${BP_WORK}/client_key" \
    -o Ciphers="${cipher}" -o User="${BP_USER_OF}" -P "${BP_PORT_OF}" "${src}" "127.0.0.1:${dst}"
}

# bp_transfer KIND PATH CIPHER: one transfer, prints MB/s (10^6 bytes per second).
bp_transfer() {
  local kind="$1" path="$2" cipher="$3" t0 t1 bytes
  t0="${EPOCHREALTIME}"
  case "${kind}" in
    upload)
      bytes="${BP_UP_BYTES}"
      head -c "${bytes}" /dev/zero | bp_key_ssh "${path}" "${cipher}" 'cat > /dev/null' ||
        bp_die "upload via ${path} (${cipher}) failed" ;;
    download)
      bytes="${BP_UP_BYTES}"
      local got
      got="$(bp_key_ssh "${path}" "${cipher}" "head -c ${bytes} /dev/zero" | wc -c)"
      [ "${got}" = "${bytes}" ] || bp_die "download via ${path} (${cipher}): ${got} of ${bytes} bytes" ;;
    scp)
      bytes="${BP_SCP_BYTES}"
      rm -f "${BP_WORK}/dst/f"
      bp_key_scp "${path}" "${cipher}" "${BP_WORK}/scp-src" "${BP_WORK}/dst/f" ||
        bp_die "scp via ${path} (${cipher}) failed" ;;
  esac
  t1="${EPOCHREALTIME}"
  if [ "${kind}" = scp ]; then
    cmp -s "${BP_WORK}/scp-src" "${BP_WORK}/dst/f" || bp_die "scp via ${path} (${cipher}): the copy differs"
  fi
  awk -v a="${t0}" -v b="${t1}" -v n="${bytes}" 'BEGIN {printf "%.1f\n", n / (b - a) / 1e6}'
}

BP_TABLE=()
bp_row() { BP_TABLE+=("$(printf "$@")"); }

bp_throughput() {
  local paths=(proxy direct ws) cipher kind path i j r
  [ -z "${BP_PORT_OPENSSH}" ] || paths+=(openssh)
  mkdir -p "${BP_WORK}/dst"
  head -c "${BP_SCP_BYTES}" /dev/urandom >"${BP_WORK}/scp-src"
  bp_row '%-34s %-18s %10s %10s %10s %8s %8s' "throughput MB/s (median of ${BP_RUNS})" cipher proxy direct openssh px/dir dir/ossh
  for cipher in "${BP_CIPHERS[@]}"; do
    for kind in upload download scp; do
      for path in "${paths[@]}"; do : >"${BP_WORK}/t.${path}"; done
      for i in $(seq "${BP_RUNS}"); do
        # Rotate which path goes first so neighbours and caches hit all of them alike.
        for j in "${!paths[@]}"; do
          path="${paths[$(((i + j) % ${#paths[@]}))]}"
          r="$(bp_transfer "${kind}" "${path}" "${cipher}")" || bp_die "${kind} via ${path} (${cipher}) failed"
          echo "${r}" >>"${BP_WORK}/t.${path}"
        done
      done
      local mp md mo label
      mp="$(bp_median <"${BP_WORK}/t.proxy")"; md="$(bp_median <"${BP_WORK}/t.direct")"
      mo="nan"; [ -z "${BP_PORT_OPENSSH}" ] || mo="$(bp_median <"${BP_WORK}/t.openssh")"
      case "${kind}" in
        upload) label="$(bp_size "${BP_UP_BYTES}") upload (cat > /dev/null)" ;;
        download) label="$(bp_size "${BP_UP_BYTES}") download" ;;
        scp) label="$(bp_size "${BP_SCP_BYTES}") scp (SFTP) upload" ;;
      esac
      bp_row '%-34s %-18s %10s %10s %10s %8s %8s' "${label}" "${cipher%%@*}" "${mp}" "${md}" "${mo}" \
        "$(bp_ratio "${mp}" "${md}")" "$(bp_ratio "${md}" "${mo}")"
      local mw
      mw="$(bp_median <"${BP_WORK}/t.ws")"
      bp_row '%-34s %-18s %10s %32s' "  via the WebSocket listener" "${cipher%%@*}" "${mw}" "ws/tcp $(bp_ratio "${mw}" "${mp}")"
      bp_log "${label} ${cipher}: proxy [$(tr '\n' ' ' <"${BP_WORK}/t.proxy")] direct [$(tr '\n' ' ' <"${BP_WORK}/t.direct")]$([ -z "${BP_PORT_OPENSSH}" ] || echo " openssh [$(tr '\n' ' ' <"${BP_WORK}/t.openssh")]")"
    done
  done
  rm -f "${BP_WORK}/scp-src" "${BP_WORK}/dst/f"
}

bp_size() {
  local b="$1"
  if [ $((b % (1 << 30))) = 0 ]; then echo "$((b >> 30)) GiB"; else echo "$((b >> 20)) MiB"; fi
}

# bp_connect_once PATH: one `ssh ... true`, prints milliseconds. The one-time code for cf auth
# is fetched before the clock starts.
bp_connect_once() {
  local path="$1" t0 t1 cipher="${BP_CIPHERS[0]}"
  case "${path}" in
    diego) cp "${BP_WORK}/diego_credentials" "${BP_WORK}/password" ;;
    cf) "${BP_STANDINS}" code -dir "${BP_WORK}/cf" >"${BP_WORK}/password" ;;
  esac
  t0="${EPOCHREALTIME}"
  local rc=0
  case "${path}" in
    direct) bp_key_ssh direct "${cipher}" true ;;
    openssh) bp_key_ssh openssh "${cipher}" true ;;
    key) bp_key_ssh proxy "${cipher}" true ;;
    ws) bp_key_ssh ws "${cipher}" true ;;
    diego|cf)
      local user="diego:${BP_PROCESS_GUID}/0"
      [ "${path}" = diego ] || user="cf:${BP_APP_GUID}/0"
      SSH_ASKPASS="${BP_WORK}/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY= \
        timeout "${BP_STEP_TIMEOUT}" ssh "${BP_SSH_OPTS[@]}" -o PreferredAuthentications=password \
        -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -o Ciphers="${cipher}" \
        -p "${BP_PORT_PROXY}" -l "${user}" 127.0.0.1 true </dev/null ;;
  esac || rc=$?
  t1="${EPOCHREALTIME}"
  [ "${rc}" = 0 ] || { echo "ssh ... true (${path}) exited ${rc}" >&2; return 1; }
  awk -v a="${t0}" -v b="${t1}" 'BEGIN {printf "%.1f\n", (b - a) * 1000}'
}

bp_latency() {
  local paths=(direct key ws diego cf) path i
  [ -z "${BP_PORT_OPENSSH}" ] || paths+=(openssh)
  bp_row '%-34s %-18s %10s %10s %10s' "connect: ${BP_CONNECTS}x ssh ... true" "auth" "median ms" "p95 ms" "vs direct"
  for path in "${paths[@]}"; do : >"${BP_WORK}/l.${path}"; done
  # Interleave the paths so drift on a shared machine hits each alike.
  for i in $(seq "${BP_CONNECTS}"); do
    for path in "${paths[@]}"; do
      local ms
      ms="$(bp_connect_once "${path}")" || bp_die "ssh ... true (${path}) failed"
      echo "${ms}" >>"${BP_WORK}/l.${path}"
    done
  done
  local md
  md="$(bp_median <"${BP_WORK}/l.direct")"
  for path in "${paths[@]}"; do
    local label m p
    case "${path}" in
      direct) label="directly to sshd" ;;
      key) label="via proxy, static target" ;;
      ws) label="  same via the WebSocket listener" ;;
      diego) label="via proxy, diego auth" ;;
      cf) label="via proxy, cf auth (stand-ins)" ;;
      openssh) label="directly to OpenSSH sshd (ref.)" ;;
    esac
    m="$(bp_median <"${BP_WORK}/l.${path}")"; p="$(bp_p95 <"${BP_WORK}/l.${path}")"
    local auth=publickey
    [ "${path}" = diego ] || [ "${path}" = cf ] && auth="password (askpass)"
    bp_row '%-34s %-18s %10s %10s %10s' "${label}" "${auth}" "${m}" "${p}" "$(bp_ratio "${m}" "${md}")"
  done
  local mk mw
  mk="$(bp_median <"${BP_WORK}/l.key")"; mw="$(bp_median <"${BP_WORK}/l.ws")"
  bp_row '%-34s %-18s %10s' "connect WebSocket / TCP listener" "publickey" "ws/tcp $(bp_ratio "${mw}" "${mk}")"
}

# bp_concurrency: RSS per idle session at BP_SESSIONS sessions, then sessions per second.
bp_concurrency() {
  local w="${BP_WORK}" client_pid i line
  cp "${w}/diego_credentials" "${w}/password"
  # Warm up both servers (code paths, TLS to the stand-ins) before the baseline.
  "${BP_CLIENT}" rate -addr "127.0.0.1:${BP_PORT_PROXY}" -user "diego:${BP_PROCESS_GUID}/0" \
    -password-file "${w}/password" -n 32 -c 4 >/dev/null || bp_die "warm-up sessions failed"
  sleep 1
  local p0 s0 p1 s1
  p0="$(bp_rss_kib "${BP_PROXY_PID}")"; s0="$(bp_rss_kib "${BP_SSHD_PID}")"
  mkfifo "${w}/hold"
  "${BP_CLIENT}" idle -addr "127.0.0.1:${BP_PORT_PROXY}" -user "diego:${BP_PROCESS_GUID}/0" \
    -password-file "${w}/password" -n "${BP_SESSIONS}" -parallel 16 -timeout 60s \
    <"${w}/hold" >"${w}/idle.out" 2>"${w}/idle.log" &
  client_pid=$!
  BP_PIDS+=("${client_pid}")
  exec {BP_HOLD_FD}>"${w}/hold"
  # Bounded wait: 2,000 sessions set up in well under the step timeout.
  for i in $(seq $((BP_STEP_TIMEOUT * 10))); do
    grep -q '^ready' "${w}/idle.out" 2>/dev/null && break
    kill -0 "${client_pid}" 2>/dev/null || bp_die "the idle-session client failed: $(cat "${w}/idle.log")"
    sleep 0.1
  done
  grep -q '^ready' "${w}/idle.out" || bp_die "${BP_SESSIONS} idle sessions were not up within ${BP_STEP_TIMEOUT}s"
  sleep 2
  p1="$(bp_rss_kib "${BP_PROXY_PID}")"; s1="$(bp_rss_kib "${BP_SSHD_PID}")"
  exec {BP_HOLD_FD}>&-
  BP_HOLD_FD=""
  wait "${client_pid}" || bp_die "the idle-session client failed: $(cat "${w}/idle.log")"
  rm -f "${w}/hold"

  bp_row '%-34s %10s %10s %10s' "idle sessions: ${BP_SESSIONS} via proxy" "before KiB" "after KiB" "per session"
  bp_row '%-34s %10s %10s %10s' "  ssh-proxy RSS" "${p0}" "${p1}" "$(awk -v a="${p0}" -v b="${p1}" -v n="${BP_SESSIONS}" 'BEGIN {printf "%.1f KiB", (b - a) / n}')"
  bp_row '%-34s %10s %10s %10s' "  sshd RSS" "${s0}" "${s1}" "$(awk -v a="${s0}" -v b="${s1}" -v n="${BP_SESSIONS}" 'BEGIN {printf "%.1f KiB", (b - a) / n}')"

  local rp rd
  rp="$("${BP_CLIENT}" rate -addr "127.0.0.1:${BP_PORT_PROXY}" -user "diego:${BP_PROCESS_GUID}/0" \
    -password-file "${w}/password" -n "${BP_RATE_N}" -c "${BP_RATE_C}" | awk '{print $6}')" || bp_die "session rate via proxy failed"
  rd="$("${BP_CLIENT}" rate -addr "127.0.0.1:${BP_PORT_SSHD}" -user "${BP_USER}" \
    -key "${w}/client_key" -n "${BP_RATE_N}" -c "${BP_RATE_C}" | awk '{print $6}')" || bp_die "session rate direct failed"
  bp_row '%-34s %10s %10s %10s' "new sessions/s, concurrency ${BP_RATE_C}" "proxy" "direct" "px/dir"
  bp_row '%-34s %10s %10s %10s' "  ${BP_RATE_N} sessions running true" "${rp}" "${rd}" "$(bp_ratio "${rp}" "${rd}")"
}

# bp_recording: a second proxy, the same config plus recording, and pty workloads through
# both (interleaved, median of BP_RUNS); the casts are deleted after each run.
bp_recording() {
  local w="${BP_WORK}" cipher="${BP_CIPHERS[0]}" kind path i cmd off on t0 t1 got
  BP_PORT_PROXY_REC="$(free_port)"
  # Its own SSH port, and no WebSocket listener (the first proxy holds that port).
  sed -e "s|^address: 127.0.0.1:${BP_PORT_PROXY}\$|address: 127.0.0.1:${BP_PORT_PROXY_REC}|" \
    -e '/^listen_ws_addr:/d' -e '/^ws:$/,/^  key_file:/d' "${w}/ssh_proxy.yml" >"${w}/ssh_proxy_rec.yml"
  printf 'recording:\n  enabled: true\n  directory: %s\n  max_file_bytes: %d\n  max_total_bytes: %d\n' \
    "${w}/casts" $((BP_PTY_BYTES * 4)) $((BP_PTY_BYTES * 8)) >>"${w}/ssh_proxy_rec.yml"
  "${BP_PROXY}" -check-config "${w}/ssh_proxy_rec.yml" >/dev/null || bp_die "the recording proxy's config is invalid (above)"
  bp_start proxy-recording "${BP_PROXY}" -config "${w}/ssh_proxy_rec.yml"
  wait_port "${BP_PORT_PROXY_REC}" "${BP_LAST_PID}" || bp_die "see ${w}/proxy-recording.log"
  head -c "${BP_PTY_BYTES}" /dev/zero | tr '\0' a >"${w}/pty-src"
  bp_row '%-34s %10s %10s %10s' "pty sessions (median of ${BP_RUNS})" "off s" "on s" "on/off"
  for kind in interactive bulk; do
    case "${kind}" in
      interactive) cmd="for i in \$(seq ${BP_PTY_LINES}); do echo \"line \$i of an interactive-sized session\"; done" ;;
      bulk) cmd="cat ${w}/pty-src" ;;
    esac
    : >"${w}/r.proxy"; : >"${w}/r.recording"
    for i in $(seq "${BP_RUNS}"); do
      for path in proxy recording; do
        t0="${EPOCHREALTIME}"
        got="$(bp_key_ssh "${path}" "${cipher}" -tt "${cmd}" </dev/null | wc -c)" || bp_die "pty ${kind} via ${path} failed"
        t1="${EPOCHREALTIME}"
        [ "${kind}" != bulk ] || [ "${got}" -ge "${BP_PTY_BYTES}" ] || bp_die "pty ${kind} via ${path}: ${got} of ${BP_PTY_BYTES} bytes"
        awk -v a="${t0}" -v b="${t1}" 'BEGIN {printf "%.3f\n", b - a}' >>"${w}/r.${path}"
        [ "${path}" != recording ] || ls "${w}"/casts/*.cast >/dev/null 2>&1 || bp_die "the recording proxy wrote no cast (${kind})"
        rm -f "${w}"/casts/*.cast
      done
    done
    off="$(bp_median <"${w}/r.proxy")"; on="$(bp_median <"${w}/r.recording")"
    case "${kind}" in
      interactive) bp_row '%-34s %10s %10s %10s' "  ${BP_PTY_LINES} short lines" "${off}" "${on}" "$(bp_ratio "${on}" "${off}")" ;;
      bulk) bp_row '%-34s %10s %10s %10s' "  cat of $(bp_size "${BP_PTY_BYTES}")" "${off}" "${on}" "$(bp_ratio "${on}" "${off}")" ;;
    esac
  done
}

# bench_proxy [--quick]: the whole benchmark; prints the table on stdout.
bench_proxy() {
  local mode=full repo
  [ "${1:-}" = --quick ] && mode=quick
  bp_mode "${mode}"
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  command -v ssh >/dev/null || bp_die "the OpenSSH client is required"
  BP_WORK="$(mktemp -d /tmp/app-ssh-bench.XXXXXX)"
  trap bp_cleanup EXIT
  trap 'exit 130' INT TERM
  bp_build "${repo}"
  bp_ssh_opts
  bp_setup
  local only="${BENCH_ONLY:-concurrency,latency,throughput,recording}"
  bp_log "servers up (work dir ${BP_WORK}); concurrency first, on fresh processes"
  [[ ",${only}," != *,concurrency,* ]] || bp_concurrency
  [[ ",${only}," != *,latency,* ]] || { bp_log "connect latency"; bp_latency; }
  [[ ",${only}," != *,throughput,* ]] || { bp_log "throughput"; bp_throughput; }
  [[ ",${only}," != *,recording,* ]] || { bp_log "recording on vs off"; bp_recording; }
  echo
  echo "app-ssh bench (${mode}; $(nproc) CPUs; $(date -u +%FT%TZ)); ratios are side by side in this run"
  printf '%s\n' "${BP_TABLE[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  bench_proxy "$@"
fi
