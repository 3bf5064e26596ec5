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

{{/* With store.backend=etcd every replica runs with --ha and advertises its
stable pod name under the headless service (port 7443: the pod's own). The
agents' address list: every replica, comma-separated. */}}
{{- define "fogplane.coordinator.podHost" -}}
{{- printf "%s.%s.svc" (include "fogplane.coordinator.headless" .) .Release.Namespace -}}
{{- end -}}

{{- define "fogplane.coordinator.replicaUrls" -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.coordinator.replicas) -}}
{{- $urls = append $urls (printf "https://%s-%d.%s:7443" (include "fogplane.coordinator.fullname" $) $i (include "fogplane.coordinator.podHost" $)) -}}
{{- end -}}
{{- join "," $urls -}}
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

{{/* The store: FOG_STORE and, with etcd, FOG_ETCD_ENDPOINTS and FOG_ETCD_PREFIX
(read by the coordinator and by `fog-coordinator admin create`). */}}
{{- define "fogplane.etcdEndpoints" -}}
{{- $e := .Values.store.etcd.endpoints -}}
{{- if kindIs "string" $e -}}{{ $e }}{{- else -}}{{ join "," $e }}{{- end -}}
{{- end -}}

{{- define "fogplane.storeEnv" -}}
- name: FOG_STORE
  value: {{ .Values.store.backend | quote }}
{{- if eq .Values.store.backend "etcd" }}
- name: FOG_ETCD_ENDPOINTS
  value: {{ include "fogplane.etcdEndpoints" . | quote }}
- name: FOG_ETCD_PREFIX
  value: {{ .Values.store.etcd.prefix | quote }}
{{- if .Values.store.etcd.tlsSecret }}
- name: FOG_ETCD_CA
  value: /etc/fogplane/etcd/ca.crt
- name: FOG_ETCD_CERT
  value: /etc/fogplane/etcd/tls.crt
- name: FOG_ETCD_KEY
  value: /etc/fogplane/etcd/tls.key
{{- end }}
{{- end }}
{{- end -}}

{{/* With store.etcd.tlsSecret: where the coordinator and its init container read it. */}}
{{- define "fogplane.etcdTlsMount" -}}
{{- if and (eq .Values.store.backend "etcd") .Values.store.etcd.tlsSecret }}
- name: etcd-tls
  mountPath: /etc/fogplane/etcd
  readOnly: true
{{- end }}
{{- end -}}

{{/* Refuse combinations that cannot work, with the reason. */}}
{{- define "fogplane.validate" -}}
{{- if not (has .Values.store.backend (list "redb" "etcd")) -}}
{{- fail (printf "store.backend must be redb or etcd, not %q" .Values.store.backend) -}}
{{- end -}}
{{- $replicas := int .Values.coordinator.replicas -}}
{{- if lt $replicas 1 -}}
{{- fail "coordinator.replicas must be at least 1" -}}
{{- end -}}
{{- if and (ne $replicas 1) (ne .Values.store.backend "etcd") -}}
{{- fail "coordinator.replicas must be 1 with store.backend=redb (one coordinator per store: the store file is locked); several replicas with leader election need store.backend=etcd" -}}
{{- end -}}
{{- if and (gt $replicas 1) (not (include "fogplane.caSecret" .)) -}}
{{- fail "coordinator.replicas > 1 needs the cluster CA Secret (coordinator.ca.existingSecret, or coordinator.ca.cert and coordinator.ca.key): a standby serves TLS only once it knows the CA (docs/OPERATIONS.md, \"High availability\")" -}}
{{- end -}}
{{- if eq .Values.store.backend "etcd" -}}
{{- $endpoints := splitList "," (include "fogplane.etcdEndpoints" .) | compact -}}
{{- if not $endpoints -}}
{{- fail "store.backend=etcd needs store.etcd.endpoints (etcd client URLs, e.g. http://etcd-0.etcd.db.svc:2379)" -}}
{{- end -}}
{{- $tls := .Values.store.etcd.tlsSecret -}}
{{- range $endpoints -}}
{{- if hasPrefix "https://" . -}}
{{- if not $tls -}}
{{- fail (printf "store.etcd.endpoints: %s: https:// needs store.etcd.tlsSecret (a Secret with ca.crt, tls.crt and tls.key)" .) -}}
{{- end -}}
{{- else if hasPrefix "http://" . -}}
{{- if $tls -}}
{{- fail (printf "store.etcd.endpoints: %s: store.etcd.tlsSecret needs https:// endpoints" .) -}}
{{- end -}}
{{- else -}}
{{- fail (printf "store.etcd.endpoints: %s: expected http://host:port or https://host:port" .) -}}
{{- end -}}
{{- end -}}
{{- $prefix := .Values.store.etcd.prefix | toString -}}
{{- if or (lt (len $prefix) 2) (not (hasPrefix "/" $prefix)) (not (hasSuffix "/" $prefix)) -}}
{{- fail (printf "store.etcd.prefix %q must start and end with / (e.g. /fogplane/)" $prefix) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.coordinator.ca.cert (not .Values.coordinator.ca.key) -}}
{{- fail "coordinator.ca.cert needs coordinator.ca.key (an unencrypted PKCS#8 PEM)" -}}
{{- end -}}
{{- if and .Values.gateway.enabled (not (include "fogplane.caSecret" .)) -}}
{{- fail "the gateway verifies the coordinator with the cluster CA: set coordinator.ca.existingSecret (a kubernetes.io/tls Secret) or coordinator.ca.cert and coordinator.ca.key, or gateway.enabled=false (docs/OPERATIONS.md, \"Kubernetes\")" -}}
{{- end -}}
{{- with .Values.tracing.otlpEndpoint -}}
{{- if not (or (hasPrefix "http://" .) (hasPrefix "https://" .)) -}}
{{- fail (printf "tracing.otlpEndpoint %q must be an http:// or https:// URL (OTLP/gRPC, e.g. http://otel-collector.observability.svc:4317)" .) -}}
{{- end -}}
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
