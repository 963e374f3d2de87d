{{/* Names and labels shared by every template of the chart. */}}

{{/* The release's full name: the release name, prefixed with the chart name unless it contains it. */}}
{{- define "midihub.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object of the release carries. */}}
{{- define "midihub.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of the operator's pods (stable across upgrades). */}}
{{- define "midihub.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Selector labels of the node-prep pods. */}}
{{- define "midihub.nodePrepSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-prep
{{- end -}}

{{/* The operator's ServiceAccount name. */}}
{{- define "midihub.serviceAccountName" -}}
{{- default (include "midihub.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/*
An image reference from {registry, repository, tag}: the image's own registry, else the chart's
images.registry, else none. Call with (dict "image" <image values> "root" $).
*/}}
{{- define "midihub.image" -}}
{{- $registry := default .root.Values.images.registry .image.registry -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository .image.tag -}}
{{- end -}}
{{- end -}}

{{/* The restrictive container security context of every unprivileged container. */}}
{{- define "midihub.restrictedContainerSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
