"""A kustomize renderer for the subset k8s/ uses (there is no kustomize binary on PyPI or Debian).

    objects = build(Path("k8s/overlays/prod"))      # list of dicts, like `kustomize build`
    python -m tests.deploy.kustomize k8s/overlays/prod   # prints the YAML

Supported, with kustomize v5 semantics: `resources` (files inside the kustomization's folder, or other
kustomization folders anywhere), `components`, `configMapGenerator` / `secretGenerator` (files, literals,
behavior create/merge/replace, options, `generatorOptions`; a content hash is appended to generated
names and every reference to them is rewritten), `patches` (strategic merge, by the patch's kind and
name or by `target`), `namespace`, `labels` (without selectors), `images` and `replicas`. Anything
else in a kustomization is an error, so a file that real kustomize would read differently never
renders silently.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

FILENAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
COMPONENT_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "patches",
    "labels",
    "images",
    "replicas",
}
# the fields each kind may have: a Component is a Kustomization without its own `namespace`
SUPPORTED = {"Kustomization": COMPONENT_FIELDS | {"namespace"}, "Component": COMPONENT_FIELDS}
API_VERSIONS = {"Kustomization": "kustomize.config.k8s.io/v1beta1", "Component": "kustomize.config.k8s.io/v1alpha1"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Strategic merge keys of the lists our patches touch (from the Kubernetes API's patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


class KustomizeError(Exception):
    """The kustomization cannot be rendered (or uses something this renderer does not support)."""


@dataclass
class Resource:
    obj: Obj
    hashed: bool = False  # a generated ConfigMap/Secret whose name gets the content hash

    @property
    def id(self) -> tuple[str, str, str]:
        meta = self.obj.get("metadata", {})
        return self.obj["kind"], meta.get("namespace", ""), meta["name"]


def _read_kustomization(folder: Path, kind: str) -> Obj:
    for name in FILENAMES:
        path = folder / name
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            break
    else:
        raise KustomizeError(f"{folder}: no kustomization file")
    if data.get("kind", "Kustomization") != kind:
        raise KustomizeError(f"{path}: expected kind {kind}, found {data.get('kind')}")
    if data.get("apiVersion") != API_VERSIONS[kind]:
        raise KustomizeError(f"{path}: apiVersion must be {API_VERSIONS[kind]}")
    unknown = set(data) - SUPPORTED[kind]
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    return data


def _inside(folder: Path, relative: str) -> Path:
    """A file of this kustomization; like kustomize's default load restrictor, it must be inside `folder`."""
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise KustomizeError(f"{folder}: {relative} is not in or below the kustomization's folder")
    if not path.is_file():
        raise KustomizeError(f"{folder}: {relative} not found")
    return path


def _load_documents(path: Path) -> list[Obj]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("metadata", {}).get("name"):
            raise KustomizeError(f"{path}: every document needs kind and metadata.name")
    return docs


def _add(resources: list[Resource], new: Resource, where: Path) -> None:
    if any(r.id == new.id for r in resources):
        raise KustomizeError(f"{where}: {new.id} is defined twice")
    resources.append(new)


def _run(folder: Path, kind: str, inherited: list[Resource]) -> list[Resource]:
    spec = _read_kustomization(folder, kind)
    resources = list(inherited)
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            for resource in _run(target, "Kustomization", []):
                _add(resources, resource, folder)
        else:
            for doc in _load_documents(_inside(folder, entry)):
                _add(resources, Resource(doc), folder)
    for entry in spec.get("components", []):
        resources = _run((folder / entry).resolve(), "Component", resources)
    options = spec.get("generatorOptions", {})
    for generator in spec.get("configMapGenerator", []):
        _generate(folder, "ConfigMap", generator, options, resources)
    for generator in spec.get("secretGenerator", []):
        _generate(folder, "Secret", generator, options, resources)
    for patch in spec.get("patches", []):
        _patch(folder, patch, resources)
    if "namespace" in spec:
        for resource in resources:
            if resource.obj["kind"] not in CLUSTER_SCOPED:
                resource.obj["metadata"]["namespace"] = spec["namespace"]
    for entry in spec.get("labels", []):
        _label(entry, resources, folder)
    for image in spec.get("images", []):
        _set_image(image, resources)
    for entry in spec.get("replicas", []):
        _set_replicas(entry, resources, folder)
    return resources


# --- generators ---------------------------------------------------------------------------------


