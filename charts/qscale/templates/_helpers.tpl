{{/* Name of the chart, overridable. */}}
{{- define "qscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects; the release name alone when it already contains the chart name. */}}
{{- define "qscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "qscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "qscale.labels" -}}
helm.sh/chart: {{ include "qscale.chart" . }}
{{ include "qscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels selecting the pods; must never change between upgrades. */}}
{{- define "qscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "qscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "qscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: always with several replicas, or when forced. */}}
{{- define "qscale.leaderElect" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.leaderElection.enabled }}true{{ end }}
{{- end }}

{{- /*
  "true" when the replicas share the polling (--peer-address): each broker connection is polled
  by one live replica, which sends its samples to the others. It needs leader election, whose
  namespace also holds the replicas' membership Leases.
*/}}
{{- define "qscale.sharePolling" -}}
{{- if and (include "qscale.leaderElect" .) .Values.sharePolling }}true{{ end }}
{{- end }}

{{- /*
  "true" when the chart installs its PodDisruptionBudget: podDisruptionBudget.enabled true
  always, auto only with several replicas (a budget on a single pod protects nothing, and one
  that keeps it available blocks every drain of its node).
*/}}
{{- define "qscale.pdb" -}}
{{- $enabled := toString .Values.podDisruptionBudget.enabled }}
{{- if or (eq $enabled "true") (and (eq $enabled "auto") (gt (int .Values.replicaCount) 1)) }}true{{ end }}
{{- end }}

{{- define "qscale.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/* Name of the Secret holding the serving certificate, whatever its source. */}}
{{- define "qscale.tlsSecretName" -}}
{{- if eq .Values.certificate.mode "existingSecret" }}
{{- required "certificate.existingSecret.name is required when certificate.mode is existingSecret" .Values.certificate.existingSecret.name }}
{{- else }}
{{- printf "%s-tls" (include "qscale.fullname" .) }}
{{- end }}
{{- end }}

{{/* Name of the cert-manager Certificate (mode certManager). */}}
{{- define "qscale.certificateName" -}}
{{- printf "%s-serving" (include "qscale.fullname" .) }}
{{- end }}

{{/* "true" when qscale is given a serving certificate (it only needs one for the APIService). */}}
{{- define "qscale.servingCert" -}}
{{- if .Values.apiService.create }}true{{ end }}
{{- end }}

{{- /*
  What qscale does to the workloads it scales: watch them, resize them through the scale
  subresource, own their HPAs, record Events and read the Secrets their triggers name. Without
  watchNamespace that is cluster-wide (a ClusterRole); with it, a Role in that namespace alone,
  so qscale can touch nothing elsewhere.
*/}}
{{- define "qscale.workloadRules" -}}
# patch: the qscale.io/status annotation, a merge patch of that one annotation.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "update"]
# qscale updates the HPAs it owns with merge patches.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Older event recorders write core events; allow both.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Trigger credentials (authenticationRef): read by name only. qscale never lists or
# watches Secrets; it holds those that triggers name and reads them again every
# secretRefreshInterval, so a rotated Secret takes effect without a restart.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}

{{- /*
  "true" when qscale forwards the external metrics it does not serve; fails on values that
  cannot work together. Forwarding needs the APIService: only requests that reach qscale
  through it can be forwarded.
*/}}
{{- define "qscale.forward" -}}
{{- with .Values.forward }}
{{- if .url }}
{{- if not $.Values.apiService.create }}
{{- fail "forward.url needs apiService.create: qscale forwards only what reaches it through the APIService" }}
{{- end }}
{{- if and .caBundle .insecureSkipTLSVerify }}
{{- fail "forward.caBundle and forward.insecureSkipTLSVerify exclude each other" }}
{{- end }}true
{{- else if or .caBundle .insecureSkipTLSVerify }}
{{- fail "forward.caBundle and forward.insecureSkipTLSVerify need forward.url" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap holding forward.caBundle. */}}
{{- define "qscale.forwardCAName" -}}
{{- printf "%s-forward-ca" (include "qscale.fullname" .) }}
{{- end }}
