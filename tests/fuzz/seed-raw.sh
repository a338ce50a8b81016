#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# seed-raw.sh DIR: seed inputs for the raw and probe fuzzers.
set -eu
printf 'hello' >"$1/tiny"
head -c 65536 /dev/urandom >"$1/random"
