{{/* The release's full name, cut to the 63 characters of a DNS label. */}}
{{- define "drlaas.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "drlaas.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "drlaas.labels" -}}
{{ include "drlaas.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "drlaas.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "drlaas.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "drlaas.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The namespaces the operator runs tasks in, comma separated: watchNamespaces and the release
namespace (the release namespace alone by default). Empty with clusterWide: every namespace, which is
what an empty DRLAAS_WATCH_NAMESPACES tells the operator.
*/}}
{{- define "drlaas.taskNamespaces" -}}
{{- include "drlaas.checkScope" . -}}
{{- if not .Values.clusterWide -}}
{{- append (default (list) .Values.watchNamespaces) .Release.Namespace | uniq | join "," -}}
{{- end -}}
{{- end -}}

{{/*
clusterWide and watchNamespaces contradict each other: refused by values.schema.json, and here too
for an install that skips the schema.
*/}}
{{- define "drlaas.checkScope" -}}
{{- if and .Values.clusterWide .Values.watchNamespaces -}}
{{- fail "clusterWide: true runs tasks in every namespace, so watchNamespaces must be empty: set one or the other" -}}
{{- end -}}
{{- end -}}

{{/* The TCP port of a URL: its explicit port, else the scheme's (https 443, http 80). */}}
{{- define "drlaas.urlPort" -}}
{{- $u := urlParse . -}}
{{- $hostPort := splitList ":" $u.host -}}
{{- if gt (len $hostPort) 1 -}}
{{- last $hostPort -}}
{{- else if eq $u.scheme "https" -}}
443
{{- else -}}
80
{{- end -}}
{{- end -}}

{{/* The operator's permissions in a namespace tasks run in (see rbac.yaml). */}}
{{- define "drlaas.taskRules" -}}
- apiGroups: ["drlaas.io"]
  resources: ["drltasks"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["drlaas.io"]
  resources: ["drltasks/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
