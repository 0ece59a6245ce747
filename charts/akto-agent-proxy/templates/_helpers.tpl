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

{{/* Repository of the sidecar image (tag and digest removed): any tag of it may run as akto-proxy. */}}
{{- define "aap.sidecarImageRepository" -}}
{{- regexReplaceAll "(@.*|:[^/:]*)$" (include "aap.sidecarImage" .) "" -}}
{{- end -}}

{{/* enforcement.exemptions.podSelector in kubectl syntax, for the webhook's settings (empty = none). */}}
{{- define "aap.exemptSelectorText" -}}
{{- $sel := .Values.enforcement.exemptions.podSelector -}}
{{- $terms := list -}}
{{- range $k, $v := $sel.matchLabels }}{{ $terms = append $terms (printf "%s=%s" $k $v) }}{{ end -}}
{{- range $sel.matchExpressions -}}
  {{- if eq .operator "In" }}{{ $terms = append $terms (printf "%s in (%s)" .key (join "," .values)) }}
  {{- else if eq .operator "NotIn" }}{{ $terms = append $terms (printf "%s notin (%s)" .key (join "," .values)) }}
  {{- else if eq .operator "Exists" }}{{ $terms = append $terms .key }}
  {{- else }}{{ $terms = append $terms (printf "!%s" .key) }}{{ end -}}
{{- end -}}
{{- join "," $terms -}}
{{- end -}}

{{/*
  The same exemptions as one CEL condition over the pod (empty = nobody is exempt). Values are restricted by
  values.schema.json to label and DNS characters, so they are safe inside CEL string literals.
*/}}
{{- define "aap.exemptionCel" -}}
{{- $e := .Values.enforcement.exemptions -}}
{{- $any := list -}}
{{- with $e.serviceAccounts -}}
  {{- $any = append $any (printf "(request.namespace + '/' + (has(object.spec.serviceAccountName) && object.spec.serviceAccountName != '' ? object.spec.serviceAccountName : 'default')) in %s" (toJson .)) -}}
{{- end -}}
{{- $labels := "object.metadata.labels" -}}
{{- $all := list -}}
{{- range $k, $v := $e.podSelector.matchLabels -}}
  {{- $all = append $all (printf "(has(%s) && '%s' in %s && %s['%s'] == '%s')" $labels $k $labels $labels $k $v) -}}
{{- end -}}
{{- range $e.podSelector.matchExpressions -}}
  {{- $has := printf "(has(%s) && '%s' in %s)" $labels .key $labels -}}
  {{- if eq .operator "In" }}{{ $all = append $all (printf "(%s && %s['%s'] in %s)" $has $labels .key (toJson .values)) }}
  {{- else if eq .operator "NotIn" }}{{ $all = append $all (printf "(!%s || !(%s['%s'] in %s))" $has $labels .key (toJson .values)) }}
  {{- else if eq .operator "Exists" }}{{ $all = append $all $has }}
  {{- else }}{{ $all = append $all (printf "!%s" $has) }}{{ end -}}
{{- end -}}
{{- with $all }}{{ $any = append $any (printf "(%s)" (join " && " .)) }}{{ end -}}
{{- join " || " $any -}}
{{- end -}}

{{/* The policy ConfigMap name when sidecars mount it (mountConfigMap true, or null with agentNamespaces), else empty. */}}
{{- define "aap.policyConfigMapMounted" -}}
{{- if or .Values.policy.mountConfigMap (and (kindIs "invalid" .Values.policy.mountConfigMap) .Values.agentNamespaces) -}}
{{- .Values.policy.configMapName -}}
{{- end -}}
{{- end -}}

{{/* The Secret the sidecars read ALERT_WEBHOOK_URL from; empty = no alerts. */}}
{{- define "aap.alertsSecretName" -}}
{{- if .Values.alerts.existingSecret -}}
{{- .Values.alerts.existingSecret -}}
{{- else if .Values.alerts.webhookUrl -}}
{{- .Values.alerts.secretName -}}
{{- end -}}
{{- end -}}

{{/* CLASSIFIER_URL of the sidecars: classifier.url, else the chart's classifier Service when enabled, else empty. */}}
{{- define "aap.classifierUrl" -}}
{{- if .Values.classifier.url -}}
{{- .Values.classifier.url -}}
{{- else if .Values.classifier.enabled -}}
{{- printf "http://%s.%s.svc:%v" (printf "%s-classifier" (include "aap.fullname" .) | trunc 63 | trimSuffix "-") .Release.Namespace .Values.classifier.port -}}
{{- end -}}
{{- end -}}

{{/* The alerts Secret in namespace .ns (args: dict "root" $ "ns" NAME), when the chart owns it. */}}
{{- define "aap.alertsSecret" -}}
{{- $ := .root -}}
{{- if and $.Values.alerts.webhookUrl (not $.Values.alerts.existingSecret) }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $.Values.alerts.secretName }}
  namespace: {{ .ns }}
  labels:
    {{- include "aap.labels" $ | nindent 4 }}
type: Opaque
data:
  {{ $.Values.alerts.urlKey }}: {{ $.Values.alerts.webhookUrl | b64enc }}
  {{- if $.Values.alerts.authorization }}
  {{ $.Values.alerts.authorizationKey }}: {{ $.Values.alerts.authorization | b64enc }}
  {{- end }}
{{- end }}
{{- end -}}
