{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name (nameOverride wins). */}}
{{- define "rollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The object name prefix: fullnameOverride, else the release name when it already contains the
chart name, else <release>-<chart>. Truncated to 63 characters (DNS-1123 labels).
*/}}
{{- define "rollgate.fullname" -}}
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

{{/* chart label value: <name>-<version>. */}}
{{- define "rollgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (Deployment selectors are immutable). */}}
{{- define "rollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* The standard app.kubernetes.io labels on every object. */}}
{{- define "rollgate.labels" -}}
helm.sh/chart: {{ include "rollgate.chart" . }}
{{ include "rollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rollgate
{{- end }}

{{/* The controller's ServiceAccount name. */}}
{{- define "rollgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rollgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[:tag|@digest]; the tag defaults to the chart's appVersion. Argument: an image dict
and the root context, as (list $image $). */}}
{{- define "rollgate.imageRef" -}}
{{- $img := index . 0 }}
{{- $root := index . 1 }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{/* Namespace of the leader-election Lease. */}}
{{- define "rollgate.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/* Name of the leader-election Lease. */}}
{{- define "rollgate.leaderElectionID" -}}
{{- default (printf "%s-leader" (include "rollgate.fullname" .)) .Values.leaderElection.id | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The controller's rights on namespaced resources, as RBAC rules. Used by the ClusterRole (all
namespaces) or the Role in watchNamespace. Exactly what controller/ uses:
  - containerrollouts: informer (get, list, watch); status written with PUT on /status (update).
    No update/patch/delete on the main resource: promote/abort/retry are the user's (CLI) rights.
  - deployments: informer (get, list, watch) and the image patch (patch).
  - pods: informers over the validation-labelled pods and over all pods (keeping only those of
    the targets whose pod health is observed), and a list by selector (get, list, watch).
  - events (core/v1): the event recorder (create; patch for repeated events).
The rules from deployments on are "rollgate.workloadRules", shared with mode=target.
*/}}
{{- define "rollgate.namespacedRules" -}}
- apiGroups: ["rollgate.io"]
  resources: ["containerrollouts"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["rollgate.io"]
  resources: ["containerrollouts/status"]
  verbs: ["update"]
{{ include "rollgate.workloadRules" . }}
{{- end }}

{{/*
The rights on the workloads a rollout changes (no ContainerRollouts): the hub's controller needs
them in every cluster an environment lives in, so mode=target grants exactly these.
*/}}
{{- define "rollgate.workloadRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# Smoke checks: each runs as a Job built from the target Deployment's pod template, created on a
# fresh read of the namespace's opt-in, read by name, deleted once passed. No update, no list, no
# pods/log (the kubelet puts the check's last log lines in its termination message).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Cluster-scoped rights: Namespace objects, for the rollgate.io/allow-rollouts-from opt-in. */}}
{{- define "rollgate.namespaceRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- if .Values.metrics.secure }}
# --metrics-secure: who is this scraper, and may it get /metrics?
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}
{{- end }}

{{/* mode=target: the ServiceAccount the hub acts as. */}}
{{- define "rollgate.targetServiceAccountName" -}}
{{- required "target.serviceAccountName is required with mode=target" .Values.target.serviceAccountName }}
{{- end }}

{{/* Fails the render with a clear message on inconsistent values. */}}
{{- define "rollgate.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true (otherwise every replica reconciles)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled=true" }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.health.port) }}
{{- fail "metrics.port and health.port must differ" }}
{{- end }}
{{- end }}

{{/*
A map of resource quantities as the controller's name=quantity,... flags take them (sorted by
name: Go templates range over maps in key order).
*/}}
{{- define "rollgate.quantities" -}}
{{- $out := list -}}
{{- range $name, $q := . -}}
{{- $out = append $out (printf "%s=%v" $name $q) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/*
The --analysis-endpoints-file content: each endpoint's URL and the paths its CA and credentials are
mounted at (/etc/rollgate/analysis/<index>-{ca,token,basic}/...).
*/}}
{{- define "rollgate.analysisEndpointsJson" -}}
{{- $eps := list -}}
{{- range $i, $e := .Values.analysis.endpoints -}}
{{- $d := dict "url" $e.url -}}
{{- if $e.caSecret -}}
{{- $_ := set $d "caFile" (printf "/etc/rollgate/analysis/%d-ca/ca.crt" $i) -}}
{{- end -}}
{{- if $e.bearerTokenSecret -}}
{{- $_ := set $d "bearerTokenFile" (printf "/etc/rollgate/analysis/%d-token/token" $i) -}}
{{- end -}}
{{- if $e.basicAuthSecret -}}
{{- $_ := set $d "basicAuth" (dict "usernameFile" (printf "/etc/rollgate/analysis/%d-basic/username" $i) "passwordFile" (printf "/etc/rollgate/analysis/%d-basic/password" $i)) -}}
{{- end -}}
{{- $eps = append $eps $d -}}
{{- end -}}
{{- dict "endpoints" $eps | toJson -}}
{{- end -}}
