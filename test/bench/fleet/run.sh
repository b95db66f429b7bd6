#!/bin/sh
# Builds cairn-controller and runs the fleet benchmark against it.
# Usage: test/bench/fleet/run.sh [-n 1000,5000] [other flags of the program]
#        test/bench/fleet/run.sh -rollout -n 1000 [-waves 1,10%,50%,100%] [-max-parallel 100]
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
make -s build
exec go run ./test/bench/fleet -root "$root" "$@"
