#!/usr/bin/env python3
"""Generates crates/api/src/wire/go_types.json: for every struct of upstream's API types, its
JSON fields in Go struct order with their shapes and `omitempty`, so that the apiserver can
write objects as Go's encoding/json writes them (field order, zero values, sorted map keys).

Usage: gen-go-wire-types.py API_DIR APIMACHINERY_DIR > crates/api/src/wire/go_types.json
where API_DIR is a checkout of k8s.io/api and APIMACHINERY_DIR one of k8s.io/apimachinery, at
the release the cluster follows (v0.33.x for Kubernetes 1.33).

Shapes: s (string), i (integer), f (float), b (bool), bytes ([]byte, base64), time (metav1.Time
and MicroTime: null when zero), duration, quantity, intstr, raw (runtime.RawExtension), any
(interfaces and types with their own marshaller), T:pkg.Name (a struct), *X (pointer), []X
(slice), {}X (map with string keys).
"""

import json
import os
import re
import sys

API_MACHINERY_META = "k8s.io/apimachinery/pkg/apis/meta/v1"

# Types outside the parsed packages, or with their own MarshalJSON, by package path and name.
SPECIAL = {
    ("k8s.io/apimachinery/pkg/api/resource", "Quantity"): "quantity",
    ("k8s.io/apimachinery/pkg/util/intstr", "IntOrString"): "intstr",
    ("k8s.io/apimachinery/pkg/types", "UID"): "s",
    ("k8s.io/apimachinery/pkg/types", "NodeName"): "s",
    ("k8s.io/apimachinery/pkg/runtime", "RawExtension"): "raw",
    ("k8s.io/apimachinery/pkg/runtime", "Object"): "any",
    (API_MACHINERY_META, "Time"): "time",
    (API_MACHINERY_META, "MicroTime"): "time",
    (API_MACHINERY_META, "Duration"): "duration",
    (API_MACHINERY_META, "FieldsV1"): "any",
    (API_MACHINERY_META, "GroupVersion"): "any",
}

SCALARS = {
    "string": "s",
    "bool": "b",
    "int": "i",
    "int32": "i",
    "int64": "i",
    "uint": "i",
    "uint8": "i",
    "uint16": "i",
    "uint32": "i",
    "uint64": "i",
    "float32": "f",
    "float64": "f",
    "byte": "i",
    "rune": "i",
}


def package_key(path):
    """The key prefix of a Go package: core/v1, apps/v1, meta/v1."""
    if path == API_MACHINERY_META:
        return "meta/v1"
    if path.startswith("k8s.io/api/"):
        return path[len("k8s.io/api/"):]
    return None


class Package:
    def __init__(self, path, directory):
        self.path = path
        self.key = package_key(path)
        self.structs = {}  # name -> list of raw field lines
        self.named = {}  # name -> underlying type expression (non-struct)
        self.imports = {}  # alias -> path
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".go") or name.endswith("_test.go"):
                continue
            if name.startswith("zz_generated") or name.endswith(".pb.go"):
                continue
            if "generated" in name:
                continue
            with open(os.path.join(directory, name)) as f:
                self.parse(f.read())

    def parse(self, src):
        src = re.sub(r"//[^\n]*", "", src)
        src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
        imports = {}
        for m in re.finditer(r"import\s*\((.*?)\)", src, flags=re.S):
            for line in m.group(1).splitlines():
                self.add_import(line, imports)
        for m in re.finditer(r"^import\s+([^\(\n][^\n]*)$", src, flags=re.M):
            self.add_import(m.group(1), imports)
        lines = src.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            m = re.match(r"^type\s+([A-Za-z_][A-Za-z0-9_]*)\s+struct\s*\{\s*$", line)
            if m:
                body = []
                i += 1
                depth = 1
                while i < len(lines):
                    l = lines[i]
                    depth += l.count("{") - l.count("}")
                    if depth <= 0:
                        break
                    body.append(l)
                    i += 1
                self.structs[m.group(1)] = (body, dict(imports))
            else:
                m = re.match(r"^type\s+([A-Za-z_][A-Za-z0-9_]*)\s+=?\s*([^\s{]+)\s*$", line)
                if m:
                    self.named[m.group(1)] = (m.group(2), dict(imports))
            i += 1

    @staticmethod
    def add_import(line, imports):
        line = line.strip()
        if not line:
            return
        m = re.match(r'^(?:([A-Za-z_][A-Za-z0-9_]*|\.)\s+)?"([^"]+)"$', line)
        if not m:
            return
        alias, path = m.group(1), m.group(2)
        if alias is None:
            alias = path.rsplit("/", 1)[-1]
        imports[alias] = path


