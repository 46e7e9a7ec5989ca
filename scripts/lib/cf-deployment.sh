# Finds cf-deployment v58.0.0, the real target of the ops-file tests (referenced, never copied
# into the repository). Source it; don't run it. find_cf_deployment prints the directory, or
# prints one line on stderr saying how to provide it and returns 1. In order:
#   1. $APP_SSH_CF_DEPLOYMENT_DIR (an error if it has no cf-deployment.yml: it was asked for);
#   2. ../shared/cf-deployment beside the repository (where CI and shared machines keep it), or
#      beside the local repository this one was cloned from (git clone . /tmp/ci-check);
#   3. the cache, $APP_SSH_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/app-ssh), filled by
#   4. a shallow clone of the tag from $APP_SSH_CF_DEPLOYMENT_URL (default GitHub), bounded by
#      $APP_SSH_CLONE_TIMEOUT seconds (default 60) and failing at once without a network.

CF_DEPLOYMENT_TAG="v58.0.0"

find_cf_deployment() {
  local root="${1:-${REPO_ROOT}}"
  if [ -n "${APP_SSH_CF_DEPLOYMENT_DIR:-}" ]; then
    if [ -f "${APP_SSH_CF_DEPLOYMENT_DIR}/cf-deployment.yml" ]; then
      (cd "${APP_SSH_CF_DEPLOYMENT_DIR}" && pwd)
      return 0
    fi
    printf 'error: APP_SSH_CF_DEPLOYMENT_DIR=%s has no cf-deployment.yml: point it at a checkout of cloudfoundry/cf-deployment %s\n' \
      "${APP_SSH_CF_DEPLOYMENT_DIR}" "${CF_DEPLOYMENT_TAG}" >&2
    return 1
  fi
  local shared
  shared="$(cd "${root}/.." 2>/dev/null && pwd || printf '%s' "${root}/..")/shared/cf-deployment"
  if [ -f "${shared}/cf-deployment.yml" ]; then
    printf '%s\n' "${shared}"
    return 0
  fi
  # A clone of a local checkout (git clone -q . /tmp/ci-check): its origin is a directory.
  local origin
  origin="$(git -C "${root}" remote get-url origin 2>/dev/null)" || origin=""
  if [ -n "${origin}" ] && [ -d "${origin}" ] && [ -f "${origin}/../shared/cf-deployment/cf-deployment.yml" ]; then
    (cd "${origin}/../shared/cf-deployment" && pwd)
    return 0
  fi
  local cache="${APP_SSH_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/app-ssh}"
  local dir="${cache}/cf-deployment-${CF_DEPLOYMENT_TAG}"
  if [ -f "${dir}/cf-deployment.yml" ]; then
    printf '%s\n' "${dir}"
    return 0
  fi
  local url="${APP_SSH_CF_DEPLOYMENT_URL:-https://github.com/cloudfoundry/cf-deployment.git}"
  local limit="${APP_SSH_CLONE_TIMEOUT:-60}" tmp
  mkdir -p "${cache}" 2>/dev/null && tmp="$(mktemp -d "${cache}/.clone.XXXXXX" 2>/dev/null)" || tmp=""
  if [ -n "${tmp}" ]; then
    printf '==> cloning cloudfoundry/cf-deployment %s into %s (at most %ss)\n' "${CF_DEPLOYMENT_TAG}" "${dir}" "${limit}" >&2
    # No prompts, no proxies' retries: a machine without network fails in well under the limit.
    if GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false timeout --kill-after=5 "${limit}" \
      git -c advice.detachedHead=false -c http.lowSpeedLimit=1000 -c http.lowSpeedTime=20 \
      clone --quiet --depth 1 --branch "${CF_DEPLOYMENT_TAG}" "${url}" "${tmp}/cf-deployment" >/dev/null 2>&1 &&
      [ -f "${tmp}/cf-deployment/cf-deployment.yml" ] && mv "${tmp}/cf-deployment" "${dir}" 2>/dev/null; then
      rm -rf "${tmp}"
      printf '%s\n' "${dir}"
      return 0
    fi
    rm -rf "${tmp}"
  fi
  printf 'error: cf-deployment %s not found and could not be cloned from %s: set APP_SSH_CF_DEPLOYMENT_DIR to a checkout of it (git clone --depth 1 --branch %s https://github.com/cloudfoundry/cf-deployment), or put one at %s or %s\n' \
    "${CF_DEPLOYMENT_TAG}" "${url}" "${CF_DEPLOYMENT_TAG}" "${shared}" "${dir}" >&2
  return 1
}
