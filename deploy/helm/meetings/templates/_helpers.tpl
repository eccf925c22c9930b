{{/* Names: the release name, unless it already contains the chart's name. */}}
{{- define "meetings.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Leaves room for the longest suffix ("-processor-metrics", 18 characters) in 63. */}}
{{- define "meetings.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "meetings.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "meetings.labels" -}}
helm.sh/chart: {{ include "meetings.chart" . }}
app.kubernetes.io/name: {{ include "meetings.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meetings
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: pass (dict "ctx" $ "component" "ingest"). */}}
{{- define "meetings.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meetings.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "meetings.componentLabels" -}}
{{ include "meetings.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "meetings.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "meetings.rawTopic" -}}
{{- printf "%scallbacks.raw" .Values.topics.prefix }}
{{- end }}

{{/* The processor's replica ceiling: the partition count unless a lower one is set. */}}
{{- define "meetings.processorMaxReplicas" -}}
{{- $partitions := int .Values.topics.partitions }}
{{- $max := .Values.autoscaling.processor.maxReplicas | default $partitions | int }}
{{- if gt $max $partitions }}
{{- fail (printf "autoscaling.processor.maxReplicas (%d) exceeds topics.partitions (%d): a processor beyond the partition count owns no partition" $max $partitions) }}
{{- end }}
{{- $max }}
{{- end }}

{{- define "meetings.kafkaUsesSasl" -}}
{{- if has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") }}true{{ end }}
{{- end }}

{{- define "meetings.kafkaUsesTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}

{{- define "meetings.tlsMountPath" -}}/etc/meetings/kafka-tls{{- end }}

{{/* Settings every container shares (ConfigMap data, and the topics Job's env). */}}
{{- define "meetings.commonConfig" -}}
{{- $tls := include "meetings.tlsMountPath" . }}
KAFKA_BOOTSTRAP_SERVERS: {{ .Values.kafka.bootstrapServers | quote }}
KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | quote }}
{{- if include "meetings.kafkaUsesSasl" . }}
KAFKA_SASL_MECHANISM: {{ .Values.kafka.sasl.mechanism | quote }}
{{- if and .Values.kafka.sasl.username (not .Values.secrets.keys.kafkaSaslUsername) }}
KAFKA_SASL_USERNAME: {{ .Values.kafka.sasl.username | quote }}
{{- end }}
{{- end }}
{{- if include "meetings.kafkaUsesTls" . }}
{{- with .Values.kafka.tls }}
{{- if .existingSecret }}
KAFKA_SSL_CA_FILE: {{ printf "%s/%s" $tls .caKey | quote }}
{{- if .certKey }}
KAFKA_SSL_CERT_FILE: {{ printf "%s/%s" $tls .certKey | quote }}
KAFKA_SSL_KEY_FILE: {{ printf "%s/%s" $tls .keyKey | quote }}
{{- end }}
{{- end }}
KAFKA_SSL_CHECK_HOSTNAME: {{ .checkHostname | quote }}
{{- end }}
{{- end }}
MEETINGS_TOPIC_PREFIX: {{ .Values.topics.prefix | quote }}
LOG_FORMAT: {{ .Values.logFormat | quote }}
{{- end }}

{{/* Topic settings: the Job creates (and corrects compaction) with them, the processor checks
against them. int64: a number from a values file is a float, which quote would print as 1.6e+07. */}}
{{- define "meetings.topicConfig" -}}
TOPIC_PARTITIONS: {{ .Values.topics.partitions | quote }}
TOPIC_REPLICATION_FACTOR: {{ .Values.topics.replicationFactor | quote }}
{{- if not (kindIs "invalid" .Values.topics.minInsync) }}
TOPIC_MIN_INSYNC: {{ .Values.topics.minInsync | quote }}
{{- end }}
{{- with .Values.topics.compaction }}
{{- if not (kindIs "invalid" .segmentMs) }}
CHANGELOG_SEGMENT_MS: {{ .segmentMs | int64 | quote }}
{{- end }}
{{- if not (kindIs "invalid" .segmentBytes) }}
CHANGELOG_SEGMENT_BYTES: {{ .segmentBytes | int64 | quote }}
{{- end }}
{{- if not (kindIs "invalid" .minCleanableDirtyRatio) }}
CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO: {{ .minCleanableDirtyRatio | quote }}
{{- end }}
{{- if not (kindIs "invalid" .deleteRetentionMs) }}
CHANGELOG_DELETE_RETENTION_MS: {{ .deleteRetentionMs | int64 | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* A map rendered as container env entries. */}}
{{- define "meetings.envList" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Secret-backed env entries: pass (dict "ctx" $ "vars" (dict "ENV_NAME" "valuesKeyName")). */}}
{{- define "meetings.secretEnv" -}}
{{- $secrets := .ctx.Values.secrets }}
{{- range $name, $key := .vars }}
{{- $secretKey := index $secrets.keys $key }}
{{- if $secretKey }}
{{- if not $secrets.existingSecret }}
{{- fail (printf "secrets.keys.%s is set but secrets.existingSecret names no Secret" $key) }}
{{- end }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secrets.existingSecret }}
      key: {{ $secretKey }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Kafka secrets every Kafka client needs. */}}
{{- define "meetings.kafkaSecretEnv" -}}
{{- include "meetings.secretEnv" (dict "ctx" . "vars" (dict "KAFKA_SASL_USERNAME" "kafkaSaslUsername" "KAFKA_SASL_PASSWORD" "kafkaSaslPassword" "KAFKA_SSL_KEY_PASSWORD" "kafkaSslKeyPassword")) }}
{{- end }}

{{/* Checks that cannot wait for the pods to fail. */}}
{{- define "meetings.validate" -}}
{{- if not (has .Values.kafka.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) }}
{{- fail (printf "kafka.securityProtocol %q: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if include "meetings.kafkaUsesSasl" . }}
{{- if not (has .Values.kafka.sasl.mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")) }}
{{- fail (printf "kafka.sasl.mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" .Values.kafka.sasl.mechanism) }}
{{- end }}
{{- if not .Values.secrets.keys.kafkaSaslPassword }}
{{- fail (printf "kafka.securityProtocol %s needs secrets.existingSecret and secrets.keys.kafkaSaslPassword" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if not (or .Values.kafka.sasl.username .Values.secrets.keys.kafkaSaslUsername) }}
{{- fail "SASL needs kafka.sasl.username or secrets.keys.kafkaSaslUsername" }}
{{- end }}
{{- end }}
{{- with .Values.kafka.tls }}
{{- if and .certKey (not .keyKey) }}
{{- fail "kafka.tls.certKey needs kafka.tls.keyKey (the client certificate's private key)" }}
{{- end }}
{{- end }}
{{- $ingest := .Values.ingest }}
{{- $needed := addf $ingest.preStopSeconds $ingest.drainDelaySeconds $ingest.shutdownTimeoutSeconds }}
{{- if le (float64 $ingest.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "ingest.terminationGracePeriodSeconds (%v) must exceed preStopSeconds + drainDelaySeconds + shutdownTimeoutSeconds (%v)" $ingest.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- if lt (float64 $ingest.shutdownTimeoutSeconds) (float64 $ingest.produceTimeoutSeconds) }}
{{- fail (printf "ingest.shutdownTimeoutSeconds (%v) must be at least produceTimeoutSeconds (%v): each in-flight request may wait that long for Kafka" $ingest.shutdownTimeoutSeconds $ingest.produceTimeoutSeconds) }}
{{- end }}
{{- if lt (float64 $ingest.drainDelaySeconds) (float64 $ingest.readinessProbe.periodSeconds) }}
{{- fail (printf "ingest.drainDelaySeconds (%v) must be at least the readiness probe's periodSeconds (%v), so traffic stops before the listener closes" $ingest.drainDelaySeconds $ingest.readinessProbe.periodSeconds) }}
{{- end }}
{{- $_ := include "meetings.processorMaxReplicas" . }}
{{- if and (not .Values.autoscaling.processor.enabled) (gt (int .Values.processor.replicas) (int .Values.topics.partitions)) }}
{{- fail (printf "processor.replicas (%v) exceeds topics.partitions (%v): the extra processors would own no partition" .Values.processor.replicas .Values.topics.partitions) }}
{{- end }}
{{- end }}

{{/* Volumes every pod mounts: a writable /tmp and, with TLS, the Kafka certificates. */}}
{{- define "meetings.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if and (include "meetings.kafkaUsesTls" .) .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "meetings.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and (include "meetings.kafkaUsesTls" .) .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ include "meetings.tlsMountPath" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Spread over nodes unless the values give their own constraints. */}}
{{- define "meetings.topologySpread" -}}
{{- $spec := index .ctx.Values .component }}
{{- if $spec.topologySpreadConstraints }}
{{- toYaml $spec.topologySpreadConstraints }}
{{- else }}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "meetings.selectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "meetings.selectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- end }}

{{/* Pod-level fields both Deployments share. */}}
{{- define "meetings.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Ingest's settings before values.ingest.env. */}}
{{- define "meetings.ingestBaseConfig" -}}
{{- $i := .Values.ingest }}
{{- include "meetings.commonConfig" . }}
INGEST_HOST: "0.0.0.0"
INGEST_PORT: {{ $i.port | quote }}
{{- if not (kindIs "invalid" $i.metricsPort) }}
INGEST_METRICS_PORT: {{ $i.metricsPort | quote }}
{{- end }}
INGEST_WORKERS: {{ $i.workers | quote }}
INGEST_DRAIN_DELAY_S: {{ $i.drainDelaySeconds | quote }}
INGEST_SHUTDOWN_TIMEOUT_S: {{ $i.shutdownTimeoutSeconds | quote }}
INGEST_READ_TIMEOUT_S: {{ $i.readTimeoutSeconds | quote }}
INGEST_MAX_CONNECTIONS: {{ $i.maxConnections | quote }}
INGEST_MAX_BODY_BYTES: {{ $i.maxBodyBytes | quote }}
INGEST_PRODUCE_TIMEOUT_S: {{ $i.produceTimeoutSeconds | quote }}
{{- end }}

{{/* The processor's settings before values.processor.env. */}}
{{- define "meetings.processorBaseConfig" -}}
{{- $p := .Values.processor }}
{{- include "meetings.commonConfig" . }}
{{- include "meetings.topicConfig" . | nindent 0 }}
PROCESSOR_GROUP_ID: {{ $p.groupId | quote }}
PROCESSING_GUARANTEE: {{ $p.guarantee | quote }}
PROCESSOR_CREATE_TOPICS: "false"
PROCESSOR_HTTP_HOST: "0.0.0.0"
PROCESSOR_HTTP_PORT: {{ $p.port | quote }}
{{- end }}

{{/* A component's ConfigMap data: the chart's settings, values.<component>.env on top. */}}
{{- define "meetings.componentConfig" -}}
{{- $base := include (printf "meetings.%sBaseConfig" .component) .ctx | fromYaml }}
{{- $extra := index .ctx.Values .component "env" | default dict }}
{{- range $name := list "INGEST_AUTH_TOKEN" "INGEST_JWT_SECRET" "INGEST_VIDEO_SESSIONS_SECRET" "INGEST_VIDEO_ARCHIVES_SECRET" "KAFKA_SASL_PASSWORD" "KAFKA_SSL_KEY_PASSWORD" }}
{{- if hasKey $extra $name }}
{{- fail (printf "%s is a secret: name it in secrets.keys (an existing Secret), not in %s.env" $name $.component) }}
{{- end }}
{{- end }}
{{- range $name, $value := merge (deepCopy $extra) $base }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* What the counter series picked by `.series` (a PromQL selector) grew by over `.window`,
series by series. prometheus_client creates a labelled child at its first increment, so a series
born within the window starts at what it counted already, an increase `increase()` cannot see:
such series count with their whole value. Pass (dict "series" "x{...}" "window" "10m"). */}}
{{- define "meetings.counterIncrease" -}}
(
  (increase({{ .series }}[{{ .window }}]) and {{ .series }} offset {{ .window }})
  or
  ({{ .series }} unless {{ .series }} offset {{ .window }})
)
{{- end }}

{{/* The callback routes as a PromQL regex (anchored): Vonage Meetings' /callbacks and its
sub-paths, Vonage Video's /video/sessions and /video/archives; not the probes, /metrics or
"unparsed" (requests refused before routing). */}}
{{- define "meetings.callbackRoutesRegex" -}}
/callbacks(/.+)?|/video/.+
{{- end }}
