{{/*
Template-time checks for combinations values.schema.json cannot express. Each fails the render
with a message that names the values to change.
*/}}
{{- define "kube-gtm.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.leaderElection.enabled) }}
{{- fail "operator.replicas > 1 needs operator.leaderElection.enabled=true: without a Lease every replica would write the ConfigMaps" }}
{{- end }}
{{- if and .Values.dns.geoip.enabled (empty .Values.dns.geoip.volume) }}
{{- fail "dns.geoip.enabled=true needs dns.geoip.volume: the volume source holding the MaxMind database, e.g. {secret: {secretName: geoip}}" }}
{{- end }}
{{- if eq (int .Values.dns.port) (int .Values.dns.httpPort) }}
{{- fail "dns.port and dns.httpPort must differ: DNS and HTTP cannot share a port in the DNS pod" }}
{{- end }}
{{- if and (eq .Values.dns.service.type "ClusterIP") (or .Values.dns.service.nodePorts.udp .Values.dns.service.nodePorts.tcp) }}
{{- fail "dns.service.nodePorts are set but dns.service.type is ClusterIP: use NodePort or LoadBalancer" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service) }}
{{- fail "metrics.serviceMonitor.enabled=true needs metrics.service=true: the ServiceMonitor selects the metrics Services" }}
{{- end }}
{{- if eq .Values.mode "edge" }}
{{- if not .Values.edge.controlPlane.kubeconfigSecret }}
{{- fail "mode=edge needs edge.controlPlane.kubeconfigSecret: the Secret holding the control cluster's kubeconfig (README, \"Several clusters\")" }}
{{- end }}
{{- if not .Values.edge.controlPlane.namespace }}
{{- fail "mode=edge needs edge.controlPlane.namespace: the namespace of the control release, where its ConfigMaps are" }}
{{- end }}
{{- if not .Values.instance }}
{{- fail "mode=edge needs instance: the control release's instance (its NOTES print it), which names the ConfigMaps to read" }}
{{- end }}
{{- if .Values.edgeAccess.edges }}
{{- fail "edgeAccess.edges is for the control release: an edge release reads the control cluster, it grants nothing" }}
{{- end }}
{{- if and .Values.prober.enabled (not .Values.prober.kubeconfigSecret) }}
{{- fail "prober.enabled=true in edge mode needs prober.kubeconfigSecret: the kubeconfig of the location's account in the control cluster (proberAccess.locations there)" }}
{{- end }}
{{- if .Values.proberAccess.locations }}
{{- fail "proberAccess.locations is for the control release: an edge release reads the control cluster, it grants nothing" }}
{{- end }}
{{- end }}
{{- if and .Values.prober.enabled (not .Values.prober.location) }}
{{- fail "prober.enabled=true needs prober.location: the name of this probe location (not local, which is the operator's embedded prober)" }}
{{- end }}
{{- $agent := .Values.edge.endpointAgent }}
{{- if and $agent.enabled (ne .Values.mode "edge") }}
{{- fail "edge.endpointAgent runs in edge releases (mode=edge); in the control cluster the operator discovers endpoints itself (operator.endpointDiscovery.kinds)" }}
{{- end }}
{{- if and $agent.enabled (not $agent.cluster) }}
{{- fail "edge.endpointAgent.enabled needs edge.endpointAgent.cluster: the name pools use for this cluster in endpointSources[].cluster" }}
{{- end }}
{{- if and $agent.enabled (not $agent.kubeconfigSecret) }}
{{- fail "edge.endpointAgent.enabled needs edge.endpointAgent.kubeconfigSecret: a kubeconfig for the agent's account in the control cluster (control release's edgeAccess.endpointAgents)" }}
{{- end }}
{{- if and .Values.edgeAccess.endpointAgents (eq .Values.mode "edge") }}
{{- fail "edgeAccess.endpointAgents is for the control release" }}
{{- end }}
{{- range .Values.zones }}
{{- if not (regexMatch "^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.?$" .) }}
{{- fail (printf "zones: %q is not a DNS name" .) }}
{{- end }}
{{- end }}
{{- end }}
