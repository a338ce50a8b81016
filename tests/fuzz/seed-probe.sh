#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-probe.sh DIR: the probe fuzzer starts from every other fuzzer's seeds.
set -eu
for s in "$(dirname "$0")"/seed-*.sh; do
	case $s in */seed-probe.sh) continue ;; esac
	bash "$s" "$1"
done
