# SPDX-License-Identifier: MIT
# Sourced by the seed scripts that make their seeds with edgeimg: sets dir
# (the corpus directory, their argument), ei (the edgeimg next to DIR's
# parent, or $EDGEIMG) and t (a scratch directory, removed on exit).
set -eu
dir=$1
ei=${EDGEIMG:-$(cd "$(dirname "$dir")/.." && pwd)/edgeimg}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
