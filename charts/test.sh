#!/usr/bin/env bash
# Tests of the Helm chart in charts/qscale, without a cluster: helm lint, helm template with
# the default and the ci/ values, facts about the rendered objects, and values that
# values.schema.json must reject. Prints "N passed, N failed"; exits non-zero on any failure.
#
# Helm is built from its Go module when missing (a few minutes the first time) and cached in
# $HOME/.cache/qscale/helm-$HELM_VERSION/helm. HELM=/path/to/helm uses another binary.
set -uo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
here=$(cd "$(dirname "$0")" && pwd)
chart=$here/qscale
release=qscale
namespace=qscale
# A go-installed helm lacks the Kubernetes version ldflags and assumes v1.20, older than the
# chart's kubeVersion (>=1.23, for autoscaling/v2); render for a current cluster instead.
kube=(--kube-version "${KUBE_VERSION:-1.33.0}")

helm=${HELM:-$HOME/.cache/qscale/helm-$HELM_VERSION/helm}
if [ ! -x "$helm" ]; then
  dir=$(dirname "$helm")
  echo "building helm $HELM_VERSION into $dir (takes a few minutes)" >&2
  mkdir -p "$dir"
  (cd "$dir" && GOBIN="$dir" GOFLAGS=-buildvcs=false go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") || {
    echo "cannot build helm" >&2; exit 2; }
fi
"$helm" version --short >&2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then pass "$d"; else fail "$d"; fi; }

