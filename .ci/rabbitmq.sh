#!/usr/bin/env bash
# Makes sure a RabbitMQ broker with its management API runs on this machine, as the rabbitmq
# source's tests expect: AMQP on 127.0.0.1:5672 and HTTP on 127.0.0.1:15672, user guest/guest.
# Idempotent: every step first checks whether it is needed, so running it again is cheap.
#
# Facts this relies on (../shared/notes/brokers.md): `rabbitmq-server -detached` returns 0 even
# when the node dies while booting, and `rabbitmqctl await_startup` gives up at once on a node
# that is not up yet, so we wait on the pid file first; every rabbitmqctl call costs 1.5–2 s.
set -euo pipefail

API=http://127.0.0.1:15672/api/overview
API_WAIT=60  # seconds for the management API to answer
BOOT_WAIT=90 # seconds for a node to boot

log() { echo "rabbitmq.sh: $*"; }
die() {
	echo "rabbitmq.sh: $*" >&2
	exit 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
api_up() { curl -fsS -m 2 -u guest:guest -o /dev/null "$API" 2>/dev/null; }

# node_name follows the broker's own rule: NODENAME from rabbitmq-env.conf, else rabbit@<short host>.
node_name() {
	local name=""
	if [ -r /etc/rabbitmq/rabbitmq-env.conf ]; then
		name=$(sed -n 's/^[[:space:]]*\(RABBITMQ_\)\{0,1\}NODENAME=//p' /etc/rabbitmq/rabbitmq-env.conf | tail -n 1 | tr -d '"'\')
	fi
	echo "${RABBITMQ_NODENAME:-${name:-rabbit@$(hostname -s)}}"
}

install_broker() {
	if command -v rabbitmq-server >/dev/null 2>&1; then
		return
	fi
	log "rabbitmq-server is not installed: installing Debian's package"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server
}

start_broker() {
	if amqp_up; then
		log "a broker already listens on 127.0.0.1:5672"
		return
	fi
	local node pidfile
	node=$(node_name)
	pidfile=/var/lib/rabbitmq/mnesia/${node}.pid
	log "nothing listens on 5672: starting node $node"
	as_root rabbitmq-server -detached
	log "waiting for $pidfile and the node (up to ${BOOT_WAIT}s)"
	as_root timeout "$BOOT_WAIT" rabbitmqctl -n "$node" wait "$pidfile" ||
		die "node $node did not start; see /var/log/rabbitmq/"
	as_root timeout "$BOOT_WAIT" rabbitmqctl -n "$node" await_startup ||
		die "node $node did not finish booting; see /var/log/rabbitmq/"
	amqp_up || die "node $node is up but nothing listens on 127.0.0.1:5672; check /etc/rabbitmq/rabbitmq.conf"
	log "broker started"
}

enable_management() {
	if api_up; then
		log "the management API answers on 15672"
		return
	fi
	log "enabling rabbitmq_management (the API takes about 12 s to answer)"
	as_root rabbitmq-plugins -n "$(node_name)" enable rabbitmq_management >/dev/null
}

wait_for_api() {
	local deadline=$((SECONDS + API_WAIT))
	until api_up; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			die "$API did not answer within ${API_WAIT}s (guest:guest)"
		fi
		sleep 1
	done
	log "ready: AMQP 127.0.0.1:5672, management API $API"
}

install_broker
start_broker
enable_management
wait_for_api
