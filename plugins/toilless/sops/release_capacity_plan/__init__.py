"""Release capacity plan (`release_capacity_plan`): decides how many replicas and how much memory and CPU a release
needs from its load figures, never less than what runs, and writes it as validated Kubernetes manifests and the
release's as-built section; applies it only when configured and approved.

Pure modules (no Airflow, no network): ``contracts`` (Kubernetes names and quantities), ``reading`` (Deployments,
PodMetrics and new components from outside, checked), ``plan`` (the judgement), ``manifests`` (patch, manifests, HPA,
offline schema validation), ``as_built`` (the document and the Slack summary), ``settings`` (Params over
configuration). ``steps`` holds the task bodies.
"""
