{{/* Names, labels and shared snippets. */}}

{{- define "kube-gtm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-kube-gtm, or the release name when it already contains the chart name. */}}
{{- define "kube-gtm.fullname" -}}
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

{{/* The workloads this release runs: both in control mode, the DNS pods alone in edge mode;
and gtm-prober in either when prober.enabled. */}}
{{- define "kube-gtm.components" -}}
{{- if eq .Values.mode "edge" }}dns{{ else }}operator dns{{ end }}{{ if .Values.prober.enabled }} prober{{ end }}
{{- end }}

{{/* "true" in control mode (CRDs, operator, RBAC in this cluster), "" in edge mode. */}}
{{- define "kube-gtm.control" -}}
{{- if ne .Values.mode "edge" }}true{{ end }}
{{- end }}

{{/* The instance name shared by both binaries (--instance). */}}
{{- define "kube-gtm.instance" -}}
{{- default (include "kube-gtm.fullname" .) .Values.instance }}
{{- end }}

{{- define "kube-gtm.operator.fullname" -}}
{{- printf "%s-operator" (include "kube-gtm.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kube-gtm.dns.fullname" -}}
{{- printf "%s-dns" (include "kube-gtm.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kube-gtm.prober.fullname" -}}
{{- printf "%s-prober" (include "kube-gtm.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kube-gtm.prober.serviceAccountName" -}}
{{- if .Values.prober.serviceAccount.create }}
{{- default (include "kube-gtm.prober.fullname" .) .Values.prober.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.prober.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kube-gtm.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "kube-gtm.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kube-gtm.dns.serviceAccountName" -}}
{{- if .Values.dns.serviceAccount.create }}
{{- default (include "kube-gtm.dns.fullname" .) .Values.dns.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.dns.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kube-gtm.leaseName" -}}
{{- default (printf "%s-operator" (include "kube-gtm.instance" .)) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "kube-gtm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "kube-gtm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-gtm
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kube-gtm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-gtm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kube-gtm.operator.selectorLabels" -}}
{{ include "kube-gtm.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kube-gtm.dns.selectorLabels" -}}
{{ include "kube-gtm.selectorLabels" . }}
app.kubernetes.io/component: dns
{{- end }}

{{- define "kube-gtm.prober.selectorLabels" -}}
{{ include "kube-gtm.selectorLabels" . }}
app.kubernetes.io/component: prober
{{- end }}

{{- define "kube-gtm.prober.labels" -}}
{{ include "kube-gtm.labels" . }}
app.kubernetes.io/component: prober
{{- end }}

{{/* What a probe location may do in the control release's namespace (prober-access.yaml); argument:
(list $ location maxVerdictParts): read ConfigMaps (RBAC cannot narrow list and watch by label);
create ConfigMaps (a server-side apply that creates an object needs `create`, which RBAC cannot
narrow by name: a location can add ConfigMaps, never change anyone else's); and change (`patch`,
server-side apply) or delete (verdict parts no longer needed) only its own heartbeat and verdict
ConfigMaps, by name. */}}
{{- define "kube-gtm.prober.reportRules" -}}
{{- $root := index . 0 }}
{{- $location := index . 1 }}
{{- $instance := include "kube-gtm.instance" $root }}
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames:
    - {{ printf "%s-location-%s" $instance $location }}
    {{- range $i := until (int (index . 2)) }}
    - {{ printf "%s-verdicts-%s-%d" $instance $location $i }}
    {{- end }}
  verbs: ["patch", "delete"]
{{- end }}

{{- define "kube-gtm.operator.labels" -}}
{{ include "kube-gtm.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kube-gtm.dns.labels" -}}
{{ include "kube-gtm.labels" . }}
app.kubernetes.io/component: dns
{{- end }}

{{/* repository:tag or repository@digest. */}}
{{- define "kube-gtm.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Scrape annotations for a pod; argument: (list $ port). */}}
{{- define "kube-gtm.scrapeAnnotations" -}}
{{- $root := index . 0 }}
{{- if $root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ index . 1 | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/* A label map as the binaries' comma-separated `key=value` list (GTM_LOCATION_LABELS). */}}
{{- define "kube-gtm.labelList" -}}
{{- $pairs := list }}
{{- range $k, $v := . }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The zones as the binaries' comma-separated GTM_ZONES. */}}
{{- define "kube-gtm.zones" -}}
{{- join "," .Values.zones }}
{{- end }}

{{/* What the operator may do where it reconciles (rbac.yaml). */}}
{{- define "kube-gtm.operator.reconcileRules" -}}
- apiGroups: ["gtm.kubegtm.io"]
  resources: ["gtmaccessdomains", "addresspools", "healthchecktemplates", "gtmzones"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["gtm.kubegtm.io"]
  resources: ["gtmaccessdomains/status", "addresspools/status", "healthchecktemplates/status", "gtmzones/status"]
  verbs: ["patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- include "kube-gtm.endpointReadRules" .Values.operator.endpointDiscovery.kinds }}
{{- end }}

{{/* Read-only access to the kinds endpoint sources name; argument: the list of kinds. */}}
{{- define "kube-gtm.endpointReadRules" -}}
{{- if has "Service" . }}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if has "Ingress" . }}
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if has "Gateway" . }}
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}

{{- define "kube-gtm.agent.fullname" -}}
{{- printf "%s-endpoint-agent" (include "kube-gtm.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* NetworkPolicy rules shared by both components (networkpolicy.yaml). */}}
{{- define "kube-gtm.networkPolicy.metricsIngress" -}}
- ports:
    - port: http
      protocol: TCP
  {{- with .Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- define "kube-gtm.networkPolicy.apiServerEgress" -}}
- ports:
    {{- range .Values.networkPolicy.apiServerPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with .Values.networkPolicy.apiServerCIDRs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
