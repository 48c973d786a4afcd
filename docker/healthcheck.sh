#!/bin/bash
# The image's HEALTHCHECK: healthy while GET /ready answers 200. bash's /dev/tcp and builtins
# only, so it needs no curl in the image and starts no JVM at every probe.
port=${KFOLD_HTTP_PORT:-8080}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 4 status <&3 || exit 1
case "$status" in
  "HTTP/1.1 200"*) exit 0 ;;
  *) exit 1 ;;
esac
