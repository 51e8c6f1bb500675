{{/* Chart name. */}}
{{- define "riverlog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "riverlog.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart label. */}}
{{- define "riverlog.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels. */}}
{{- define "riverlog.labels" -}}
{{ include "riverlog.commonLabels" . }}
app.kubernetes.io/component: event-log
{{- end }}

{{/* Labels of the metrics Service: component `metrics`, which the ServiceMonitor selects. */}}
{{- define "riverlog.metricsLabels" -}}
{{ include "riverlog.commonLabels" . }}
app.kubernetes.io/component: metrics
{{- end }}

{{/* Labels shared by every resource, component aside. */}}
{{- define "riverlog.commonLabels" -}}
helm.sh/chart: {{ include "riverlog.chart" . }}
{{ include "riverlog.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: riverlog
{{- end }}

{{/* Selector labels. */}}
{{- define "riverlog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "riverlog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "riverlog.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "riverlog.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding the PostgreSQL URL. */}}
{{- define "riverlog.databaseSecretName" -}}
{{- if .Values.storage.postgres.existingSecret }}
{{- .Values.storage.postgres.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "riverlog.fullname" .) }}
{{- end }}
{{- end }}

{{/* Pod grace period: above the server's shutdown grace. */}}
{{- define "riverlog.terminationGracePeriodSeconds" -}}
{{- $grace := int .Values.config.shutdownGraceSeconds }}
{{- $term := int .Values.terminationGracePeriodSeconds }}
{{- if eq $term 0 }}
{{- add $grace 15 }}
{{- else if le $term $grace }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.shutdownGraceSeconds (%d)" $term $grace) }}
{{- else }}
{{- $term }}
{{- end }}
{{- end }}

{{/* Whether the server checks tokens, as far as the chart can tell: a config.toml
from auth.existingSecret may hold tokens the chart cannot see. "true" or "". */}}
{{- define "riverlog.mayCheckTokens" -}}
{{- if or .Values.auth.tokens .Values.auth.existingSecret }}true{{ end }}
{{- end }}

{{/* Whether /metrics has its own port (metrics_listen): "true" or "".
`auto` turns it on when the server may check tokens and no bearer token is
given for the ServiceMonitor, so that scraping works out of the box. */}}
{{- define "riverlog.metricsSeparatePort" -}}
{{- $v := .Values.metrics.separatePort }}
{{- if eq (toString $v) "auto" }}
{{- if and (include "riverlog.mayCheckTokens" .) (not .Values.serviceMonitor.bearerTokenSecret.name) }}true{{ end }}
{{- else if $v }}true{{ end }}
{{- end }}

{{/* The Service the ServiceMonitor scrapes: ClusterIP only, never the main
Service (which may be a LoadBalancer) nor the headless one (which would
scrape each pod twice). Present with the separate port or the ServiceMonitor. */}}
{{- define "riverlog.metricsServiceName" -}}
{{- printf "%s-metrics" (include "riverlog.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Checks the schema cannot express across keys. */}}
{{- define "riverlog.validate" -}}
{{- if and (eq .Values.storage.mode "postgres") (not .Values.storage.postgres.existingSecret) (not .Values.storage.postgres.url) }}
{{- fail "storage.mode=postgres needs storage.postgres.existingSecret (recommended) or storage.postgres.url" }}
{{- end }}
{{- if include "riverlog.metricsSeparatePort" . }}
{{- $m := int .Values.ports.metrics }}
{{- if or (eq $m (int .Values.ports.grpc)) (eq $m (int .Values.ports.http)) }}
{{- fail (printf "ports.metrics (%d) must differ from ports.grpc and ports.http: /metrics has a listener of its own when metrics.separatePort is on" $m) }}
{{- end }}
{{- else if and .Values.serviceMonitor.enabled .Values.auth.tokens (not .Values.auth.existingSecret) (not .Values.serviceMonitor.bearerTokenSecret.name) }}
{{- fail "serviceMonitor.enabled with auth.tokens and metrics.separatePort=false: /metrics on the HTTP port then needs a token with `metrics: true`, so the ServiceMonitor would get 401. Set serviceMonitor.bearerTokenSecret.name (and .key) to a Secret holding such a token, or metrics.separatePort to true or auto (a port of its own, no token)" }}
{{- end }}
{{- end }}

{{/* The pod template, shared by the StatefulSet (sqlite) and the Deployment (postgres). */}}
{{- define "riverlog.podTemplate" -}}
metadata:
  labels:
    {{- include "riverlog.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- if not .Values.auth.existingSecret }}
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "riverlog.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automount }}
  terminationGracePeriodSeconds: {{ include "riverlog.terminationGracePeriodSeconds" . }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: riverlog
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["/usr/local/bin/riverlog", "serve"]
      args: ["--config", "/etc/riverlog/config.toml"]
      env:
        - name: RIVERLOG_LISTEN
          value: "0.0.0.0:{{ .Values.ports.grpc }}"
        - name: RIVERLOG_HTTP_LISTEN
          value: "0.0.0.0:{{ .Values.ports.http }}"
        {{- if include "riverlog.metricsSeparatePort" . }}
        - name: RIVERLOG_METRICS_LISTEN
          value: "0.0.0.0:{{ .Values.ports.metrics }}"
        {{- end }}
        - name: RIVERLOG_SHUTDOWN_GRACE
          value: "{{ .Values.config.shutdownGraceSeconds }}s"
        {{- if eq .Values.storage.mode "postgres" }}
        - name: RIVERLOG_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "riverlog.databaseSecretName" . }}
              key: {{ .Values.storage.postgres.existingSecretKey }}
        {{- else }}
        - name: RIVERLOG_DATABASE_URL
          value: "sqlite:///data/riverlog.db"
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: grpc
          containerPort: {{ .Values.ports.grpc }}
          protocol: TCP
        - name: http
          containerPort: {{ .Values.ports.http }}
          protocol: TCP
        {{- if include "riverlog.metricsSeparatePort" . }}
        - name: metrics
          containerPort: {{ .Values.ports.metrics }}
          protocol: TCP
        {{- end }}
      {{- /*
        Liveness asks whether the process is alive, readiness whether storage is.
        A restart cannot bring a database back: had liveness followed storage, a
        database outage longer than the liveness budget would restart every
        replica at once and slow the recovery down.

        livenessProbe: service `liveness` (riverlog::server::LIVENESS_SERVICE) is
          SERVING while the process answers gRPC, whatever storage does.
        readinessProbe: service `riverlog.v1.EventLog` is NOT_SERVING while
          storage is unreachable (and during shutdown): the pod leaves the
          Service, and comes back when storage does, without a restart.
        startupProbe: service `liveness` too. The gRPC port only opens once
          storage is open: in postgres mode the server first retries the
          database (storage.postgres.connectAttempts attempts of up to 2 s,
          with pauses growing to 6.4 s: about a minute for the default 10),
          migrates, and only then binds. So an answer on the port already means
          start-up is done; a database that drops out after that must not fail
          start-up (a restart cannot help) any more than liveness, and
          readiness holds traffic back meanwhile. A database still away after
          the last attempt makes the server exit non-zero by itself, and the
          kubelet restarts it with back-off; keep periodSeconds x
          failureThreshold (120 s by default) above that retry window, so the
          probe does not cut the retries short.
      */}}
      startupProbe:
        grpc:
          port: {{ .Values.ports.grpc }}
          service: liveness
        periodSeconds: {{ .Values.probes.startup.periodSeconds }}
        failureThreshold: {{ .Values.probes.startup.failureThreshold }}
      livenessProbe:
        grpc:
          port: {{ .Values.ports.grpc }}
          service: liveness
        periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
        failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
        timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
      readinessProbe:
        grpc:
          port: {{ .Values.ports.grpc }}
          service: riverlog.v1.EventLog
        periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
        failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
        timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/riverlog
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if eq .Values.storage.mode "sqlite" }}
        - name: data
          mountPath: /data
        {{- end }}
  volumes:
    - name: config
      {{- if .Values.auth.existingSecret }}
      secret:
        secretName: {{ .Values.auth.existingSecret }}
        items:
          - key: {{ .Values.auth.existingSecretKey }}
            path: config.toml
      {{- else }}
      configMap:
        name: {{ include "riverlog.fullname" . }}
      {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.tmpSizeLimit }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Labels of the `helm test` Pod: a name of its own (`<name>-test`), so that
no selector of the chart (Services, PDB, NetworkPolicy) takes it for a server. */}}
{{- define "riverlog.testLabels" -}}
helm.sh/chart: {{ include "riverlog.chart" . }}
app.kubernetes.io/name: {{ printf "%s-test" (include "riverlog.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: riverlog
app.kubernetes.io/component: helm-test
{{- end }}

{{/* Whether `helm test` can publish and read: without tokens, or with
tests.tokenSecret. "true" or "". */}}
{{- define "riverlog.testRoundTrip" -}}
{{- if or .Values.tests.tokenSecret.name (not (include "riverlog.mayCheckTokens" .)) }}true{{ end }}
{{- end }}

{{/* Resources of the `helm test` containers: two short-lived clients. */}}
{{- define "riverlog.testResources" -}}
requests:
  cpu: 10m
  memory: 16Mi
limits:
  memory: 64Mi
{{- end }}
