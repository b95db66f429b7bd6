#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under proto/ with pinned
# generators, into OUT (default: the repository itself).
#   proto/gen.sh            regenerate in place (make proto)
#   proto/gen.sh --check    regenerate into a temp dir and fail if the
#                           committed code differs (make test)
set -euo pipefail
cd "$(dirname "$0")/.."

# The generators are pinned as tools in go.mod (`go get -tool ...@version`),
# so their versions and checksums live in go.mod and go.sum.
TOOLS=$(mktemp -d)
MODULE=github.com/cairn-ops/cairn

command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 2; }
go build -o "$TOOLS/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

out=.
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
fi
trap 'rm -rf "$TOOLS"; [ "$out" = . ] || rm -rf "$out"' EXIT

mapfile -t protos < <(find proto -name '*.proto' | sort)
PATH="$TOOLS:$PATH" protoc -I . \
  --go_out="$out" --go_opt=module=$MODULE \
  --go-grpc_out="$out" --go-grpc_opt=module=$MODULE \
  "${protos[@]}"

if [ "$out" != . ]; then
  stale=0
  while IFS= read -r f; do
    rel=${f#"$out"/}
    if ! cmp -s "$f" "$rel"; then
      echo "stale generated code: $rel (run 'make proto' and commit)" >&2
      stale=1
    fi
  done < <(find "$out" -name '*.go')
  while IFS= read -r f; do
    [ -e "$out/$f" ] || { echo "generated file without a .proto: $f" >&2; stale=1; }
  done < <(find proto -name '*.pb.go')
  exit $stale
fi