# doc FILE KIND [NAME]: the rendered documents of that kind (and metadata.name).
doc() {
  awk -v kind="$2" -v name="${3:-}" '
    function flush() { if (k == kind && (name == "" || n == name)) printf "%s", buf; buf = ""; k = ""; n = ""; inmeta = 0 }
    /^---/ { flush(); next }
    { buf = buf $0 "\n" }
    /^kind: / { k = $2 }
    /^metadata:/ { inmeta = 1; next }
    /^[^ #-]/ { inmeta = 0 }
    inmeta && n == "" && /^  name: / { n = $2 }
    END { flush() }' "$1"
}
# has FILE KIND NAME REGEX / lacks ...: the document does / does not contain a line matching REGEX.
# grep reads all of its input rather than quit at the first match (-q): under pipefail, doc
# would then die of SIGPIPE while printing a long certificate and fail the pipeline.
has() { doc "$1" "$2" "$3" | grep -E -- "$4" >/dev/null; }
lacks() { doc "$1" "$2" "$3" | grep -E -- "$4" >/dev/null && return 1; [ -n "$(doc "$1" "$2" "$3")" ]; }
exists() { [ -n "$(doc "$1" "$2" "${3:-}")" ]; }
absent() { [ -s "$1" ] && [ -z "$(doc "$1" "$2" "${3:-}")" ]; }  # the file must have rendered
# field FILE KIND NAME KEY: value of the first "  KEY: value" line of the document.
field() { doc "$1" "$2" "$3" | awk -v key="$4:" '$1 == key { print $2; exit }'; }

render() { # render OUT [helm args...]
  local out=$1; shift
  "$helm" template "$release" "$chart" -n "$namespace" "${kube[@]}" "$@" >"$out" 2>"$out.err"
}

### 1. lint
check "lint: default values" "$helm" lint --strict "$chart" -n "$namespace" "${kube[@]}"
for f in "$chart"/ci/*-values.yaml; do
  check "lint: ci/$(basename "$f")" "$helm" lint --strict "$chart" -n "$namespace" "${kube[@]}" -f "$f"
done

### 2. default values
d=$tmp/default.yaml
if render "$d"; then pass "template: default values"; else fail "template: default values: $(cat "$d.err")"; fi
check "default: image tag is the appVersion" has "$d" Deployment qscale 'image: "qscale:0.1.0"'
check "default: command is qscale run" has "$d" Deployment qscale 'command: \["qscale", "run"\]'
check "default: two replicas" has "$d" Deployment qscale '^  replicas: 2$'
check "default: no --namespace" lacks "$d" Deployment qscale '--namespace='
check "default: --secure-port=6443" has "$d" Deployment qscale '--secure-port=6443'
check "default: --metrics-bind-address=:8080" has "$d" Deployment qscale '--metrics-bind-address=:8080'
check "default: --health-probe-bind-address=:8081" has "$d" Deployment qscale '--health-probe-bind-address=:8081'
check "default: --kube-api-qps=50" has "$d" Deployment qscale '--kube-api-qps=50'
check "default: --kube-api-burst=100" has "$d" Deployment qscale '--kube-api-burst=100'
check "default: --tls-cert-file" has "$d" Deployment qscale '--tls-cert-file=/var/run/qscale/serving-cert/tls.crt'
check "default: --tls-private-key-file" has "$d" Deployment qscale '--tls-private-key-file=/var/run/qscale/serving-cert/tls.key'
check "default: --secret-refresh-interval" has "$d" Deployment qscale '--secret-refresh-interval=1m'
check "default: --log-level=info" has "$d" Deployment qscale '--log-level=info$'
check "default: --log-format=json" has "$d" Deployment qscale '--log-format=json$'
l=$tmp/logging.yaml
if render "$l" --set logLevel=debug --set logFormat=text; then pass "template: logLevel=debug, logFormat=text"; else fail "template: logLevel=debug, logFormat=text: $(cat "$l.err")"; fi
check "logging: --log-level=debug" has "$l" Deployment qscale '--log-level=debug$'
check "logging: --log-format=text" has "$l" Deployment qscale '--log-format=text$'
check "default: liveness on /healthz" has "$d" Deployment qscale 'path: /healthz'
check "default: readiness on /readyz" has "$d" Deployment qscale 'path: /readyz'
for want in 'runAsNonRoot: true' 'readOnlyRootFilesystem: true' 'allowPrivilegeEscalation: false' \
            '^ +- ALL$' 'type: RuntimeDefault' 'runAsUser: 65532'; do
  check "default: securityContext $want" has "$d" Deployment qscale "$want"
done
check "default: no topologySpreadConstraints" lacks "$d" Deployment qscale 'topologySpreadConstraints'
sc="$tmp/security.yaml"
cat >"$tmp/security-values.yaml" <<'VALUES'
podSecurityContext: {fsGroup: 2000}
securityContext: {readOnlyRootFilesystem: false}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector: {matchLabels: {app.kubernetes.io/instance: "{{ .Release.Name }}"}}
VALUES
if render "$sc" -f "$tmp/security-values.yaml"; then
  pass "template: podSecurityContext, securityContext, topologySpreadConstraints"
else fail "template: podSecurityContext, securityContext, topologySpreadConstraints: $(cat "$sc.err")"; fi
check "podSecurityContext: fsGroup added" has "$sc" Deployment qscale '^ +fsGroup: 2000$'
check "podSecurityContext: the chart's runAsUser kept" has "$sc" Deployment qscale '^ +runAsUser: 65532$'
check "securityContext: readOnlyRootFilesystem overridden" has "$sc" Deployment qscale '^ +readOnlyRootFilesystem: false$'
check "securityContext: capabilities still dropped" has "$sc" Deployment qscale '^ +- ALL$'
check "topologySpreadConstraints: rendered" has "$sc" Deployment qscale '^ +topologyKey: topology.kubernetes.io/zone$'
check "topologySpreadConstraints: templates in it" has "$sc" Deployment qscale 'app.kubernetes.io/instance: qscale$'
check "default: resources limits" has "$d" Deployment qscale '^ +limits:'
check "default: resources requests" has "$d" Deployment qscale '^ +requests:'
check "default: container ports 6443/8080/8081" bash -c "$(declare -f doc); doc '$d' Deployment qscale | grep -c -E 'containerPort: (6443|8080|8081)$' | grep -qx 3"
check "default: Service has https and metrics ports" bash -c "$(declare -f doc); doc '$d' Service qscale | grep -c -E 'name: (https|metrics)$' | grep -qx 2"
check "default: ServiceAccount" exists "$d" ServiceAccount qscale
check "default: ClusterRole reads Secrets by name" bash -c "$(declare -f doc); doc '$d' ClusterRole qscale | grep -A1 'resources: \[\"secrets\"\]' | grep -q 'verbs: \[\"get\"\]$'"
check "default: ClusterRole never lists or watches Secrets" bash -c "! { $(declare -f doc); doc '$d' ClusterRole qscale | grep -A1 'resources: \[\"secrets\"\]' | grep -E 'list|watch'; }"
check "default: ClusterRole scale subresources get/update" bash -c "$(declare -f doc); doc '$d' ClusterRole qscale | grep -A1 'deployments/scale' | grep -q 'verbs: \[\"get\", \"update\"\]'"
check "default: ClusterRole HPAs" has "$d" ClusterRole qscale 'horizontalpodautoscalers'
check "default: ClusterRole patches its HPAs" bash -c "$(declare -f doc); doc '$d' ClusterRole qscale | grep -A1 'resources: \[\"horizontalpodautoscalers\"\]' | grep -q '\"patch\"'"
check "default: ClusterRole patches workloads (the status annotation)" bash -c "$(declare -f doc); doc '$d' ClusterRole qscale | grep -A1 'resources: \[\"deployments\", \"statefulsets\"\]' | grep -q 'verbs: \[\"get\", \"list\", \"watch\", \"patch\"\]'"
check "default: ClusterRole never updates or deletes workloads" bash -c "! { $(declare -f doc); doc '$d' ClusterRole qscale | grep -A1 'resources: \[\"deployments\", \"statefulsets\"\]' | grep -E '\"(update|delete|create)\"'; }"
check "default: ClusterRole events.k8s.io" has "$d" ClusterRole qscale 'events.k8s.io'
check "default: ClusterRole grants no wildcard verbs" lacks "$d" ClusterRole qscale 'verbs: \[.*"\*"'
check "default: no namespaced workload Role" absent "$d" Role qscale
check "default: auth-delegator binding" has "$d" ClusterRoleBinding 'qscale:system:auth-delegator' 'name: system:auth-delegator'
check "default: auth reader RoleBinding in kube-system" has "$d" RoleBinding qscale-auth-reader 'namespace: kube-system'
check "default: HPA controller may read external metrics" has "$d" ClusterRoleBinding qscale-hpa-external-metrics 'name: horizontal-pod-autoscaler'
check "default: external metrics reader ClusterRole" has "$d" ClusterRole qscale-external-metrics-reader 'external.metrics.k8s.io'
check "default: APIService v1beta1.external.metrics.k8s.io" exists "$d" APIService v1beta1.external.metrics.k8s.io
check "default: APIService points at the Service" has "$d" APIService v1beta1.external.metrics.k8s.io '^    name: qscale$'
check "default: APIService does not skip TLS verification" lacks "$d" APIService v1beta1.external.metrics.k8s.io 'insecureSkipTLSVerify'
check "default: generated TLS Secret" has "$d" Secret qscale-tls 'type: kubernetes.io/tls'
ca_api=$(field "$d" APIService v1beta1.external.metrics.k8s.io caBundle)
ca_secret=$(doc "$d" Secret qscale-tls | awk '$1 == "ca.crt:" { print $2 }')
check "default: caBundle is the Secret's ca.crt" test -n "$ca_api" -a "$ca_api" = "$ca_secret"
if command -v openssl >/dev/null; then
  doc "$d" Secret qscale-tls | awk '$1 == "ca.crt:" { print $2 }' | base64 -d >"$tmp/ca.crt"
  doc "$d" Secret qscale-tls | awk '$1 == "tls.crt:" { print $2 }' | base64 -d >"$tmp/tls.crt"
  check "default: certificate is signed by the CA" openssl verify -CAfile "$tmp/ca.crt" "$tmp/tls.crt"
  check "default: certificate names the Service" bash -c "openssl x509 -in '$tmp/tls.crt' -noout -text | grep -q 'DNS:qscale.qscale.svc'"
fi
check "default: no ServiceMonitor" absent "$d" ServiceMonitor
check "default: no NetworkPolicy" absent "$d" NetworkPolicy
check "default: no cert-manager objects" absent "$d" Certificate
check "default: no Grafana dashboard ConfigMap" absent "$d" ConfigMap qscale-dashboard
check "default: no PrometheusRule" absent "$d" PrometheusRule
kinds=$(grep -c '^kind: ' "$d"); managed=$(grep -c '^    app.kubernetes.io/managed-by: Helm$' "$d")
check "default: every object has app.kubernetes.io/managed-by ($managed/$kinds)" test "$kinds" -eq "$managed"
# helm template does not print NOTES.txt (and helm install --dry-run wants a cluster): render it
# through a ConfigMap added to a copy of the chart.
cp -r "$chart" "$tmp/chart"
printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: notes}' \
  'data: {notes: {{ include "qscale/templates/NOTES.txt" . | toJson }}}' >"$tmp/chart/templates/zz-notes.yaml"
"$helm" template "$release" "$tmp/chart" -n "$namespace" "${kube[@]}" --show-only templates/zz-notes.yaml >"$tmp/notes.yaml" 2>&1
check "default: NOTES render with a qscale.io/triggers example" grep -q 'qscale.io/triggers: |' "$tmp/notes.yaml"
check "default: NOTES point at the APIService" grep -q 'kubectl get apiservice v1beta1.external.metrics.k8s.io' "$tmp/notes.yaml"

### 2b. several replicas: leader election, shared polling, the PDB, anti-affinity
# verbsOf FILE KIND NAME: the verbs lines of the document's rules, one per rule.
verbsOf() { doc "$1" "$2" "$3" | grep -E '^ +verbs: '; }
check "default: --leader-elect" has "$d" Deployment qscale '- --leader-elect$'
check "default: --leader-election-namespace is the release namespace" has "$d" Deployment qscale '- --leader-election-namespace=qscale$'
check "default: --peer-address=\$(POD_IP)" has "$d" Deployment qscale '^ +- --peer-address=\$\(POD_IP\)$'
check "default: env POD_IP" has "$d" Deployment qscale '^ +- name: POD_IP$'
check "default: POD_IP from status.podIP" bash -c "$(declare -f doc); doc '$d' Deployment qscale | grep -A3 -- '- name: POD_IP$' | grep -q 'fieldPath: status.podIP$'"
check "default: leader-election Role in the release namespace" has "$d" Role qscale-leader-election '^  namespace: qscale$'
check "default: leader-election Role get/create/update on leases" bash -c "$(declare -f doc); doc '$d' Role qscale-leader-election | grep -A1 'resources: \[\"leases\"\]' | grep -qx '    verbs: \[\"get\", \"create\", \"update\"\]'"
check "default: leader-election Role list/watch/delete on leases (membership)" bash -c "$(declare -f doc); doc '$d' Role qscale-leader-election | grep -A1 'resources: \[\"leases\"\]' | grep -qx '    verbs: \[\"list\", \"watch\", \"delete\"\]'"
check "default: leader-election RoleBinding" has "$d" RoleBinding qscale-leader-election '^  name: qscale-leader-election$'
check "default: peer-samples ClusterRole posts /qscale/v1/samples" bash -c "$(declare -f doc); doc '$d' ClusterRole qscale-peer-samples | grep -A1 'nonResourceURLs: \[\"/qscale/v1/samples\"\]' | grep -qx '    verbs: \[\"post\"\]'"
check "default: peer-samples ClusterRole has that rule alone" test "$(verbsOf "$d" ClusterRole qscale-peer-samples | wc -l)" -eq 1
check "default: peer-samples ClusterRole grants no resources" lacks "$d" ClusterRole qscale-peer-samples 'resources:'
check "default: peer-samples bound to qscale's ServiceAccount" bash -c "$(declare -f doc); doc '$d' ClusterRoleBinding qscale-peer-samples | grep -A2 'kind: ServiceAccount' | grep -q 'name: qscale$'"
check "default: peer-samples binding names its ClusterRole" has "$d" ClusterRoleBinding qscale-peer-samples '^  name: qscale-peer-samples$'
check "default: PodDisruptionBudget" exists "$d" PodDisruptionBudget qscale
check "default: PodDisruptionBudget maxUnavailable 1" has "$d" PodDisruptionBudget qscale '^  maxUnavailable: 1$'
check "default: PodDisruptionBudget has no minAvailable" lacks "$d" PodDisruptionBudget qscale 'minAvailable'
check "default: PodDisruptionBudget selects the pods" has "$d" PodDisruptionBudget qscale '^      app.kubernetes.io/instance: qscale$'
check "default: soft anti-affinity" has "$d" Deployment qscale '^ +preferredDuringSchedulingIgnoredDuringExecution:$'
check "default: no hard anti-affinity" lacks "$d" Deployment qscale 'requiredDuringScheduling'
check "default: anti-affinity by node" has "$d" Deployment qscale '^ +topologyKey: kubernetes.io/hostname$'
check "default: anti-affinity selects the release's pods" has "$d" Deployment qscale '^                    app.kubernetes.io/instance: qscale$'

o=$tmp/one.yaml
if render "$o" --set replicaCount=1; then pass "template: replicaCount=1"; else fail "template: replicaCount=1: $(cat "$o.err")"; fi
check "one replica: replicas 1" has "$o" Deployment qscale '^  replicas: 1$'
check "one replica: no --leader-elect" lacks "$o" Deployment qscale '--leader-elect'
check "one replica: no --peer-address" lacks "$o" Deployment qscale '--peer-address'
check "one replica: no POD_IP" lacks "$o" Deployment qscale 'POD_IP'
check "one replica: no env at all" lacks "$o" Deployment qscale '^ +env:'
check "one replica: no PodDisruptionBudget (it would block drains)" absent "$o" PodDisruptionBudget
check "one replica: no leader-election Role" absent "$o" Role qscale-leader-election
check "one replica: no peer-samples ClusterRole" absent "$o" ClusterRole qscale-peer-samples
check "one replica: no peer-samples binding" absent "$o" ClusterRoleBinding qscale-peer-samples
o2=$tmp/one-pdb.yaml
if render "$o2" --set replicaCount=1 --set podDisruptionBudget.enabled=true; then
  pass "template: replicaCount=1, podDisruptionBudget.enabled=true"
else fail "template: replicaCount=1, podDisruptionBudget.enabled=true: $(cat "$o2.err")"; fi
check "one replica, PDB asked for: rendered" has "$o2" PodDisruptionBudget qscale '^  maxUnavailable: 1$'
p=$tmp/pdb-off.yaml
if render "$p" --set podDisruptionBudget.enabled=false; then pass "template: podDisruptionBudget.enabled=false"; else fail "template: podDisruptionBudget.enabled=false: $(cat "$p.err")"; fi
check "PDB off: none with two replicas" absent "$p" PodDisruptionBudget
p=$tmp/pdb-min.yaml
if render "$p" --set podDisruptionBudget.minAvailable=50% --set podDisruptionBudget.maxUnavailable=null; then
  pass "template: podDisruptionBudget.minAvailable=50%"
else fail "template: podDisruptionBudget.minAvailable=50%: $(cat "$p.err")"; fi
check "PDB minAvailable 50%" has "$p" PodDisruptionBudget qscale '^  minAvailable: 50%$'
check "PDB minAvailable: no maxUnavailable" lacks "$p" PodDisruptionBudget qscale 'maxUnavailable'
p=$tmp/pdb-max-null.yaml
if render "$p" --set podDisruptionBudget.maxUnavailable=2 --set podDisruptionBudget.minAvailable=null; then
  pass "template: podDisruptionBudget.minAvailable=null"
else fail "template: podDisruptionBudget.minAvailable=null: $(cat "$p.err")"; fi
check "PDB minAvailable null: maxUnavailable used" has "$p" PodDisruptionBudget qscale '^  maxUnavailable: 2$'
check "PDB: neither minAvailable nor maxUnavailable fails clearly" bash -c "'$helm' template $release '$chart' -n $namespace ${kube[*]} --set podDisruptionBudget.maxUnavailable= 2>&1 | grep -q 'podDisruptionBudget needs minAvailable or maxUnavailable'"

sp=$tmp/no-share.yaml
if render "$sp" --set sharePolling=false --set 'extraEnv[0].name=GOGC' --set-string 'extraEnv[0].value=50'; then
  pass "template: sharePolling=false"
else fail "template: sharePolling=false: $(cat "$sp.err")"; fi
check "no sharing: --leader-elect kept" has "$sp" Deployment qscale '- --leader-elect$'
check "no sharing: no --peer-address" lacks "$sp" Deployment qscale '--peer-address'
check "no sharing: no POD_IP" lacks "$sp" Deployment qscale 'POD_IP'
check "no sharing: extraEnv kept" has "$sp" Deployment qscale '^ +- name: GOGC$'
check "no sharing: no peer-samples ClusterRole" absent "$sp" ClusterRole qscale-peer-samples
check "no sharing: no peer-samples binding" absent "$sp" ClusterRoleBinding qscale-peer-samples
check "no sharing: leader-election Role keeps get/create/update" has "$sp" Role qscale-leader-election 'verbs: \["get", "create", "update"\]$'
check "no sharing: leader-election Role neither lists, watches nor deletes" lacks "$sp" Role qscale-leader-election '"(list|watch|delete)"'
check "no sharing: PodDisruptionBudget kept" exists "$sp" PodDisruptionBudget qscale
a=$tmp/no-anti-affinity.yaml
if render "$a" --set podAntiAffinity=; then pass "template: podAntiAffinity empty"; else fail "template: podAntiAffinity empty: $(cat "$a.err")"; fi
check "podAntiAffinity empty: no affinity" lacks "$a" Deployment qscale 'affinity:'

### 3. ci/ha-values.yaml: replicas 2, watchNamespace, cert-manager, PDB, ServiceMonitor, NetworkPolicy
h=$tmp/ha.yaml
if render "$h" -f "$chart/ci/ha-values.yaml"; then pass "template: ci/ha-values.yaml"; else fail "template: ci/ha-values.yaml: $(cat "$h.err")"; fi
check "ha: two replicas" has "$h" Deployment qscale '^  replicas: 2$'
check "ha: --leader-elect with two replicas" has "$h" Deployment qscale '- --leader-elect$'
check "ha: --leader-election-namespace is the release namespace" has "$h" Deployment qscale '--leader-election-namespace=qscale'
check "ha: --namespace=shop" has "$h" Deployment qscale '--namespace=shop'
check "ha: --kube-api-qps=20" has "$h" Deployment qscale '--kube-api-qps=20'
check "ha: extra arg" has "$h" Deployment qscale '- "--v=2"'
check "ha: extra env" has "$h" Deployment qscale 'name: GOMAXPROCS'
check "ha: image" has "$h" Deployment qscale 'image: "registry.example.com/qscale:0.1.0-rc1"'
check "ha: pullPolicy" has "$h" Deployment qscale 'imagePullPolicy: Always'
check "ha: nodeSelector" has "$h" Deployment qscale 'kubernetes.io/os: linux'
check "ha: tolerations" has "$h" Deployment qscale 'key: dedicated'
check "ha: affinity" has "$h" Deployment qscale 'podAntiAffinity:'
check "ha: affinity replaces the default anti-affinity" lacks "$h" Deployment qscale '^                    app.kubernetes.io/instance: qscale$'
check "ha: --peer-address" has "$h" Deployment qscale '^ +- --peer-address=\$\(POD_IP\)$'
check "ha: env POD_IP beside extraEnv" has "$h" Deployment qscale '^ +- name: POD_IP$'
check "ha: leader-election Role lists, watches and deletes membership Leases" has "$h" Role qscale-leader-election 'verbs: \["list", "watch", "delete"\]$'
check "ha: peer-samples ClusterRole with watchNamespace too" has "$h" ClusterRole qscale-peer-samples '/qscale/v1/samples'
check "ha: no cluster-wide workload ClusterRole" absent "$h" ClusterRole qscale
check "ha: no cluster-wide workload binding" absent "$h" ClusterRoleBinding qscale
check "ha: Role in shop" has "$h" Role qscale 'namespace: shop'
check "ha: Role reads Secrets in shop" has "$h" Role qscale 'resources: \["secrets"\]'
check "ha: Role scales workloads in shop" has "$h" Role qscale 'deployments/scale'
check "ha: Role manages HPAs in shop" has "$h" Role qscale 'horizontalpodautoscalers'
check "ha: RoleBinding in shop" has "$h" RoleBinding qscale 'namespace: shop'
check "ha: leader-election Role on leases" has "$h" Role qscale-leader-election 'leases'
check "ha: leader-election RoleBinding" exists "$h" RoleBinding qscale-leader-election
check "ha: APIService injected by cert-manager" has "$h" APIService v1beta1.external.metrics.k8s.io 'cert-manager.io/inject-ca-from: qscale/qscale-serving'
check "ha: APIService has no chart caBundle" lacks "$h" APIService v1beta1.external.metrics.k8s.io '^  caBundle:'
check "ha: cert-manager Certificate into qscale-tls" has "$h" Certificate qscale-serving 'secretName: qscale-tls'
check "ha: self-signed Issuer" has "$h" Issuer qscale-selfsigned 'selfSigned'
check "ha: no chart-generated Secret" absent "$h" Secret
check "ha: PodDisruptionBudget minAvailable 1" has "$h" PodDisruptionBudget qscale 'minAvailable: 1'
check "ha: minAvailable replaces the default maxUnavailable" lacks "$h" PodDisruptionBudget qscale 'maxUnavailable'
check "ha: ServiceMonitor scrapes port metrics" has "$h" ServiceMonitor qscale 'port: metrics'
check "ha: ServiceMonitor extra label" has "$h" ServiceMonitor qscale 'release: prometheus'
check "ha: ServiceMonitor keeps qscale's namespace label" has "$h" ServiceMonitor qscale 'honorLabels: true$'
check "ha: NetworkPolicy restricts metrics" has "$h" NetworkPolicy qscale 'kubernetes.io/metadata.name: monitoring'

### 4. ci/existing-secret-values.yaml: user-supplied certificate
e=$tmp/existing.yaml
if render "$e" -f "$chart/ci/existing-secret-values.yaml"; then pass "template: ci/existing-secret-values.yaml"; else fail "template: ci/existing-secret-values.yaml: $(cat "$e.err")"; fi
check "existing: pods mount the user's Secret" has "$e" Deployment qscale 'secretName: my-qscale-serving-cert'
check "existing: no Secret rendered" absent "$e" Secret
check "existing: no cert-manager Certificate" absent "$e" Certificate
check "existing: caBundle is the user's" has "$e" APIService v1beta1.external.metrics.k8s.io 'caBundle: LS0tLS1CRUdJTiBDRVJU'
check "existing: no inject-ca-from" lacks "$e" APIService v1beta1.external.metrics.k8s.io 'inject-ca-from'
check "existing: PDB maxUnavailable" has "$e" PodDisruptionBudget qscale 'maxUnavailable: 1'
check "existing: mode without caBundle fails" bash -c "'$helm' template $release '$chart' -n $namespace ${kube[*]} --set certificate.mode=existingSecret --set certificate.existingSecret.name=x 2>&1 | grep -q 'caBundle is required'"
check "existing: mode without name fails" bash -c "'$helm' template $release '$chart' -n $namespace ${kube[*]} --set certificate.mode=existingSecret --set certificate.existingSecret.caBundle=QUJD 2>&1 | grep -q 'existingSecret.name is required'"

### 5. ci/no-apiservice-values.yaml: another adapter owns the APIService
n=$tmp/none.yaml
if render "$n" -f "$chart/ci/no-apiservice-values.yaml"; then pass "template: ci/no-apiservice-values.yaml"; else fail "template: ci/no-apiservice-values.yaml: $(cat "$n.err")"; fi
check "no-apiservice: no APIService" absent "$n" APIService
check "no-apiservice: no serving-cert Secret" absent "$n" Secret
check "no-apiservice: no HPA external-metrics binding" absent "$n" ClusterRoleBinding qscale-hpa-external-metrics
check "no-apiservice: no --tls-cert-file" lacks "$n" Deployment qscale '--tls-cert-file'
check "no-apiservice: forced --leader-elect with one replica" has "$n" Deployment qscale '- --leader-elect$'
check "no-apiservice: one replica" has "$n" Deployment qscale '^  replicas: 1$'
check "no-apiservice: forced leader election shares the polling" has "$n" Deployment qscale '^ +- --peer-address=\$\(POD_IP\)$'
check "no-apiservice: no PodDisruptionBudget with one replica" absent "$n" PodDisruptionBudget
check "no-apiservice: Service still exposes metrics" has "$n" Service qscale 'name: metrics'

### 5b. forwarding the external metrics qscale does not serve to another adapter
check "default: no --forward-external-metrics" lacks "$d" Deployment qscale '--forward-'
check "default: qscale may not read external metrics" absent "$d" ClusterRoleBinding qscale-forward-external-metrics
check "default: no forward CA ConfigMap" absent "$d" ConfigMap qscale-forward-ca
f=$tmp/forward.yaml
if render "$f" -f "$chart/ci/forward-values.yaml"; then pass "template: ci/forward-values.yaml"; else fail "template: ci/forward-values.yaml: $(cat "$f.err")"; fi
check "forward: --forward-external-metrics" has "$f" Deployment qscale '- --forward-external-metrics=https://keda-operator-metrics-apiserver.keda.svc:443$'
check "forward: --forward-timeout" has "$f" Deployment qscale '- --forward-timeout=5s$'
check "forward: --forward-ca-file" has "$f" Deployment qscale '- --forward-ca-file=/var/run/qscale/forward-ca/ca.crt$'
check "forward: verification kept" lacks "$f" Deployment qscale 'forward-insecure-skip-tls-verify'
check "forward: CA mounted" has "$f" Deployment qscale 'mountPath: /var/run/qscale/forward-ca$'
check "forward: CA from the ConfigMap" has "$f" Deployment qscale '^ +name: qscale-forward-ca$'
check "forward: pods restart on a new CA" has "$f" Deployment qscale 'checksum/forward-ca: [0-9a-f]{64}$'
ca_forward=$(awk '$1 == "caBundle:" { print $2 }' "$chart/ci/forward-values.yaml")
check "forward: ConfigMap holds the CA bundle" test -n "$ca_forward" -a "$(field "$f" ConfigMap qscale-forward-ca ca.crt)" = "$ca_forward"
check "forward: qscale's ServiceAccount may read external metrics" has "$f" ClusterRoleBinding qscale-forward-external-metrics '^  name: qscale-external-metrics-reader$'
check "forward: bound to qscale's ServiceAccount" bash -c "$(declare -f doc); doc '$f' ClusterRoleBinding qscale-forward-external-metrics | grep -A2 'kind: ServiceAccount' | grep -q 'name: qscale$'"
check "forward: the reader role is get and list on external metrics" bash -c "$(declare -f doc); doc '$f' ClusterRole qscale-external-metrics-reader | grep -A2 'external.metrics.k8s.io' | grep -q 'verbs: \[\"get\", \"list\"\]'"
check "forward: the HPA controller gets nothing new" bash -c "$(declare -f doc); [ \"\$(doc '$f' ClusterRoleBinding qscale-hpa-external-metrics)\" = \"\$(doc '$d' ClusterRoleBinding qscale-hpa-external-metrics)\" ]"
fi=$tmp/forward-insecure.yaml
if render "$fi" --set forward.url=https://keda-operator-metrics-apiserver.keda.svc:443 --set forward.insecureSkipTLSVerify=true; then
  pass "template: forward.insecureSkipTLSVerify"
else fail "template: forward.insecureSkipTLSVerify: $(cat "$fi.err")"; fi
check "forward insecure: --forward-insecure-skip-tls-verify" has "$fi" Deployment qscale '- --forward-insecure-skip-tls-verify$'
check "forward insecure: default --forward-timeout=10s" has "$fi" Deployment qscale '- --forward-timeout=10s$'
check "forward insecure: no --forward-ca-file" lacks "$fi" Deployment qscale 'forward-ca'
check "forward insecure: no CA ConfigMap" absent "$fi" ConfigMap qscale-forward-ca
refused() { # refused DESCRIPTION MESSAGE helm-args...: helm template fails with MESSAGE
  local d=$1 m=$2; shift 2
  check "$d" bash -c "'$helm' template $release '$chart' -n $namespace ${kube[*]} $* 2>&1 | grep -qF '$m'"
}
refused "forward: needs the APIService" "forward.url needs apiService.create" \
  --set forward.url=https://keda:443 --set apiService.create=false
refused "forward: a CA and no verification exclude each other" "exclude each other" \
  --set forward.url=https://keda:443 --set forward.caBundle=QUJD --set forward.insecureSkipTLSVerify=true
refused "forward: a CA without a URL" "need forward.url" --set forward.caBundle=QUJD

### 6. the Grafana dashboard and the PrometheusRule
# rule FILE ALERT: the lines of one rule of the PrometheusRule.
rule() {
  doc "$1" PrometheusRule qscale | awk -v a="$2" '/^ *- alert: / { on = ($3 == a) } on'
}
ruleHas() { rule "$1" "$2" | grep -E -- "$3" >/dev/null; }
# embedded FILE: the dashboard JSON that the ConfigMap holds, unindented.
embedded() {
  doc "$1" ConfigMap qscale-dashboard | awk '/^  qscale.json: \|/ { on = 1; next } on && /^    / { print substr($0, 5); next } on { exit }'
}
alerts=(QscaleSourceFailing QscaleFallbackActive QscaleMetricsAPIErrors QscaleSourcePanics)
g=$tmp/monitoring-defaults.yaml
if render "$g" --set grafanaDashboard.enabled=true --set prometheusRule.enabled=true; then
  pass "template: grafanaDashboard and prometheusRule enabled"
else
  fail "template: grafanaDashboard and prometheusRule enabled: $(cat "$g.err")"
fi
check "monitoring: dashboard ConfigMap in the release namespace" has "$g" ConfigMap qscale-dashboard 'namespace: qscale$'
check "monitoring: dashboard ConfigMap has the sidecar's label" has "$g" ConfigMap qscale-dashboard 'grafana_dashboard: "1"$'
check "monitoring: dashboard ConfigMap holds dashboards/qscale.json as it is" bash -c "$(declare -f doc embedded); diff <(embedded '$g') '$chart/dashboards/qscale.json'"
check "monitoring: PrometheusRule is monitoring.coreos.com/v1" bash -c "$(declare -f doc); doc '$g' PrometheusRule qscale | grep -qx 'apiVersion: monitoring.coreos.com/v1'"
for a in "${alerts[@]}"; do
  check "monitoring: alert $a" ruleHas "$g" "$a" "^ *- alert: $a$"
  check "monitoring: alert $a has an expression" ruleHas "$g" "$a" '^ *expr: \|-$'
  check "monitoring: alert $a has severity warning" ruleHas "$g" "$a" '^ *severity: warning$'
  check "monitoring: alert $a has a summary" ruleHas "$g" "$a" '^ *summary: ".+"$'
  check "monitoring: alert $a has a description" ruleHas "$g" "$a" '^ *description: ".+"$'
done
check "monitoring: QscaleSourceFailing for 10m" ruleHas "$g" QscaleSourceFailing '^ *for: 10m$'
check "monitoring: QscaleSourceFailing reads qscale_source_errors_total" ruleHas "$g" QscaleSourceFailing 'increase\(qscale_source_errors_total\[5m\]\)'
check "monitoring: annotations keep Prometheus' templates" ruleHas "$g" QscaleSourceFailing 'summary: ".*\{\{ \$labels.trigger \}\}'
check "monitoring: an alert missing from the values fails clearly" bash -c "'$helm' template $release '$chart' -n $namespace ${kube[*]} --set prometheusRule.enabled=true --set prometheusRule.alerts.QscaleSourceFailing=null 2>&1 | grep -q 'prometheusRule.alerts.QscaleSourceFailing is missing'"

m=$tmp/monitoring.yaml
if render "$m" -f "$chart/ci/monitoring-values.yaml"; then pass "template: ci/monitoring-values.yaml"; else fail "template: ci/monitoring-values.yaml: $(cat "$m.err")"; fi
check "monitoring-values: ServiceMonitor honorLabels false" has "$m" ServiceMonitor qscale 'honorLabels: false$'
check "monitoring-values: dashboard ConfigMap in namespace monitoring" has "$m" ConfigMap qscale-dashboard 'namespace: monitoring$'
check "monitoring-values: sidecar label value" has "$m" ConfigMap qscale-dashboard 'grafana_dashboard: "qscale"$'
check "monitoring-values: dashboard extra label" has "$m" ConfigMap qscale-dashboard 'team: platform$'
check "monitoring-values: dashboard annotation" has "$m" ConfigMap qscale-dashboard 'grafana_folder: Autoscaling$'
check "monitoring-values: PrometheusRule extra label" has "$m" PrometheusRule qscale 'release: prometheus$'
check "monitoring-values: disabled alert left out" lacks "$m" PrometheusRule qscale 'alert: QscaleSourcePanics'
check "monitoring-values: for changed" ruleHas "$m" QscaleSourceFailing '^ *for: 15m$'
check "monitoring-values: severity changed" ruleHas "$m" QscaleFallbackActive '^ *severity: critical$'
check "monitoring-values: default for kept beside a changed severity" ruleHas "$m" QscaleFallbackActive '^ *for: 5m$'
check "monitoring-values: an alert's own label" ruleHas "$m" QscaleFallbackActive '^ *page: "true"$'
check "monitoring-values: labels of every alert" ruleHas "$m" QscaleMetricsAPIErrors '^ *team: platform$'
check "monitoring-values: an alert's own label stays its own" bash -c "! { $(declare -f doc rule); rule '$m' QscaleMetricsAPIErrors | grep 'page:'; }"
check "monitoring-values: a custom sidecar label" bash -c "'$helm' template $release '$chart' -n $namespace ${kube[*]} --set grafanaDashboard.enabled=true --set grafanaDashboard.sidecarLabel=dashboards --set grafanaDashboard.sidecarLabelValue=yes 2>&1 | grep -qx '    dashboards: \"yes\"'"

### 7. values the schema must reject
bad() { # bad NAME YAML: helm template with these values must fail with a schema error
  printf '%s\n' "$2" >"$tmp/bad-$1.yaml"
  if "$helm" template "$release" "$chart" -n "$namespace" "${kube[@]}" -f "$tmp/bad-$1.yaml" >/dev/null 2>"$tmp/bad-$1.err"; then
    fail "schema rejects $1 (rendered without error)"
  elif grep -q "don't meet the specifications of the schema" "$tmp/bad-$1.err"; then
    pass "schema rejects $1"
  else
    fail "schema rejects $1 (failed, but not by the schema: $(head -c 300 "$tmp/bad-$1.err"))"
  fi
}
bad wrong-type-replicaCount 'replicaCount: "two"'
bad replicaCount-below-minimum 'replicaCount: 0'
bad wrong-type-nested 'serviceMonitor: {enabled: "yes"}'
bad unknown-top-level-key 'replicas: 2'
bad unknown-nested-key 'image: {repository: qscale, digest: sha256:abc}'
bad unknown-deep-key 'certificate: {certManager: {issuerRef: {namespace: x}}}'
bad unknown-resources-key 'resources: {requests: {gpu: 1}}'
bad enum-pullPolicy 'image: {pullPolicy: Sometimes}'
bad enum-certificate-mode 'certificate: {mode: vault}'
bad port-above-maximum 'service: {port: 70000}'
bad watchNamespace-not-dns 'watchNamespace: Shop_Floor'
bad extraArgs-not-flags 'extraArgs: [run]'
bad topologySpreadConstraints-incomplete 'topologySpreadConstraints: [{maxSkew: 1}]'
bad podSecurityContext-not-object 'podSecurityContext: [runAsUser]'
bad enum-logLevel 'logLevel: warn'
bad enum-logFormat 'logFormat: console'
bad serviceMonitor-honorLabels-type 'serviceMonitor: {honorLabels: "yes"}'
bad grafanaDashboard-unknown-key 'grafanaDashboard: {folder: qscale}'
bad grafanaDashboard-enabled-type 'grafanaDashboard: {enabled: "yes"}'
bad grafanaDashboard-namespace-not-dns 'grafanaDashboard: {namespace: Monitoring}'
bad prometheusRule-unknown-alert 'prometheusRule: {alerts: {QscaleConfigInvalid: {enabled: true, for: 5m, severity: warning}}}'
bad prometheusRule-unknown-alert-key 'prometheusRule: {alerts: {QscaleSourceFailing: {threshold: 3}}}'
bad prometheusRule-for-not-duration 'prometheusRule: {alerts: {QscaleSourceFailing: {for: 10 minutes}}}'
bad prometheusRule-label-not-string 'prometheusRule: {alertLabels: {page: true}}'
bad forward-url-plain-http 'forward: {url: "http://keda-operator-metrics-apiserver.keda.svc:80"}'
bad forward-url-with-path 'forward: {url: "https://keda:443/apis"}'
bad forward-url-with-credentials 'forward: {url: "https://qscale:secret@keda:443"}'
bad forward-caBundle-not-base64 'forward: {caBundle: "-----BEGIN CERTIFICATE-----"}'
bad forward-timeout-not-duration 'forward: {timeout: 10 seconds}'
bad forward-unknown-key 'forward: {caFile: /etc/ca.crt}'
bad sharePolling-not-boolean 'sharePolling: "yes"'
bad podAntiAffinity-unknown 'podAntiAffinity: hard'
bad podDisruptionBudget-enabled-unknown 'podDisruptionBudget: {enabled: always}'

### 8. the chart README documents every value (a map may be documented as a whole)
# values_leaves: the dotted path of every value set in values.yaml (two-space indentation).
values_leaves() {
  awk '/^[[:space:]]*#/ || /^[[:space:]]*$/ { next }
    /^ *[A-Za-z0-9_]+:/ {
      match($0, /^ */); depth = RLENGTH / 2
      key = $0; sub(/^ */, "", key); val = key; sub(/:.*/, "", key)
      sub(/^[^:]*:[[:space:]]*/, "", val); sub(/[[:space:]]+#.*/, "", val)
      path[depth] = key; p = path[0]; for (i = 1; i <= depth; i++) p = p "." path[i]
      if (val != "") print p
    }' "$chart/values.yaml"
}
documented() { # documented PATH: PATH or one of its parents has a row in the README's table
  local p=$1
  while :; do
    grep -qF "| \`$p\` |" "$chart/README.md" && return 0
    [ "${p%.*}" = "$p" ] && return 1
    p=${p%.*}
  done
}
n=0
for v in $(values_leaves); do
  n=$((n + 1))
  check "README documents $v" documented "$v"
done
check "README: found the values ($n)" test "$n" -gt 40

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