def _generated_data(folder: Path, generator: Obj) -> dict[str, str]:
    unknown = set(generator) - {"name", "behavior", "files", "literals", "options", "type"}
    if unknown:
        raise KustomizeError(f"{folder}: generator {generator.get('name')}: unsupported fields {sorted(unknown)}")
    data: dict[str, str] = {}
    for literal in generator.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise KustomizeError(f"{folder}: literal {literal!r} is not KEY=VALUE")
        data[key] = value
    for entry in generator.get("files", []):
        key, sep, relative = entry.partition("=")
        if not sep:
            key, relative = Path(entry).name, entry
        data[key] = _inside(folder, relative).read_text(encoding="utf-8")
    return data


def _generate(folder: Path, kind: str, generator: Obj, options: Obj, resources: list[Resource]) -> None:
    name = generator["name"]
    behavior = generator.get("behavior", "create")
    data = _generated_data(folder, generator)
    opts = {**options, **generator.get("options", {})}
    existing = [r for r in resources if r.obj["kind"] == kind and r.obj["metadata"]["name"] == name]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"{folder}: {kind} {name} exists already (use behavior: merge or replace)")
        obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
        if kind == "Secret":
            obj["type"] = generator.get("type", "Opaque")
        resource = Resource(obj, hashed=not opts.get("disableNameSuffixHash", False))
        resources.append(resource)
        current: dict[str, str] = {}
    elif behavior in ("merge", "replace"):
        if len(existing) != 1:
            raise KustomizeError(f"{folder}: {kind} {name} to {behavior} not found")
        resource = existing[0]
        current = _decoded(resource.obj) if behavior == "merge" else {}
    else:
        raise KustomizeError(f"{folder}: generator {name}: unknown behavior {behavior!r}")
    current.update(data)
    if kind == "Secret":
        resource.obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in current.items()}
    else:
        resource.obj["data"] = current
    meta = resource.obj["metadata"]
    for field in ("labels", "annotations"):
        if opts.get(field):
            meta.setdefault(field, {}).update(opts[field])


def _decoded(obj: Obj) -> dict[str, str]:
    data = dict(obj.get("data") or {})
    if obj["kind"] == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in data.items()}
    return data


def _hash(obj: Obj) -> str:
    """10 characters of a content hash, in kustomize's alphabet (no vowels, no 0/1/3)."""
    content = json.dumps({k: obj.get(k) for k in ("kind", "data", "type")}, sort_keys=True)
    digest = hashlib.sha256(content.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


# --- patches --------------------------------------------------------------------------------------


def _merge_key(field: str | None, items: list[Any]) -> str | None:
    if field == "ports":
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field or "")


def strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    """Kubernetes strategic merge for the fields we patch: maps merge, `null` deletes a key, lists with a
    merge key merge item by item (`$patch: delete` removes one), other lists are replaced."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        merged = copy.deepcopy(base) if isinstance(base, dict) else {}
        for key, value in patch.items():
            if key.startswith("$"):
                raise KustomizeError(f"unsupported patch directive {key}")
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(merged.get(key), value, key)
        return merged
    if isinstance(patch, list):
        key = _merge_key(field, patch)
        if key is None or not isinstance(base, list):
            return [strategic_merge(None, item) if isinstance(item, dict) else item for item in patch]
        merged_list = copy.deepcopy(base)
        for item in patch:
            matches = [i for i, old in enumerate(merged_list) if old.get(key) == item.get(key)]
            if item.get("$patch") == "delete":
                merged_list = [old for old in merged_list if old.get(key) != item.get(key)]
            elif matches:
                merged_list[matches[0]] = strategic_merge(merged_list[matches[0]], item)
            else:
                merged_list.append(strategic_merge(None, item))
        return merged_list
    return copy.deepcopy(patch)


def _selected(resource: Resource, target: Obj) -> bool:
    obj = resource.obj
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and obj["metadata"]["name"] != target["name"]:
        return False
    if "labelSelector" in target:
        labels = obj["metadata"].get("labels", {})
        for term in target["labelSelector"].split(","):
            key, _, value = term.partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
    return True


def _patch(folder: Path, entry: Obj, resources: list[Resource]) -> None:
    unknown = set(entry) - {"path", "patch", "target"}
    if unknown:
        raise KustomizeError(f"{folder}: patch with unsupported fields {sorted(unknown)}")
    if "path" in entry:
        docs = _load_documents(_inside(folder, entry["path"]))
    else:
        docs = [d for d in yaml.safe_load_all(entry["patch"]) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise KustomizeError(f"{folder}: a patch is one strategic-merge document (JSON 6902 is not supported)")
    patch = docs[0]
    target = entry.get("target") or {"kind": patch["kind"], "name": patch["metadata"]["name"]}
    unknown = set(target) - {"kind", "name", "labelSelector"}
    if unknown:
        raise KustomizeError(f"{folder}: patch target with unsupported fields {sorted(unknown)}")
    matched = [r for r in resources if _selected(r, target)]
    if not matched:
        raise KustomizeError(f"{folder}: patch target {target} matches nothing")
    for resource in matched:
        body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
        if "target" in entry:
            body["metadata"] = {k: v for k, v in body.get("metadata", {}).items() if k != "name"}
        resource.obj = strategic_merge(resource.obj, body)


# --- transformers -------------------------------------------------------------------------------


def _pod_templates(obj: Obj) -> Iterator[Obj]:
    if obj["kind"] in WORKLOADS:
        yield obj["spec"]["template"]
    elif obj["kind"] == "CronJob":
        yield obj["spec"]["jobTemplate"]["spec"]["template"]


def _containers(obj: Obj) -> Iterator[Obj]:
    for template in _pod_templates(obj):
        yield from template["spec"].get("initContainers", [])
        yield from template["spec"]["containers"]


def _label(entry: Obj, resources: list[Resource], folder: Path) -> None:
    unknown = set(entry) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown or entry.get("includeSelectors"):
        raise KustomizeError(f"{folder}: labels: only pairs and includeTemplates are supported")
    for resource in resources:
        resource.obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
        if entry.get("includeTemplates"):
            for template in _pod_templates(resource.obj):
                template.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])


def split_image(image: str) -> tuple[str, str, str]:
    """name, tag, digest of an image reference (a registry port is part of the name)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def _set_image(entry: Obj, resources: list[Resource]) -> None:
    for resource in resources:
        for container in _containers(resource.obj):
            name, tag, digest = split_image(container["image"])
            if name != entry["name"]:
                continue
            name = entry.get("newName", name)
            tag = str(entry.get("newTag", tag))
            digest = entry.get("digest", digest)
            container["image"] = name + (f":{tag}" if tag and not digest else "") + (f"@{digest}" if digest else "")


