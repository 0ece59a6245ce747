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
