# Shared by scripts/*: repo paths and installers for what the scripts need. Source it; don't run it.
# Everything a fresh machine lacks is installed here from Debian's packages or pinned Go modules.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="${REPO_ROOT}/bin"
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:--mod=vendor}"
GO_VERSION_PIN="1.26.8"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_apt PKG... installs the Debian packages that are not installed yet (one apt-get update first).
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing apt packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_go() {
  command -v go >/dev/null || die "go ${GO_VERSION_PIN} is needed on PATH (this machine image ships it at /usr/local/go)"
  local have
  have="$(go env GOVERSION)"
  [ "${have}" = "go${GO_VERSION_PIN}" ] || log "warning: building with ${have}, the release pins go${GO_VERSION_PIN}"
}

# build_tool NAME MODULE_DIR PACKAGE builds a pinned Go tool from its tools module under scripts/tools
# into bin/NAME, rebuilding only when the module's go.sum changed.
build_tool() {
  local name="$1" dir="$2" pkg="$3" stamp sum
  sum="$(cat "${dir}/go.mod" "${dir}/go.sum" | sha256sum | cut -c1-16)"
  stamp="${BIN_DIR}/.${name}.stamp"
  if [ -x "${BIN_DIR}/${name}" ] && [ "$(cat "${stamp}" 2>/dev/null)" = "${sum}" ]; then return 0; fi
  ensure_go
  log "building ${name} from ${dir#"${REPO_ROOT}"/}"
  mkdir -p "${BIN_DIR}"
  (cd "${dir}" && GOFLAGS=-mod=mod go build -trimpath -o "${BIN_DIR}/${name}" "${pkg}")
  echo "${sum}" >"${stamp}"
}

ensure_bosh() {
  build_tool bosh "${REPO_ROOT}/scripts/tools/bosh" github.com/cloudfoundry/bosh-cli/v7
  BOSH="${BIN_DIR}/bosh"
  export BOSH_NON_INTERACTIVE=true
}
