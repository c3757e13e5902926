{{/*
The trigger service's container env, volume mounts and pod volumes, shared by the serve
Deployment and the worker Deployment (the same settings, secrets, rules and volumes).
Call each with the root context.
*/}}
{{- define "kfp-gitops-trigger.env" -}}
{{- $secretKeys := include "kfp-gitops-trigger.secretKeys" . | trim }}
- name: TRIGGER_HOST
  value: "0.0.0.0"
- name: TRIGGER_PORT
  value: {{ .Values.service.port | quote }}
- name: TRIGGER_LOG_JSON
  value: {{ .Values.settings.logJson | quote }}
- name: TRIGGER_LOG_LEVEL
  value: {{ .Values.settings.logLevel | quote }}
- name: TRIGGER_MAX_BODY_BYTES
  value: {{ .Values.settings.maxBodyBytes | int64 | quote }}
- name: TRIGGER_ALLOW_UNAUTHENTICATED
  value: {{ .Values.settings.allowUnauthenticated | quote }}
{{- if .Values.database.existingSecret }}
- name: TRIGGER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
{{- else if .Values.database.dsn }}
- name: TRIGGER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "kfp-gitops-trigger.fullname" . }}-db
      key: dsn
{{- else }}
- name: TRIGGER_DATABASE_URL
  value: sqlite:////var/lib/trigger/trigger.db
{{- end }}
- name: TRIGGER_RULES_PATH
  value: /etc/trigger/rules/rules.yaml
- name: TRIGGER_GIT_CACHE_DIR
  value: /var/lib/trigger/git-cache
- name: TRIGGER_COMPILE_TIMEOUT_SECONDS
  value: {{ .Values.settings.git.compileTimeoutSeconds | quote }}
{{- if .Values.openshift }}
# Compile Jobs without a fixed user id: restricted-v2 assigns one from the project's range.
- name: TRIGGER_COMPILE_RUN_AS_USER
  value: ""
{{- end }}
- name: TRIGGER_WORKER_ENABLED
  value: {{ .Values.settings.worker.enabled | quote }}
- name: TRIGGER_WORKER_POLL_SECONDS
  value: {{ .Values.settings.worker.pollSeconds | quote }}
- name: TRIGGER_WORKER_BATCH
  value: {{ .Values.settings.worker.batch | quote }}
- name: TRIGGER_CLAIM_LEASE_SECONDS
  value: {{ .Values.settings.worker.claimLeaseSeconds | quote }}
- name: TRIGGER_MAX_ATTEMPTS
  value: {{ .Values.settings.worker.maxAttempts | quote }}
- name: TRIGGER_RETRY_BASE_SECONDS
  value: {{ .Values.settings.worker.retryBaseSeconds | quote }}
- name: TRIGGER_RETRY_MAX_SECONDS
  value: {{ .Values.settings.worker.retryMaxSeconds | quote }}
- name: TRIGGER_BACKEND
  value: {{ .Values.settings.backend | quote }}
- name: TRIGGER_KFP_HOST
  value: {{ .Values.settings.kfp.host | quote }}
- name: TRIGGER_KFP_TOKEN_PATH
  value: {{ include "kfp-gitops-trigger.kfpTokenPath" . }}
- name: TRIGGER_KFP_NAMESPACE
  {{- if .Values.settings.kfp.namespace }}
  value: {{ .Values.settings.kfp.namespace | quote }}
  {{- else }}
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
  {{- end }}
{{- with .Values.settings.kfp.caFile }}
- name: TRIGGER_KFP_CA_FILE
  value: {{ . | quote }}
{{- end }}
- name: TRIGGER_KFP_VERIFY_TLS
  value: {{ .Values.settings.kfp.verifyTls | quote }}
{{- with .Values.settings.kfp.uiUrl }}
- name: TRIGGER_KFP_UI_URL
  value: {{ . | quote }}
{{- end }}
- name: TRIGGER_KFP_POLL_SECONDS
  value: {{ .Values.settings.kfp.pollSeconds | quote }}
{{- with .Values.settings.s3Endpoint }}
- name: TRIGGER_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
# The models PVC, read-only: runs are linked to the version they published.
- name: TRIGGER_MODELS_ROOT
  value: {{ .Values.models.root | quote }}
- name: TRIGGER_MODEL_SERVER
  value: {{ include "kfp-gitops-trigger.modelServerSetting" . }}
{{- if eq .Values.modelServer.kind "kserve" }}
- name: TRIGGER_KSERVE_INFERENCESERVICE
  value: {{ .Values.models.name | quote }}
- name: TRIGGER_KSERVE_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}
# One file per key the Secret has (or secrets.existingSecretKeys names).
{{- range splitList "\n" $secretKeys }}
{{- if . }}
- name: TRIGGER_{{ . | upper | replace "-" "_" }}_FILE
  value: /etc/trigger/secrets/{{ . }}
{{- end }}
{{- end }}
{{- with .Values.settings.extraEnv }}
{{/* At column 0 like the entries above: the caller indents the whole list. */}}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kfp-gitops-trigger.volumeMounts" -}}
- name: data
  mountPath: /var/lib/trigger
- name: tmp
  mountPath: /tmp
- name: rules
  mountPath: /etc/trigger/rules
  readOnly: true
- name: secrets
  mountPath: /etc/trigger/secrets
  readOnly: true
{{- if not .Values.settings.kfp.tokenPath }}
- name: kfp-token
  mountPath: /var/run/secrets/kubeflow/pipelines
  readOnly: true
{{- end }}
- name: models
  mountPath: {{ .Values.models.root | quote }}
  readOnly: {{ not .Values.models.serviceReadWrite }}
{{- end }}

{{- define "kfp-gitops-trigger.volumes" -}}
{{- $postgres := include "kfp-gitops-trigger.usePostgres" . }}
{{- $secretKeys := include "kfp-gitops-trigger.secretKeys" . | trim }}
- name: data
  {{- if $postgres }}
  emptyDir:
    sizeLimit: {{ .Values.persistence.size }}
  {{- else }}
  persistentVolumeClaim:
    claimName: {{ include "kfp-gitops-trigger.fullname" . }}-data
  {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 512Mi
- name: rules
  configMap:
    name: {{ include "kfp-gitops-trigger.rulesConfigMap" . }}
- name: secrets
  secret:
    secretName: {{ include "kfp-gitops-trigger.secretName" . }}
    defaultMode: 0440
    {{- if $secretKeys }}
    # One item per TRIGGER_*_FILE: a key missing from the Secret stops the pod at volume
    # set-up with an event naming the key.
    items:
      {{- range splitList "\n" $secretKeys }}
      {{- if . }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
      {{- end }}
    {{- end }}
{{- if not .Values.settings.kfp.tokenPath }}
- name: kfp-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          audience: {{ .Values.settings.kfp.tokenAudience | quote }}
          expirationSeconds: {{ .Values.settings.kfp.tokenExpirationSeconds | int }}
          path: token
{{- end }}
# Read-only unless models.serviceReadWrite (promotion renames version folders): the pipeline's
# publish step writes it (ReadWriteMany, so both can mount it).
- name: models
  persistentVolumeClaim:
    claimName: {{ .Values.models.pvc.name }}
    readOnly: {{ not .Values.models.serviceReadWrite }}
{{- end }}
