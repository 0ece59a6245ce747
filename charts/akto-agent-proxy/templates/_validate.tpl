{{/* Contradictory settings fail at render time with a message naming the values to fix. */}}
{{- define "aap.validate" -}}
{{- $c := .Values.certs -}}
{{- if eq $c.mode "provided" -}}
  {{- if and $c.provided.existingSecret (or $c.provided.cert $c.provided.key) -}}
    {{- fail "certs.provided: set either existingSecret or cert+key, not both" -}}
  {{- end -}}
  {{- if and (not $c.provided.existingSecret) (not (and $c.provided.cert $c.provided.key)) -}}
    {{- fail "certs.mode=provided needs certs.provided.existingSecret or both certs.provided.cert and certs.provided.key" -}}
  {{- end -}}
  {{- if not .Values.webhook.caBundle -}}
    {{- fail "certs.mode=provided needs webhook.caBundle (base64 of the PEM CA that signed the serving certificate)" -}}
  {{- end -}}
{{- else if .Values.webhook.caBundle -}}
  {{- fail (printf "webhook.caBundle is only used with certs.mode=provided; in mode %s the caBundle is managed for you" $c.mode) -}}
{{- end -}}
{{- if and .Values.akto.existingSecret .Values.akto.apiToken -}}
  {{- fail "set either akto.apiToken or akto.existingSecret, not both" -}}
{{- end -}}
{{- end -}}