class Generator:
    def __init__(self, api_dir, machinery_dir):
        self.packages = {}
        for root, dirs, files in os.walk(api_dir):
            dirs.sort()
            rel = os.path.relpath(root, api_dir)
            if rel == "." or any(p.startswith(".") or p == "testdata" for p in rel.split(os.sep)):
                continue
            if not re.search(r"(^|/)v\d+$", rel):
                continue
            path = "k8s.io/api/" + rel.replace(os.sep, "/")
            self.packages[path] = Package(path, root)
        meta = os.path.join(machinery_dir, "pkg/apis/meta/v1")
        self.packages[API_MACHINERY_META] = Package(API_MACHINERY_META, meta)
        self.out = {}

    def shape(self, expr, pkg, imports):
        expr = expr.strip()
        if expr.startswith("*"):
            return "*" + self.shape(expr[1:], pkg, imports)
        if expr == "[]byte":
            return "bytes"
        if expr.startswith("[]"):
            return "[]" + self.shape(expr[2:], pkg, imports)
        m = re.match(r"^map\[([^\]]+)\](.+)$", expr)
        if m:
            return "{}" + self.shape(m.group(2), pkg, imports)
        if expr in ("interface{}", "any"):
            return "any"
        if expr in SCALARS:
            return SCALARS[expr]
        if "." in expr:
            alias, name = expr.split(".", 1)
            path = imports.get(alias)
            if path is None:
                raise SystemExit(f"{pkg.path}: unknown import {alias} in {expr}")
        else:
            path, name = pkg.path, expr
        return self.named_shape(path, name)

    def named_shape(self, path, name):
        if (path, name) in SPECIAL:
            return SPECIAL[(path, name)]
        target = self.packages.get(path)
        if target is None:
            return "any"
        if name in target.structs:
            key = f"{target.key}.{name}"
            self.struct(target, name)
            return "T:" + key
        if name in target.named:
            underlying, imports = target.named[name]
            return self.shape(underlying, target, imports)
        return "any"

    def struct(self, pkg, name):
        key = f"{pkg.key}.{name}"
        if key in self.out:
            return self.out[key]
        self.out[key] = None  # recursion guard
        body, imports = pkg.structs[name]
        fields = []
        for line in body:
            line = line.strip()
            if not line:
                continue
            m = re.match(r"^([^`]*?)\s*(`[^`]*`)?$", line)
            if not m:
                continue
            tag = m.group(2) or ""
            jm = re.search(r'json:"([^"]*)"', tag)
            json_tag = jm.group(1) if jm else None
            tokens = m.group(1).split(None, 1)
            if len(tokens) == 1:
                # An embedded field: `metav1.TypeMeta` or `VolumeSource`.
                field_name, type_expr = None, tokens[0]
            else:
                field_name, type_expr = tokens
            if json_tag == "-":
                continue
            opts = (json_tag or "").split(",")
            json_name = opts[0]
            omitempty = "omitempty" in opts[1:]
            inline = "inline" in opts[1:] or (field_name is None and json_name == "")
            if field_name is not None and field_name[0].islower():
                continue  # unexported
            if inline:
                shape = self.shape(type_expr, pkg, imports)
                if not shape.startswith("T:"):
                    raise SystemExit(f"{key}: inline field of non-struct type {type_expr}")
                fields.extend(self.out[shape[2:]] or [])
                continue
            if json_name == "":
                json_name = field_name
            fields.append([json_name, self.shape(type_expr, pkg, imports), 1 if omitempty else 0])
        self.out[key] = fields
        return fields

    def run(self):
        for path in sorted(self.packages):
            pkg = self.packages[path]
            for name in sorted(pkg.structs):
                if name[0].isupper() and (path, name) not in SPECIAL:
                    self.struct(pkg, name)
        return {k: v for k, v in sorted(self.out.items()) if v is not None}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out = Generator(sys.argv[1], sys.argv[2]).run()
    json.dump(out, sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
