#!/usr/bin/env bash
# Builds a Java 17 base image from Debian's own packages, for machines that reach no container
# registry (the image check of the tests uses it; docker/Dockerfile takes it as BASE_IMAGE):
#   docker/debian-base.sh [image name, default localhost/debian-jre:17]
# Once: an image of that name already present is kept. Needs root (debootstrap), podman, and a
# Debian mirror (the one apt uses here, else deb.debian.org).
set -euo pipefail
image=${1:-localhost/debian-jre:17}
if podman image exists "$image"; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$image is missing, and debootstrap needs root: run this once as root" >&2
  exit 1
fi
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | head -n1 | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "building $image from Debian bookworm ($mirror)"
# minbase: no curl, no ps; openjdk's headless JRE and bash are all the image needs.
debootstrap --variant=minbase --include=openjdk-17-jre-headless bookworm "$rootfs" "$mirror" >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "built $image"
