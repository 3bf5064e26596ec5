{{/* Names. */}}
{{- define "fogplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fogplane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fogplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "fogplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fogplane
{{- end -}}

{{/* Selector labels of one component: include "fogplane.selectorLabels" (list . "coordinator") */}}
{{- define "fogplane.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "fogplane.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "fogplane.image" -}}
{{- $ctx := index . 0 -}}
{{- $img := index . 1 -}}
{{- printf "%s:%s" $img.repository (default $ctx.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* The coordinator: service names, the URL clients dial, certificate names. */}}
{{- define "fogplane.coordinator.fullname" -}}
{{- printf "%s-coordinator" (include "fogplane.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fogplane.coordinator.headless" -}}
{{- printf "%s-coordinator-hl" (include "fogplane.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fogplane.coordinator.host" -}}
{{- printf "%s.%s.svc" (include "fogplane.coordinator.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "fogplane.coordinator.url" -}}
{{- printf "https://%s:%v" (include "fogplane.coordinator.host" .) .Values.coordinator.service.port -}}
{{- end -}}

{{- define "fogplane.coordinator.tlsSans" -}}
{{- $svc := include "fogplane.coordinator.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $sans := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) "localhost" "127.0.0.1" -}}
{{- concat $sans .Values.coordinator.extraTlsSans | uniq | join "," -}}
{{- end -}}

{{/* Secrets. */}}
{{- define "fogplane.caSecret" -}}
{{- if .Values.coordinator.ca.existingSecret -}}
{{- .Values.coordinator.ca.existingSecret -}}
{{- else if .Values.coordinator.ca.cert -}}
{{- printf "%s-ca" (include "fogplane.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "fogplane.adminSecret" -}}
{{- default (printf "%s-admin" (include "fogplane.fullname" .)) .Values.coordinator.admin.existingSecret -}}
{{- end -}}

{{- define "fogplane.joinTokenSecret" -}}
{{- default (printf "%s-join-tokens" (include "fogplane.fullname" .)) .Values.agent.joinTokens.existingSecret -}}
{{- end -}}

{{/* Refuse combinations that cannot work, with the reason. */}}
{{- define "fogplane.validate" -}}
{{- if ne (int .Values.coordinator.replicas) 1 -}}
{{- fail "coordinator.replicas must be 1: one coordinator owns the embedded store (HA on etcd is not built yet)" -}}
{{- end -}}
{{- if and .Values.coordinator.ca.cert (not .Values.coordinator.ca.key) -}}
{{- fail "coordinator.ca.cert needs coordinator.ca.key (an unencrypted PKCS#8 PEM)" -}}
{{- end -}}
{{- if and .Values.gateway.enabled (not (include "fogplane.caSecret" .)) -}}
{{- fail "the gateway verifies the coordinator with the cluster CA: set coordinator.ca.existingSecret (a kubernetes.io/tls Secret) or coordinator.ca.cert and coordinator.ca.key, or gateway.enabled=false (docs/OPERATIONS.md, \"Kubernetes\")" -}}
{{- end -}}
{{- if and .Values.tracing.otlpEndpoint (not (hasPrefix "http://" .Values.tracing.otlpEndpoint)) -}}
{{- fail "tracing.otlpEndpoint must be an http:// URL (OTLP/gRPC without TLS, e.g. http://otel-collector.observability.svc:4317): fog-coordinator and fog-agent refuse https:// and exit" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" -}}
{{- end -}}
{{- end -}}

{{- define "fogplane.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fogplane.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}
