#!/usr/bin/env bash
# The README's event catalog must be what `sigevents types --markdown`
# prints from the catalog's one definition.
set -euo pipefail
sigevents=$1
readme=$2
expected=$("$sigevents" types --markdown)
actual=$(sed -n '/<!-- catalog:begin -->/,/<!-- catalog:end -->/p' "$readme" |
  sed '1d;$d')
if [ "$expected" != "$actual" ]; then
  echo "README.md's catalog differs from \`sigevents types --markdown\`:"
  diff <(echo "$expected") <(echo "$actual") || true
  echo "regenerate it between the catalog markers"
  exit 1
fi
echo "README catalog matches: $(echo "$expected" | tail -n +3 | wc -l) types"
