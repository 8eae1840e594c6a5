#!/usr/bin/env bash
# Refresh the web UI's vendored third-party files from the npm registry (pinned versions).
# Needs npm; users of ratelord never do: the files are committed.
set -euo pipefail
UPLOT_VERSION="${UPLOT_VERSION:-1.6.32}"
cd "$(dirname "$0")/.."
dest=src/ratelord/web/static/vendor/uplot
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null && tar xzf "uplot-${UPLOT_VERSION}.tgz")
cp "$tmp/package/dist/uPlot.esm.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$dest/"
echo "uPlot ${UPLOT_VERSION}" > "$dest/VERSION"
echo "refreshed $dest to uPlot ${UPLOT_VERSION}"
