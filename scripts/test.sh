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
[ -x /usr/bin/chromium ] || need+=(chromium)          # the approval page is tested in headless Chromium
[ -x /usr/sbin/sshd ] || need+=(openssh-server)       # the SSH target (with ssh, scp, sftp as callers)
command -v sshpass >/dev/null 2>&1 || need+=(sshpass)  # types tokens at ssh's password prompt
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

[ -d node_modules ] || npm ci --no-audit --no-fund

npx tsc --noEmit -p .
npx jest "$@"
