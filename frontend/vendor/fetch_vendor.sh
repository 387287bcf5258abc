#!/usr/bin/env bash
# Re-fetch the vendored front-end libraries from the npm registry (`npm pack`), check the tarball's integrity
# against the value recorded here, and copy the ES module, its CSS and its licence into frontend/vendor/uplot/.
# Usage: frontend/vendor/fetch_vendor.sh            (the recorded version)
#        UPLOT_VERSION=1.6.33 UPLOT_INTEGRITY=sha512-... frontend/vendor/fetch_vendor.sh   (an upgrade: update
#        VENDOR.md with the new version and integrity afterwards)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${UPLOT_VERSION:-1.6.32}"
integrity="${UPLOT_INTEGRITY:-sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@${version}" >/dev/null)
tarball="$work/uplot-${version}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$integrity" ]; then
  echo "integrity mismatch for uplot@${version}: expected $integrity, got $actual" >&2
  exit 1
fi
tar xzf "$tarball" -C "$work"
mkdir -p "$here/uplot"
cp "$work/package/dist/uPlot.esm.js" "$here/uplot/uPlot.esm.js"
cp "$work/package/dist/uPlot.min.css" "$here/uplot/uPlot.min.css"
cp "$work/package/LICENSE" "$here/uplot/LICENSE"
echo "uplot@${version} -> $here/uplot (integrity ok)"
