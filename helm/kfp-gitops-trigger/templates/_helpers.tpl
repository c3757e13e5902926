{{/* Names, labels and small derived values. */}}

{{- define "kfp-gitops-trigger.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kfp-gitops-trigger.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kfp-gitops-trigger.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kfp-gitops-trigger.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: kfp-gitops-trigger
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The trigger service's selector labels (the same as the kustomize manifests'). */}}
{{- define "kfp-gitops-trigger.selectorLabels" -}}
app.kubernetes.io/name: trigger-service
app.kubernetes.io/component: controller
{{- end }}

{{- define "kfp-gitops-trigger.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kfp-gitops-trigger.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kfp-gitops-trigger.secretName" -}}
{{- default (printf "%s-secrets" (include "kfp-gitops-trigger.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "kfp-gitops-trigger.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "kfp-gitops-trigger.fullname" .)) .Values.rules.existingConfigMap }}
{{- end }}

{{/*
The data of the created secrets Secret. Values given win; otherwise a key the Secret already
has is kept (lookup; empty under `helm template`); the in-cluster tokens (storage,
alertmanager, manual) are generated, since this chart configures both ends of them. The git
host secrets must be given: the git host needs the same value.
*/}}
{{- define "kfp-gitops-trigger.secretData" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "kfp-gitops-trigger.secretName" .) | default dict }}
{{- $old := get $existing "data" | default dict }}
{{- $generated := list "storage-token" "alertmanager-token" "manual-token" }}
{{- range $key, $value := .Values.secrets.values }}
{{- if $value }}
{{ $key }}: {{ $value | b64enc | quote }}
{{- else if hasKey $old $key }}
{{ $key }}: {{ index $old $key | quote }}
{{- else if has $key $generated }}
{{ $key }}: {{ randAlphaNum 40 | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The keys of the secrets Secret that exist, one per line. */}}
{{- define "kfp-gitops-trigger.secretKeys" -}}
{{- if .Values.secrets.existingSecret }}
{{- range .Values.secrets.existingSecretKeys }}
{{ . }}
{{- end }}
{{- else }}
{{- range (include "kfp-gitops-trigger.secretData" . | fromYaml | keys | sortAlpha) }}
{{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* true when the inbox lives in PostgreSQL. */}}
{{- define "kfp-gitops-trigger.usePostgres" -}}
{{- if or .Values.database.dsn .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/* TRIGGER_MODEL_SERVER from modelServer.kind. */}}
{{- define "kfp-gitops-trigger.modelServerSetting" -}}
{{- if eq .Values.modelServer.kind "ovms" }}poll{{ else if eq .Values.modelServer.kind "kserve" }}kserve{{ else }}none{{ end }}
{{- end }}

{{/* In-cluster URL of a webhook route: http://<svc>.<ns>.svc:<port><path>. */}}
{{- define "kfp-gitops-trigger.url" -}}
{{- printf "http://%s.%s.svc:%d%s" (include "kfp-gitops-trigger.fullname" .root) .root.Release.Namespace (int .root.Values.service.port) .path }}
{{- end }}

{{/* TRIGGER_KFP_TOKEN_PATH: the given file, or the projected token's. */}}
{{- define "kfp-gitops-trigger.kfpTokenPath" -}}
{{- default "/var/run/secrets/kubeflow/pipelines/token" .Values.settings.kfp.tokenPath }}
{{- end }}

{{/*
The KFP API pods' ports the NetworkPolicy admits, one per line: networkPolicy.kfp.ports, or
else the port settings.kfp.host names (443/80 by its scheme when it names none).
*/}}
{{- define "kfp-gitops-trigger.kfpPorts" -}}
{{- if .Values.networkPolicy.kfp.ports }}
{{- range .Values.networkPolicy.kfp.ports }}
{{ . }}
{{- end }}
{{- else }}
{{- $url := urlParse .Values.settings.kfp.host }}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" }}
{{- if and (not $port) (eq $url.scheme "https") }}
{{- $port = "443" }}
{{- else if not $port }}
{{- $port = "80" }}
{{- end }}
{{ $port }}
{{- end }}
{{- end }}

{{/*
A pod or container securityContext from a values map: with `openshift: true` the fixed ids
(runAsUser, runAsGroup, fsGroup, fsGroupChangePolicy) are left out, so OpenShift's
restricted-v2 SCC assigns them from the namespace's range. Call with (dict "root" . "ctx" map).
*/}}
{{- define "kfp-gitops-trigger.securityContext" -}}
{{- if .root.Values.openshift }}
{{- toYaml (omit .ctx "runAsUser" "runAsGroup" "fsGroup" "fsGroupChangePolicy") }}
{{- else }}
{{- toYaml .ctx }}
{{- end }}
{{- end }}

{{/* The worker Deployment's selector labels. */}}
{{- define "kfp-gitops-trigger.workerSelectorLabels" -}}
app.kubernetes.io/name: trigger-service
app.kubernetes.io/component: worker
{{- end }}
