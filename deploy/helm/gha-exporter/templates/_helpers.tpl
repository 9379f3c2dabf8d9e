{{/* The release's name for its objects, at most 63 characters. */}}
{{- define "gha-exporter.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; "component" is receiver, worker or redis. */}}
{{- define "gha-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: gha-exporter
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "gha-exporter.selector" . }}
{{- end -}}

{{- define "gha-exporter.selector" -}}
app.kubernetes.io/name: gha-exporter
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gha-exporter.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The webhook secret's Secret: the user's, or the one the chart creates. */}}
{{- define "gha-exporter.webhookSecret" -}}
{{- if .Values.webhook.existingSecret -}}
{{ .Values.webhook.existingSecret }}
{{- else if .Values.webhook.secret -}}
{{ include "gha-exporter.fullname" . }}-webhook
{{- else -}}
{{ fail "set webhook.existingSecret (a Secret with the key webhook-secrets) or webhook.secret: the receiver refuses to start without the webhook secret" }}
{{- end -}}
{{- end -}}

{{- define "gha-exporter.redisUrl" -}}
{{- if .Values.redis.url -}}
{{ .Values.redis.url }}
{{- else if .Values.redis.bundled.enabled -}}
redis://{{ include "gha-exporter.fullname" . }}-redis:6379/0
{{- else if .Values.redis.sentinels -}}
redis://redis/0
{{- else -}}
{{ fail "set redis.url or redis.sentinels, or turn on redis.bundled.enabled" }}
{{- end -}}
{{- end -}}

{{/* Volumes and mounts of the Secrets a process reads as files. */}}
{{- define "gha-exporter.secretMounts" -}}
{{- if .root.Values.redis.existingSecret }}
- name: redis-password
  mountPath: /run/secrets/redis
  readOnly: true
{{- end }}
{{- if .root.Values.redis.tls.existingSecret }}
- name: redis-tls
  mountPath: /run/secrets/redis-tls
  readOnly: true
{{- end }}
{{- if eq .component "receiver" }}
- name: webhook-secret
  mountPath: /run/secrets/gha-exporter
  readOnly: true
{{- end }}
{{- if and (eq .component "worker") .root.Values.github.existingSecret }}
- name: github
  mountPath: /run/secrets/github
  readOnly: true
{{- end }}
{{- if and (eq .component "worker") .root.Values.traces.existingSecret }}
- name: traces
  mountPath: /run/secrets/traces
  readOnly: true
{{- end }}
{{- end -}}

{{- define "gha-exporter.secretVolumes" -}}
{{- if .root.Values.redis.existingSecret }}
- name: redis-password
  secret:
    secretName: {{ .root.Values.redis.existingSecret }}
{{- end }}
{{- if .root.Values.redis.tls.existingSecret }}
- name: redis-tls
  secret:
    secretName: {{ .root.Values.redis.tls.existingSecret }}
{{- end }}
{{- if eq .component "receiver" }}
- name: webhook-secret
  secret:
    secretName: {{ include "gha-exporter.webhookSecret" .root }}
{{- end }}
{{- if and (eq .component "worker") .root.Values.github.existingSecret }}
- name: github
  secret:
    secretName: {{ .root.Values.github.existingSecret }}
{{- end }}
{{- if and (eq .component "worker") .root.Values.traces.existingSecret }}
- name: traces
  secret:
    secretName: {{ .root.Values.traces.existingSecret }}
{{- end }}
{{- end -}}

{{/* What a process is told about the files above. */}}
{{- define "gha-exporter.secretEnv" -}}
{{- if .root.Values.redis.existingSecret }}
- name: GHA_EXPORTER_REDIS__PASSWORD_FILE
  value: /run/secrets/redis/redis-password
{{- end }}
{{- if .root.Values.redis.tls.existingSecret }}
- name: GHA_EXPORTER_REDIS__TLS_CA_FILE
  value: /run/secrets/redis-tls/ca.crt
{{- if .root.Values.redis.tls.clientCertificate }}
- name: GHA_EXPORTER_REDIS__TLS_CERT_FILE
  value: /run/secrets/redis-tls/tls.crt
- name: GHA_EXPORTER_REDIS__TLS_KEY_FILE
  value: /run/secrets/redis-tls/tls.key
{{- end }}
{{- end }}
{{- if eq .component "receiver" }}
- name: GHA_EXPORTER_WEBHOOK__SECRETS_FILE
  value: /run/secrets/gha-exporter/webhook-secrets
{{- end }}
{{- if and (eq .component "worker") .root.Values.github.existingSecret }}
{{- if .root.Values.github.appId }}
- name: GHA_EXPORTER_GITHUB__APP_PRIVATE_KEY_FILE
  value: /run/secrets/github/app-private-key
{{- else }}
- name: GHA_EXPORTER_GITHUB__TOKEN_FILE
  value: /run/secrets/github/token
{{- end }}
{{- end }}
{{- if and (eq .component "worker") .root.Values.traces.existingSecret }}
- name: GHA_EXPORTER_TRACES__HEADERS_FILE
  value: /run/secrets/traces/headers
{{- end }}
{{- end -}}