def _set_replicas(entry: Obj, resources: list[Resource], folder: Path) -> None:
    matched = [
        r
        for r in resources
        if r.obj["kind"] in ("Deployment", "StatefulSet", "ReplicaSet") and r.obj["metadata"]["name"] == entry["name"]
    ]
    if not matched:
        raise KustomizeError(f"{folder}: replicas for unknown workload {entry['name']}")
    for resource in matched:
        resource.obj["spec"]["replicas"] = int(entry["count"])


# --- name references ------------------------------------------------------------------------------


def _references(obj: Obj) -> Iterator[tuple[str, Obj, str]]:
    """(kind referred to, holder dict, field holding the name) for every ConfigMap/Secret reference."""
    for template in _pod_templates(obj):
        spec = template["spec"]
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                yield "ConfigMap", volume["configMap"], "name"
            if "secret" in volume:
                yield "Secret", volume["secret"], "secretName"
            for source in volume.get("projected", {}).get("sources", []):
                if "configMap" in source:
                    yield "ConfigMap", source["configMap"], "name"
                if "secret" in source:
                    yield "Secret", source["secret"], "name"
        for pull in spec.get("imagePullSecrets", []):
            yield "Secret", pull, "name"
        for container in spec.get("initContainers", []) + spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    yield "ConfigMap", source["configMapRef"], "name"
                if "secretRef" in source:
                    yield "Secret", source["secretRef"], "name"
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    yield "ConfigMap", ref["configMapKeyRef"], "name"
                if "secretKeyRef" in ref:
                    yield "Secret", ref["secretKeyRef"], "name"
    if obj["kind"] == "Ingress":
        for tls in obj["spec"].get("tls", []):
            if "secretName" in tls:
                yield "Secret", tls, "secretName"


def _finish(resources: list[Resource]) -> list[Obj]:
    renamed: dict[tuple[str, str, str], str] = {}
    for resource in resources:
        if resource.hashed:
            kind, namespace, name = resource.id
            renamed[(kind, namespace, name)] = f"{name}-{_hash(resource.obj)}"
            resource.obj["metadata"]["name"] = renamed[(kind, namespace, name)]
    for resource in resources:
        namespace = resource.obj["metadata"].get("namespace", "")
        for kind, holder, field in _references(resource.obj):
            new = renamed.get((kind, namespace, holder[field]))
            if new:
                holder[field] = new
    return [r.obj for r in resources]


def build(folder: Path) -> list[Obj]:
    """Renders the kustomization in `folder` (like `kustomize build folder`)."""
    return _finish(_run(folder.resolve(), "Kustomization", []))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m tests.deploy.kustomize FOLDER")
    try:
        objects = build(Path(args[0]))
    except KustomizeError as exc:
        raise SystemExit(f"kustomize: {exc}") from None
    print(yaml.safe_dump_all(objects, sort_keys=False), end="")


if __name__ == "__main__":
    main()
