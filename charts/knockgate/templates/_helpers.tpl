{{/* Names: "<release>-knockgate" unless the release name already holds the chart name. */}}
{{- define "knockgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "knockgate.fullname" -}}
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

{{/* The name of one role's objects: (list . "sniffer"). */}}
{{- define "knockgate.roleName" -}}
{{- $ctx := index . 0 }}
{{- printf "%s-%s" (include "knockgate.fullname" $ctx | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "knockgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "knockgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: knockgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one role's objects: (list . "agent"). */}}
{{- define "knockgate.roleLabels" -}}
{{ include "knockgate.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* The selector of one role's pods: (list . "agent"). */}}
{{- define "knockgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "knockgate.name" (index . 0) }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "knockgate.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "knockgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Whether a role's objects are rendered: (list . "uninstall"). */}}
{{- define "knockgate.roleEnabled" -}}
{{- $v := (index . 0).Values }}
{{- $role := index . 1 }}
{{- if eq $role "uninstall" }}{{ if $v.uninstall.enabled }}true{{ end }}
{{- else if (index $v $role).enabled }}true{{ end }}
{{- end }}

{{/*
The metrics/health address of a host-network role: (list . .Values.sniffer.metrics).
"hostIP" binds the node's address (the Downward API's status.hostIP, expanded by the kubelet).
*/}}
{{- define "knockgate.hostMetricsAddress" -}}
{{- $m := index . 1 }}
{{- if eq $m.bindAddress "hostIP" }}$(HOST_IP):{{ $m.port }}{{ else }}{{ $m.bindAddress }}:{{ $m.port }}{{ end }}
{{- end }}

{{/* The knock and SPA ports of the policies in values, as "port/proto" strings, plus agent.knockPorts. */}}
{{- define "knockgate.knockPorts" -}}
{{- $ports := list }}
{{- range .Values.agent.knockPorts }}{{ $ports = append $ports . }}{{ end }}
{{- range .Values.policies }}
{{- with .spec.knock }}
{{- range .sequence }}{{ $ports = append $ports . }}{{ end }}
{{- range .oneTimeSequences }}{{ range . }}{{ $ports = append $ports . }}{{ end }}{{ end }}
{{- end }}
{{- with .spec.spa }}{{ $ports = append $ports .port }}{{ end }}
{{- end }}
{{- toJson ($ports | uniq) }}
{{- end }}

{{/*
The agent's mode: the value if set; else Audit on the first install, and on upgrades whatever the
installed release's AgentConfig says (so a rollout never jumps to Enforce by itself).
*/}}
{{- define "knockgate.agentMode" -}}
{{- if .Values.agent.mode }}{{ .Values.agent.mode }}
{{- else }}
{{- $mode := "Audit" }}
{{- $cm := lookup "v1" "ConfigMap" .Release.Namespace (include "knockgate.roleName" (list . "agent")) }}
{{- if and .Release.IsUpgrade $cm $cm.data }}
{{- $old := fromYaml (index $cm.data "agent.yaml" | default "") }}
{{- if $old.mode }}{{ $mode = $old.mode }}{{ end }}
{{- end }}
{{- $mode }}
{{- end }}
{{- end }}

{{- define "knockgate.podSecurityContext" -}}
seccompProfile: {type: RuntimeDefault}
{{- end }}

{{/* A nodeSelector map as a label selector string ("" = every node). */}}
{{- define "knockgate.selectorString" -}}
{{- $parts := list }}
{{- range $k, $v := . }}{{ $parts = append $parts (printf "%s=%s" $k $v) }}{{ end }}
{{- join "," $parts }}
{{- end }}
