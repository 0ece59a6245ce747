{{- define "aap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aap.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "aap.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "aap.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aap.webhookName" -}}
{{- printf "%s-webhook" (include "aap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aap.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "aap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "aap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "aap.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aap.webhookName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aap.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "aap.sidecarImage" -}}
{{- default (include "aap.image" .) .Values.sidecar.image -}}
{{- end -}}

{{- define "aap.tlsSecretName" -}}
{{- if and (eq .Values.certs.mode "provided") .Values.certs.provided.existingSecret -}}
{{- .Values.certs.provided.existingSecret -}}
{{- else -}}
{{- default (printf "%s-tls" (include "aap.webhookName" .)) .Values.certs.secretName -}}
{{- end -}}
{{- end -}}

{{- define "aap.mutatingWebhookName" -}}
{{- include "aap.webhookName" . -}}
{{- end -}}

{{- define "aap.aktoSecretName" -}}
{{- default .Values.akto.secretName .Values.akto.existingSecret -}}
{{- end -}}

{{- define "aap.excludedNamespaces" -}}
{{- $ns := list .Release.Namespace "kube-system" -}}
{{- range .Values.webhook.excludedNamespaces -}}{{- $ns = append $ns . -}}{{- end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{- define "aap.certManagerIssuerName" -}}
{{- printf "%s-ca" (include "aap.webhookName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aap.gatewayName" -}}
{{- printf "%s-gateway" (include "aap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aap.gatewaySelectorLabels" -}}
app.kubernetes.io/name: {{ include "aap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "aap.gatewayTlsSecretName" -}}
{{- default (printf "%s-tls" .Values.gateway.serviceName) .Values.gateway.tls.secretName -}}
{{- end -}}

{{/* The Akto Secret the proxies read, in namespace .ns (args: dict "root" $ "ns" NAME); nothing with existingSecret. */}}
{{- define "aap.aktoSecret" -}}
{{- $ := .root -}}
{{- if not $.Values.akto.existingSecret }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $.Values.akto.secretName }}
  namespace: {{ .ns }}
  labels:
    {{- include "aap.labels" $ | nindent 4 }}
type: Opaque
data:
  {{- if $.Values.akto.apiBaseUrl }}
  {{ $.Values.akto.baseUrlKey }}: {{ $.Values.akto.apiBaseUrl | b64enc }}
  {{- end }}
  {{- if $.Values.akto.apiToken }}
  {{ $.Values.akto.tokenKey }}: {{ $.Values.akto.apiToken | b64enc }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The policy ConfigMap the proxies mount as POLICY_FILE, in namespace .ns (args: dict "root" $ "ns" NAME). */}}
{{- define "aap.policyConfigMap" -}}
{{- $ := .root -}}
{{- $policy := $.Values.policy.inline -}}
{{- if not $policy }}{{ $policy = dict "version" 1 "extends" $.Values.policy.pack }}{{ end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Values.policy.configMapName }}
  namespace: {{ .ns }}
  labels:
    {{- include "aap.labels" $ | nindent 4 }}
data:
  policy.yaml: |
    {{- toYaml $policy | nindent 4 }}
{{- end -}}

{{/* LIMITS_REDIS_* env entries for a proxy container (sidecars get the same through the webhook's settings). */}}
{{- define "aap.limitsEnv" -}}
{{- $l := .Values.limits -}}
{{- if $l.redisUrl -}}
- name: LIMITS_REDIS_URL
  value: {{ $l.redisUrl | quote }}
- name: LIMITS_REDIS_TIMEOUT_MS
  value: {{ $l.timeoutMs | quote }}
- name: LIMITS_REDIS_KEY_PREFIX
  value: {{ $l.keyPrefix | quote }}
{{- if $l.passwordSecret.name }}
- name: LIMITS_REDIS_PASSWORD
  valueFrom: { secretKeyRef: { name: {{ $l.passwordSecret.name }}, key: {{ $l.passwordSecret.key }} } }
{{- end }}
{{- end -}}
{{- end -}}
