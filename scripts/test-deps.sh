#!/usr/bin/env bash
# Installs the non-Go tools Amber's end-to-end tests run against the proxy:
#   - Debian packages: kcat, python3-kafka, python3-confluent-kafka, plus the
#     compression modules kafka-python needs (python3-snappy/-lz4/-zstandard)
#   - KafkaJS and pure-JS codec packages from npm, into the project-local,
#     git-ignored .tools/node
#   - the MinIO server and Helm, built with go install into .tools/bin
#
# Idempotent and fast when everything is already present: each tool is checked
# first and only installed when missing (apt-get update runs only if an apt
# install is actually needed).
#
# Usage: scripts/test-deps.sh            # install whatever is missing
#        scripts/test-deps.sh --check    # report only; exit 1 if something is missing
#
# Python note: always use /usr/bin/python3; the python3 first on PATH may be a
# pyenv build that cannot import Debian's python3-* packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"

# Pinned npm packages (name@version); scoped names keep their leading @.
NPM_PACKAGES=(
	kafkajs@2.2.4
	kafkajs-snappy@1.1.0
	lz4js@0.2.0
	@bokuweb/zstd-wasm@0.0.27
)
# python3-snappy, python3-lz4 and python3-zstandard give kafka-python its
# snappy, lz4 and zstd codecs (it has only gzip without them).
APT_PACKAGES=(kcat python3-kafka python3-confluent-kafka python3-snappy python3-lz4 python3-zstandard)
SYS_PYTHON=/usr/bin/python3

CHECK_ONLY=0
if [[ "${1:-}" == "--check" ]]; then
	CHECK_ONLY=1
fi

log() { printf 'test-deps: %s\n' "$*" >&2; }

missing=0

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------
apt_installed() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

as_root() {
	if [[ "$(id -u)" == 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		log "need root (or sudo) to run: $*"
		return 1
	fi
}

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
	if ! apt_installed "$pkg"; then
		need_apt+=("$pkg")
	fi
done

if ((${#need_apt[@]})); then
	if ((CHECK_ONLY)); then
		log "missing Debian packages: ${need_apt[*]}"
		missing=1
	else
		log "installing Debian packages: ${need_apt[*]}"
		export DEBIAN_FRONTEND=noninteractive
		# Try without refreshing the package lists first; refresh only if that fails.
		if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"; then
			as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
			as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
		fi
	fi
fi

if ((!CHECK_ONLY)); then
	command -v kcat >/dev/null || { log "kcat still not on PATH"; exit 1; }
	"$SYS_PYTHON" -c 'import kafka, confluent_kafka' || { log "$SYS_PYTHON cannot import kafka / confluent_kafka"; exit 1; }
fi

# ---------------------------------------------------------------------------
# KafkaJS (npm) into .tools/node
# KafkaJS has only gzip built in; the other codecs are pure JS/WASM packages
# (no native build) wired up in internal/testkit/clients/kafkajs.js.
# ---------------------------------------------------------------------------
NODE_PREFIX="$TOOLS/node"
npm_version() { # prints the installed version of package $1, or nothing
	local pj="$NODE_PREFIX/node_modules/$1/package.json"
	[[ -f "$pj" ]] || return 0
	node -e 'process.stdout.write(require(process.argv[1]).version)' "$pj" 2>/dev/null || true
}

need_npm=()
for spec in "${NPM_PACKAGES[@]}"; do
	name="${spec%@*}" want="${spec##*@}"
	if [[ "$(npm_version "$name")" != "$want" ]]; then
		need_npm+=("$spec")
	fi
done

if ((${#need_npm[@]})); then
	if ((CHECK_ONLY)); then
		log "missing npm packages in $NODE_PREFIX: ${need_npm[*]}"
		missing=1
	else
		command -v npm >/dev/null || { log "npm not found; install Node.js (Debian: apt-get install nodejs npm)"; exit 1; }
		log "installing into $NODE_PREFIX: ${need_npm[*]}"
		mkdir -p "$NODE_PREFIX"
		# Install the full pinned set so npm never prunes an already-present one.
		npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error \
			--save-exact "${NPM_PACKAGES[@]}" >&2
		for spec in "${NPM_PACKAGES[@]}"; do
			name="${spec%@*}" want="${spec##*@}"
			[[ "$(npm_version "$name")" == "$want" ]] || { log "npm install of $spec failed"; exit 1; }
		done
	fi
fi

# ---------------------------------------------------------------------------
# MinIO (S3): the real server the S3 store's tests run against. The module
# proxy has one version; a cold build takes a few minutes and ~1.2 GB of
# module cache, so it goes once into the git-ignored $TOOLS/bin and is reused.
# ---------------------------------------------------------------------------
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN="$TOOLS/bin/minio"
if [[ ! -x "$MINIO_BIN" ]]; then
	if ((CHECK_ONLY)); then
		log "missing MinIO server at $MINIO_BIN"
		missing=1
	else
		command -v go >/dev/null || { log "go not found"; exit 1; }
		log "building the MinIO server into $MINIO_BIN (first time only; takes a few minutes)"
		mkdir -p "$TOOLS/bin"
		(cd "$TOOLS" && GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION") >&2
		[[ -x "$MINIO_BIN" ]] || { log "MinIO install failed"; exit 1; }
	fi
fi

# ---------------------------------------------------------------------------
# Helm: the deploy package's test lints and renders deploy/helm/amber with it.
# Pinned (not @latest) so every machine renders with the same Helm; built
# once with go install into the git-ignored $TOOLS/bin (a few minutes cold).
# The ldflags are those of Helm's own release build: its version, and the
# Kubernetes version it assumes without a cluster (client-go's minor; a
# plain go install would assume 1.20 and refuse charts needing newer).
# ---------------------------------------------------------------------------
HELM_VERSION=v3.22.0
HELM_K8S_MINOR=37 # helm v3.22.0's go.mod: k8s.io/client-go v0.37.0
HELM_BIN="$TOOLS/bin/helm"
helm_version() { "$HELM_BIN" version --template '{{.Version}}' 2>/dev/null || true; }
if [[ ! -x "$HELM_BIN" || "$(helm_version)" != "$HELM_VERSION" ]]; then
	if ((CHECK_ONLY)); then
		log "missing Helm $HELM_VERSION at $HELM_BIN"
		missing=1
	else
		command -v go >/dev/null || { log "go not found"; exit 1; }
		log "building Helm $HELM_VERSION into $HELM_BIN (first time only)"
		mkdir -p "$TOOLS/bin"
		ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
		for pkg in pkg/lint/rules pkg/chartutil; do
			ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$HELM_K8S_MINOR"
		done
		(cd "$TOOLS" && GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") >&2
		[[ "$(helm_version)" == "$HELM_VERSION" ]] || { log "Helm install failed"; exit 1; }
	fi
fi

if ((CHECK_ONLY)); then
	if ((missing)); then exit 1; fi
	log "all test dependencies present"
fi
