#!/usr/bin/env bash
# Make sure the command-line tools the test suite runs are installed: promtool (checks and unit-tests
# deploy/prometheus/alerts.yml) from Debian's `prometheus` package, and docker-compose (renders
# docker-compose.yml without a daemon) from Debian's `docker-compose` package, and kubectl (renders
# deploy/kubernetes with `kubectl kustomize`) from Debian's `kubernetes-client` package, and chromium (the console's
# browser tests drive it with playwright-core) from Debian's `chromium`. As root, missing ones
# are installed with apt-get; otherwise the script fails naming each missing tool and its package.
set -euo pipefail

declare -A package_of=([promtool]=prometheus [docker-compose]=docker-compose [kubectl]=kubernetes-client [chromium]=chromium)
missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

packages=()
for tool in "${missing[@]}"; do packages+=("${package_of[$tool]}"); done
if [ "$(id -u)" -ne 0 ]; then
  for tool in "${missing[@]}"; do
    echo "missing tool: $tool (install the Debian package ${package_of[$tool]}: sudo apt-get install -y ${package_of[$tool]})" >&2
  done
  exit 1
fi
echo "Installing ${packages[*]} (apt) for ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
