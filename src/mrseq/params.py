"""Stage parameters: exactly the params.yaml keys a stage declares in dvc.yaml.

A stage reads its settings through `stage_params(stage)`, which exposes only the declared keys
(reading an undeclared one is a KeyError, so DVC's cache can never miss a dependency). With
MRSEQ_PARAMS_AUDIT=DIR set, the keys a stage actually read are written to DIR/<stage>.json; a
test compares them with the declarations so nothing declared goes unread either.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path
from typing import Any

import yaml

AUDIT_ENV = "MRSEQ_PARAMS_AUDIT"


def load_yaml(path: str | os.PathLike) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def declared_keys(stage: str, dvc_yaml: str | os.PathLike = "dvc.yaml") -> list[str]:
    """Dotted keys a stage declares under `params:` (a bare section name means all of it)."""
    keys = []
    for entry in _stage(stage, dvc_yaml).get("params", []):
        if isinstance(entry, dict):  # {params_file: [keys]}
            for value in entry.values():
                keys += list(value)
        else:
            keys.append(entry)
    return keys


def declared_files(stage: str, dvc_yaml: str | os.PathLike = "dvc.yaml") -> list[Path]:
    """The files (not folders) a stage declares under `deps:`, relative to dvc.yaml's folder."""
    root = Path(dvc_yaml).parent
    return [root / d for d in _stage(stage, dvc_yaml).get("deps", []) if (root / d).is_file()]


def _stage(stage: str, dvc_yaml: str | os.PathLike) -> dict:
    stages = load_yaml(dvc_yaml)["stages"]
    if stage not in stages:
        raise KeyError(f"no stage {stage!r} in {dvc_yaml}")
    return stages[stage]


def get_dotted(tree: dict, key: str) -> Any:
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"params has no key {key!r}")
        node = node[part]
    return node


def set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


class Tracked(dict):
    """A dict that remembers which dotted keys were read (leaves only)."""

    def __init__(self, data: dict, prefix: str = "", seen: set | None = None):
        super().__init__()
        self.seen = set() if seen is None else seen
        self.prefix = prefix
        for k, v in data.items():
            path = f"{prefix}{k}"
            super().__setitem__(k, Tracked(v, path + ".", self.seen) if isinstance(v, dict) else v)

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if not isinstance(value, Tracked):
            self.seen.add(f"{self.prefix}{key}")
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default  # noqa: SIM401 (records the read)

    def plain(self) -> dict:
        """A plain copy that marks everything as read: only for a section handed whole to
        code whose reads cannot be recorded here (another process)."""
        return {k: (self[k].plain() if isinstance(self[k], Tracked) else self[k]) for k in self}


def as_plain(tree: dict) -> dict:
    """A plain deep copy of (possibly tracked) nested dicts that does not count as reading:
    for writing a configuration down."""
    return {k: as_plain(v) if isinstance(v, dict) else v for k, v in dict.items(tree)}


def stage_params(
    stage: str, params_file: str = "params.yaml", dvc_yaml: str = "dvc.yaml"
) -> Tracked:
    """The declared subset of params.yaml for `stage`, tracked for the audit."""
    everything = load_yaml(params_file)
    subset: dict = {}
    for key in declared_keys(stage, dvc_yaml):
        set_dotted(subset, key, get_dotted(everything, key))
    tracked = Tracked(subset)
    audit_dir = os.environ.get(AUDIT_ENV)
    if audit_dir:
        atexit.register(_write_audit, Path(audit_dir) / f"{stage}.json", tracked)
    return tracked


def _write_audit(path: Path, tracked: Tracked) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sorted(tracked.seen)))


def covers(declared: list[str], read: list[str]) -> tuple[list[str], list[str]]:
    """(read but not declared, declared but never read), comparing dotted prefixes."""
    undeclared = [r for r in read if not any(r == d or r.startswith(d + ".") for d in declared)]
    unread = [d for d in declared if not any(r == d or r.startswith(d + ".") for r in read)]
    return undeclared, unread
