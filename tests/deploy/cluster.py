"""What a cluster would make of rendered manifests, for the checks: lookups, the config a container
would load (its ConfigMaps, env and mounted Secret files, as the kubelet lays them out), and
NetworkPolicy reachability.

    objects = build(Path("k8s/overlays/prod"))
    config = load_mounted(mount(objects, workload, container, secrets), "/etc/tcxhooks.ini", tmp_path, "media")
    egress_allowed(objects, pod_labels, Peer(ip="203.0.113.10"), 5001)
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.config import ServiceConfig, service_config

Obj = dict[str, Any]


def find(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def generated(objects: list[Obj], kind: str, base_name: str) -> Obj | None:
    """A generated ConfigMap/Secret by its name before the hash suffix (None when absent)."""
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and (o["metadata"]["name"] == base_name or o["metadata"]["name"].rsplit("-", 1)[0] == base_name)
    ]
    assert len(found) <= 1
    return found[0] if found else None


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def pod_spec(workload: Obj) -> Obj:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def pod_labels(workload: Obj) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


def quantity(value: str | int | float) -> float:
    """CPU or memory quantity as a number (cores or bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def secret_values(secret: Obj) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


@dataclass
class Mounted:
    """A container as the kubelet would start it: its env and its files (mount path → content)."""

    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    secret_keys: set[str] = field(default_factory=set)


def mount(objects: list[Obj], workload: Obj, container: Obj, secret_fallback: dict[str, str]) -> Mounted:
    """Env and files of `container`; Secret values come from the rendered Secret, else `secret_fallback`."""
    result = Mounted()

    def secret_data(name: str) -> dict[str, str]:
        found = find(objects, "Secret", name)
        return secret_values(found[0]) if found else secret_fallback

    def configmap_data(name: str) -> dict[str, str]:
        return one(objects, "ConfigMap", name).get("data") or {}

    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "envFrom only from ConfigMaps"
        result.env.update(configmap_data(source["configMapRef"]["name"]))
    for env in container.get("env", []):
        if "value" in env:
            result.env[env["name"]] = env["value"]
            continue
        ref = env["valueFrom"]["secretKeyRef"]
        data = secret_data(ref["name"])
        result.secret_keys.add(ref["key"])
        if ref["key"] not in data and ref.get("optional"):
            continue  # the kubelet leaves the variable unset
        assert ref["key"] in data, f"Secret {ref['name']} has no key {ref['key']}"
        result.env[env["name"]] = data[ref["key"]]
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    for volume_mount in container.get("volumeMounts", []):
        if volume_mount["name"] in claims:
            continue
        volume = volumes[volume_mount["name"]]
        if "configMap" in volume:
            for key, text in configmap_data(volume["configMap"]["name"]).items():
                result.files[f"{volume_mount['mountPath']}/{key}"] = text
        elif "secret" in volume:
            data = secret_data(volume["secret"]["secretName"])
            for item in volume["secret"].get("items") or [{"key": k, "path": k} for k in data]:
                assert item["key"] in data, f"Secret has no key {item['key']}"
                result.files[f"{volume_mount['mountPath']}/{item['path']}"] = data[item["key"]]
                result.secret_keys.add(item["key"])
    return result


def load_mounted(mounted: Mounted, config_path: str, folder: Path, service: str) -> ServiceConfig:
    """Lays the container's files out under `folder` and loads the config the way the service would."""

    def local(path: str) -> str:
        return str(folder / path.lstrip("/"))

    for path, text in mounted.files.items():
        Path(local(path)).parent.mkdir(parents=True, exist_ok=True)
        Path(local(path)).write_text(text, encoding="utf-8")
    env = dict(mounted.env)
    for name, value in env.items():
        if name.endswith("_FILE"):
            assert value in mounted.files, f"{name}={value} is not a mounted file"
            env[name] = local(value)
    assert config_path in mounted.files, f"{config_path} is not mounted"
    return service_config(local(config_path), service, env)


# --- NetworkPolicy reachability ------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A destination: an address outside the cluster, or a pod (same namespace) by its labels."""

    ip: str = ""
    labels: tuple[tuple[str, str], ...] = ()


def _peer_matches(rule_peer: Obj, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        if not peer.ip:
            return False
        block = rule_peer["ipBlock"]
        address = ipaddress.ip_address(peer.ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if not peer.labels:
        return False
    if "namespaceSelector" in rule_peer:
        return False  # the pods we ask about live in the policies' own namespace
    return matches(rule_peer["podSelector"].get("matchLabels", {}), dict(peer.labels))


def _port_matches(rule: Obj, port: int) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(p["port"] <= port <= p.get("endPort", p["port"]) and p.get("protocol", "TCP") == "TCP" for p in ports)


def egress_allowed(objects: list[Obj], labels: dict[str, str], peer: Peer, port: int) -> bool:
    """Whether a pod with `labels` may open TCP `port` to `peer` under the rendered NetworkPolicies."""
    policies = [
        p
        for p in find(objects, "NetworkPolicy")
        if matches(p["spec"]["podSelector"].get("matchLabels", {}), labels)
        and "Egress" in p["spec"].get("policyTypes", [])
    ]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            peers = rule.get("to")
            if (not peers or any(_peer_matches(p, peer) for p in peers)) and _port_matches(rule, port):
                return True
    return False
