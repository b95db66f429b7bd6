#!/bin/sh
# Builds cairn-controller and runs the fleet benchmark against it.
# Usage: test/bench/fleet/run.sh [-n 1000,5000] [other flags of the program]
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
make -s build
exec go run ./test/bench/fleet -root "$root" "$@"
