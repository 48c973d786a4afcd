#!/bin/sh
# Makes the secrets of a kfold cluster in the folder given (once: existing files are kept):
#   cluster-secret  shared by the nodes, which prove their requests to each other with it
#   admin.key       an API key with every role, for you; only its SHA-256 is in api-keys.yaml.
#                   Readable by the group too: compose's Prometheus scrapes /metrics with it,
#                   running in the image user's group (cluster-secret stays the user's alone)
#   api-keys.yaml   the keys the nodes accept (auth.apiKeysFile): add yours in the same shape
# Nothing secret is printed.
set -eu
dir=${1:?usage: make-secrets.sh <folder>}
mkdir -p "$dir"
umask 077
random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
if [ ! -s "$dir/cluster-secret" ]; then
  random > "$dir/cluster-secret"
fi
if [ ! -s "$dir/api-keys.yaml" ]; then
  random > "$dir/admin.key"
  chmod 640 "$dir/admin.key"
  hash=$(printf %s "$(cat "$dir/admin.key")" | sha256sum | cut -d' ' -f1)
  printf 'admin: {sha256: %s, roles: [read, write, append, admin]}\n' "$hash" > "$dir/api-keys.yaml"
fi
echo "kfold secrets ready in $dir (the admin key: $dir/admin.key)"
