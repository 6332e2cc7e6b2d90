#!/usr/bin/env bash
# Installs what the activemq source's tests need to run their own ActiveMQ brokers
# (internal/activemqtest): Debian's activemq 5, Jetty 9 and jolokia-core to serve Jolokia,
# XStream and Jettison for the statistics plugin's XML replies, and a Java runtime.
# Idempotent: it installs only what is missing, so running it again is cheap. It starts no
# broker, and leaves none running: the tests start their own, on free loopback ports.
#
# Facts this relies on (../shared/notes/brokers.md): Debian's build has no web console and no
# Jolokia; the harness wires Jolokia in from these jars.
set -euo pipefail

PACKAGES=(activemq libjolokia-core-java libjetty9-java libxstream-java libjettison-java)

log() { echo "activemq.sh: $*"; }
die() {
	echo "activemq.sh: $*" >&2
	exit 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "not root and no sudo: install ${missing[*]} as root"
	fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
if ! command -v java >/dev/null 2>&1; then
	missing+=(default-jre-headless)
fi
if [ "${#missing[@]}" -eq 0 ]; then
	log "installed already: ${PACKAGES[*]} and java"
	exit 0
fi

log "installing ${missing[*]}"
# Keep the package's service from starting while it is installed: policy-rc.d answering 101
# forbids invoke-rc.d to start anything. One already there is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
	trap 'as_root rm -f "$policy"' EXIT
fi
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Belt and braces: were the system broker started anyway, stop it (it would hold 61616).
if [ -x /etc/init.d/activemq ]; then
	as_root /etc/init.d/activemq stop >/dev/null 2>&1 || true
fi
command -v java >/dev/null 2>&1 || die "java is still missing after installing ${missing[*]}"
log "ready: $(java -version 2>&1 | head -n 1)"
