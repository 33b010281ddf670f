#!/usr/bin/env python3
"""Renders a kustomization the way `kustomize build` does, for the few
features deploy/k8s uses, when no kustomize is at hand.

tests/scripts/check-deploy.sh renders with `kubectl kustomize` or
`kustomize build` when one of them is installed (kubectl >= 1.27 embeds
kustomize v5) and falls back to this script otherwise: Debian's
kubernetes-client is kubectl 1.20 with kustomize v2.0.3 (no `patches:`),
and no PyPI wheel ships kustomize. When kustomize is present the check also
renders with this script and compares the two, so the fallback stays
faithful.

Supported, and nothing else (anything more is an error, never a silent
difference):
  - resources: YAML files and folders with a kustomization.yaml;
  - namespace: set on every namespaced resource;
  - images: name → newName / newTag / digest, in containers and
    initContainers at any depth;
  - patches: `- path: FILE` strategic-merge patches naming their target by
    apiVersion, kind and metadata.name, made of maps only (a list in a
    patch would need kustomize's per-field merge keys: refused).

Usage: kustomize_lite.py DIR   (the rendered YAML on stdout)
"""

import copy
import os
import sys

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}
# Kinds that have no namespace (those a kustomization here could hold).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ClusterTriggerAuthentication",
}


class Unsupported(Exception):
    pass


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def build(folder):
    kfile = os.path.join(folder, "kustomization.yaml")
    if not os.path.isfile(kfile):
        raise Unsupported(f"{folder}: no kustomization.yaml")
    (k,) = load_docs(kfile)
    extra = set(k) - SUPPORTED_KEYS
    if extra:
        raise Unsupported(f"{kfile}: fields {sorted(extra)} are not supported by this renderer")
    out = []
    for res in k.get("resources", []):
        path = os.path.normpath(os.path.join(folder, res))
        if os.path.isdir(path):
            out.extend(build(path))
        else:
            out.extend(load_docs(path))
    for p in k.get("patches", []):
        if set(p) != {"path"}:
            raise Unsupported(f"{kfile}: only `- path: FILE` patches are supported, not {p}")
        for patch in load_docs(os.path.join(folder, p["path"])):
            apply_patch(out, patch, p["path"])
    for img in k.get("images", []):
        for r in out:
            set_images(r, img)
    ns = k.get("namespace")
    if ns:
        for r in out:
            if r.get("kind") not in CLUSTER_SCOPED:
                r.setdefault("metadata", {})["namespace"] = ns
    return out


def key(r):
    md = r.get("metadata", {})
    return (r.get("apiVersion"), r.get("kind"), md.get("name"))


def apply_patch(resources, patch, where):
    targets = [r for r in resources if key(r) == key(patch)]
    if len(targets) != 1:
        raise Unsupported(f"patch {where}: {len(targets)} resources match {key(patch)}")
    merge(targets[0], patch, where)


def merge(dst, src, where):
    for k, v in src.items():
        if isinstance(v, list):
            raise Unsupported(f"patch {where}: a list under `{k}` (needs merge keys)")
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v, where)
        else:
            dst[k] = copy.deepcopy(v)


def split_image(image):
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    # A colon after the last slash is a tag (before it: a registry port).
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1 :]
    return image, tag, digest


def set_images(node, img):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("containers", "initContainers") and isinstance(v, list):
                for c in v:
                    if isinstance(c, dict) and isinstance(c.get("image"), str):
                        c["image"] = new_image(c["image"], img)
            set_images(v, img)
    elif isinstance(node, list):
        for v in node:
            set_images(v, img)


def new_image(image, img):
    name, tag, digest = split_image(image)
    if name != img["name"]:
        return image
    name = img.get("newName", name)
    if "digest" in img:
        return f"{name}@{img['digest']}"
    tag = img.get("newTag", tag)
    out = name + (f":{tag}" if tag else "")
    return out + (f"@{digest}" if digest else "")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        docs = build(sys.argv[1])
    except Unsupported as e:
        sys.exit(f"kustomize_lite: {e}")
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False))


if __name__ == "__main__":
    main()
