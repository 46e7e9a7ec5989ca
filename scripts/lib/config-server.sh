# Source after scripts/lib/common.sh: builds the pinned config-server (the BOSH director's variable
# store) from scripts/tools/config-server into bin/config-server.
#
# The tools module pins github.com/cloudfoundry/config-server v0.1.285. Its own go.mod asks for
# bosh-utils v0.0.622, which the module proxy does not serve; the tools module therefore replaces it
# with v0.0.555 (the version the bosh CLI tool module already uses; config-server only needs its
# errors and logger packages, which are unchanged between the two).

ensure_config_server() {
  build_tool config-server "${REPO_ROOT}/scripts/tools/config-server" github.com/cloudfoundry/config-server
  CONFIG_SERVER="${BIN_DIR}/config-server"
}
