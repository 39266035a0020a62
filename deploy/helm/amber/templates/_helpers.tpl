{{/* Names, labels and the amber container shared by both modes. */}}

{{- define "amber.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "amber.fullname" -}}
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

{{/* The headless Service that gives each gateway pod a stable DNS name. */}}
{{- define "amber.headlessName" -}}
{{- printf "%s-headless" (include "amber.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "amber.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "amber.selectorLabels" -}}
app.kubernetes.io/name: {{ include "amber.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "amber.labels" -}}
helm.sh/chart: {{ include "amber.chart" . }}
{{ include "amber.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "amber.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "amber.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "amber.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Checks every mode needs; fails the render with what to set. */}}
{{- define "amber.validate" -}}
{{- if not .Values.upstream }}
{{- fail "set upstream: the Kafka cluster's bootstrap brokers, HOST:PORT[,HOST:PORT...]" }}
{{- end }}
{{- if and (eq .Values.mode "sidecar") .Values.sidecar.data.persistentVolumeClaim.claimName (gt (int .Values.sidecar.replicas) 1) }}
{{- fail "sidecar.data.persistentVolumeClaim with sidecar.replicas > 1: one ReadWriteOnce claim cannot hold several journals; use replicas: 1 or emptyDir" }}
{{- end }}
{{- end }}

{{/* The host clients are told the brokers are at, in gateway mode. */}}
{{- define "amber.advertiseHost" -}}
{{- if .Values.gateway.advertiseHost }}
{{- .Values.gateway.advertiseHost }}
{{- else if eq (int .Values.gateway.replicas) 1 }}
{{- printf "%s.%s.svc.%s" (include "amber.fullname" .) .Release.Namespace .Values.gateway.clusterDomain }}
{{- else }}
{{- printf "$(POD_NAME).%s.%s.svc.%s" (include "amber.headlessName" .) .Release.Namespace .Values.gateway.clusterDomain }}
{{- end }}
{{- end }}

{{- define "amber.listenHost" -}}
{{- if eq .Values.mode "sidecar" }}127.0.0.1{{ else }}{{ .Values.gateway.listenHost }}{{ end }}
{{- end }}

{{- define "amber.hostPort" -}}
{{- $host := index . 0 }}{{ $port := index . 1 }}
{{- if contains ":" $host }}{{ printf "[%s]:%v" $host $port }}{{ else }}{{ printf "%s:%v" $host $port }}{{ end }}
{{- end }}

{{- define "amber.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (mul 2 (int .Values.proxy.drainTimeoutSeconds)) 30 }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
The amber container, for both modes. In gateway mode it listens on every
interface and advertises the Service (or pod) name; in sidecar mode it
listens on loopback only, so nothing outside the pod reaches the proxy.
*/}}
{{- define "amber.container" -}}
{{- $p := .Values.proxy -}}
name: amber
image: {{ include "amber.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args:
  - proxy
  - --upstream={{ .Values.upstream }}
  - --listen={{ include "amber.hostPort" (list (include "amber.listenHost" .) $p.port) }}
  - --broker-port-base={{ add (int $p.port) 1 }}
  {{- if eq .Values.mode "gateway" }}
  - --advertise-host={{ include "amber.advertiseHost" . }}
  {{- end }}
  - --data=/var/lib/amber
  {{- with .Values.archive.url }}
  - --archive={{ . }}
  {{- end }}
  {{- if .Values.archive.encryptionKeySecret }}
  - --encryption-key-file=/etc/amber/encryption/key
  {{- end }}
  - --durability={{ $p.durability }}
  - --flush-interval={{ $p.flushInterval }}
  - --max-backlog-bytes={{ int64 $p.maxBacklogBytes }}
  - --drain-timeout={{ $p.drainTimeoutSeconds }}s
  - --backfill-interval={{ $p.backfillInterval }}
  - --admin-listen={{ include "amber.hostPort" (list (ternary "::" "0.0.0.0" (contains ":" (include "amber.listenHost" .))) $p.adminPort) }}
  - --log-level={{ $p.logLevel }}
  - --log-format={{ $p.logFormat }}
  {{- range $p.extraArgs }}
  - {{ . | quote }}
  {{- end }}
env:
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  - name: GOMEMLIMIT
    valueFrom:
      resourceFieldRef:
        resource: limits.memory
  {{- with .Values.archive.region }}
  - name: AWS_REGION
    value: {{ . | quote }}
  {{- end }}
  {{- with .Values.archive.endpoint }}
  - name: AWS_ENDPOINT_URL
    value: {{ . | quote }}
  {{- end }}
  {{- with .Values.archive.credentialsSecret }}
  - name: AWS_ACCESS_KEY_ID
    valueFrom:
      secretKeyRef:
        name: {{ . }}
        key: AWS_ACCESS_KEY_ID
  - name: AWS_SECRET_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ . }}
        key: AWS_SECRET_ACCESS_KEY
  - name: AWS_SESSION_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ . }}
        key: AWS_SESSION_TOKEN
        optional: true
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
ports:
  {{- if eq .Values.mode "gateway" }}
  - name: kafka
    containerPort: {{ $p.port }}
    protocol: TCP
  {{- range $i := until (int $p.brokerPorts) }}
  - name: broker-{{ $i }}
    containerPort: {{ add (int $p.port) 1 $i }}
    protocol: TCP
  {{- end }}
  {{- end }}
  - name: admin
    containerPort: {{ $p.adminPort }}
    protocol: TCP
startupProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
{{- if .Values.probes.readiness.enabled }}
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
  # /readyz asks the cluster; give it its 3 s and a margin.
  timeoutSeconds: 5
{{- end }}
resources:
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.resources }}
  {{- toYaml .Values.sidecar.resources | nindent 2 }}
  {{- else }}
  {{- toYaml .Values.resources | nindent 2 }}
  {{- end }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: data
    mountPath: /var/lib/amber
  {{- if .Values.archive.encryptionKeySecret }}
  - name: encryption-key
    mountPath: /etc/amber/encryption
    readOnly: true
  {{- end }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Pod-level settings shared by both modes. */}}
{{- define "amber.podSpecCommon" -}}
serviceAccountName: {{ include "amber.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
terminationGracePeriodSeconds: {{ include "amber.terminationGracePeriodSeconds" . }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Volumes besides the journal's. */}}
{{- define "amber.extraPodVolumes" -}}
{{- if .Values.archive.encryptionKeySecret }}
- name: encryption-key
  secret:
    secretName: {{ .Values.archive.encryptionKeySecret }}
    defaultMode: 0440
    items:
      - key: key
        path: key
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
