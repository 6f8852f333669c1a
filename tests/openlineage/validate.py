#!/usr/bin/env python3
"""Validates OpenLineage run events, one JSON object a line, offline.

    python3 tests/openlineage/validate.py [--spec-dir DIR] FILE...
    python3 tests/openlineage/validate.py --print-spec-dir

Every line is checked twice:

1. With `jsonschema` (draft 2020-12, formats uuid/date-time/uri checked)
   against the official OpenLineage JSON Schemas: the whole event against
   `OpenLineage.json#/$defs/RunEvent`, and each facet against its own
   facet schema file (`facets/<Facet>.json`, found by the facet's key) when
   the spec directory has one. `$ref`s between the files resolve locally;
   nothing is fetched.
2. Each facet against the model that the official Python client
   (`openlineage-python`) generates from the spec, chosen by the facet's
   `_schemaURL`, which must therefore be one the client knows: required
   fields present, no unknown fields, JSON types as declared.

No Python package ships the spec's JSON files (openlineage-python does not,
nor openlineage-integration-common), so the spec directory is, in order:
--spec-dir, $OPENLINEAGE_SPEC_DIR, an installed Python distribution that
ships `OpenLineage.json`, or the verbatim copy of the official schemas in the
crates.io package `datafusion-openlineage` (tests/schemas/openlineage,
OpenLineage 1.50.0) in cargo's registry cache, which tests/run.sh fetches.
That copy has the core schema and 11 facet schemas; facets without a file
are checked by the client model (step 2) only, and the summary says which.

Exit status: 0 when every event is valid, 1 when any is not (or there is
none), 2 when the validator cannot run (missing spec or packages).
"""

from __future__ import annotations

import argparse
import enum
import importlib
import json
import os
import pkgutil
import re
import sys
import types
import typing
from pathlib import Path

CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT = CORE_ID + "#/$defs/RunEvent"
CRATE = "datafusion-openlineage"
INSTALL_HINT = (
    "run tests/run.sh once (it installs jsonschema, rfc3339-validator, "
    "rfc3986-validator and openlineage-python, and fetches the spec)"
)


class SetupError(Exception):
    """The validator cannot run."""


# --------------------------------------------------------------------------
# Finding and loading the spec
# --------------------------------------------------------------------------


def _is_spec_dir(d: Path) -> bool:
    core = d / "OpenLineage.json"
    if not core.is_file():
        return False
    try:
        return json.loads(core.read_text()).get("$id") == CORE_ID
    except (OSError, ValueError):
        return False


def _version_key(path: Path) -> tuple:
    m = re.search(r"-(\d+)\.(\d+)\.(\d+)", path.name)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def find_spec_dir(explicit: str | None) -> Path:
    if explicit:
        d = Path(explicit)
        if not _is_spec_dir(d):
            raise SetupError(f"{d} has no OpenLineage.json with $id {CORE_ID}")
        return d
    env = os.environ.get("OPENLINEAGE_SPEC_DIR")
    if env:
        d = Path(env)
        if not _is_spec_dir(d):
            raise SetupError(f"OPENLINEAGE_SPEC_DIR={env} has no OpenLineage.json with $id {CORE_ID}")
        return d

    import importlib.metadata

    for dist in importlib.metadata.distributions():
        for f in dist.files or ():
            if f.name == "OpenLineage.json":
                d = Path(str(dist.locate_file(f))).parent
                if _is_spec_dir(d):
                    return d

    cargo_home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    crates = sorted(
        (cargo_home / "registry" / "src").glob(f"*/{CRATE}-*"),
        key=_version_key,
        reverse=True,
    )
    for crate in crates:
        d = crate / "tests" / "schemas" / "openlineage"
        if _is_spec_dir(d):
            return d
    raise SetupError(
        "no OpenLineage spec found (no --spec-dir, no $OPENLINEAGE_SPEC_DIR, no Python "
        f"package shipping OpenLineage.json, no {CRATE} crate under {cargo_home}/registry/src); "
        + INSTALL_HINT
    )


class Spec:
    """The schema files of one spec directory, as a `referencing` registry."""

    def __init__(self, directory: Path):
        try:
            from jsonschema import Draft202012Validator, FormatChecker
            from referencing import Registry, Resource
        except ImportError as e:
            raise SetupError(f"{e}; {INSTALL_HINT}") from e

        checker = FormatChecker()
        missing = [f for f in ("uuid", "date-time", "uri") if f not in checker.checkers]
        if missing:
            raise SetupError(f"jsonschema cannot check the formats {missing}; {INSTALL_HINT}")

        self.directory = directory
        self.facet_files: dict[str, str] = {}  # facet key -> facet file $id
        resources = []
        for path in sorted([directory / "OpenLineage.json", *(directory / "facets").glob("*.json")]):
            doc = json.loads(path.read_text())
            schema_id = doc.get("$id")
            if not schema_id:
                continue
            resources.append((schema_id, Resource.from_contents(doc)))
            if path.parent.name == "facets":
                for key in doc.get("properties", {}):
                    self.facet_files[key] = schema_id
        registry = Registry().with_resources(resources)

        def validator(ref: str):
            return Draft202012Validator({"$ref": ref}, registry=registry, format_checker=checker)

        self.event_validator = validator(RUN_EVENT)
        self.facet_validators = {key: validator(i) for key, i in self.facet_files.items()}


# --------------------------------------------------------------------------
# The client's generated models
# --------------------------------------------------------------------------


class Models:
    """openlineage-python's generated attrs classes, by `_schemaURL`."""

    def __init__(self):
        try:
            import attr
            import importlib.metadata

            import openlineage.client.generated as generated
        except ImportError as e:
            raise SetupError(f"{e}; {INSTALL_HINT}") from e
        self.attr = attr
        self.version = importlib.metadata.version("openlineage-python")
        self.by_url: dict[str, type] = {}
        for info in pkgutil.iter_modules(generated.__path__):
            module = importlib.import_module(f"{generated.__name__}.{info.name}")
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and attr.has(obj)
                    and obj.__module__ == module.__name__
                    and "_get_schema" in vars(obj)
                ):
                    self.by_url[obj._get_schema()] = obj

    def check(self, value, tp, path: str, errors: list[str]) -> None:
        attr = self.attr
        if tp is typing.Any:
            return
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            options = typing.get_args(tp)
            if value is None:
                if type(None) not in options:
                    errors.append(f"{path}: null is not allowed")
                return
            best: list[str] | None = None
            for option in options:
                if option is type(None):
                    continue
                errs: list[str] = []
                self.check(value, option, path, errs)
                if not errs:
                    return
                if best is None or len(errs) < len(best):
                    best = errs
            errors.extend(best or [f"{path}: matches none of {tp}"])
            return
        if origin is list:
            if not isinstance(value, list):
                errors.append(f"{path}: expected an array, got {json.dumps(value)}")
                return
            (item,) = typing.get_args(tp) or (typing.Any,)
            for i, v in enumerate(value):
                self.check(v, item, f"{path}[{i}]", errors)
            return
        if origin is dict:
            if not isinstance(value, dict):
                errors.append(f"{path}: expected an object, got {json.dumps(value)}")
                return
            args = typing.get_args(tp)
            item = args[1] if len(args) == 2 else typing.Any
            for k, v in value.items():
                self.check(v, item, f"{path}.{k}", errors)
            return
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            allowed = [m.value for m in tp]
            if value not in allowed:
                errors.append(f"{path}: {json.dumps(value)} is not one of {allowed}")
            return
        if isinstance(tp, type) and attr.has(tp):
            self.check_class(value, tp, path, errors)
            return
        ok = {
            str: lambda v: isinstance(v, str),
            bool: lambda v: isinstance(v, bool),
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        }.get(tp)
        if ok is None:
            errors.append(f"{path}: the model's type {tp!r} is not supported by validate.py")
        elif not ok(value):
            errors.append(f"{path}: expected {tp.__name__}, got {json.dumps(value)}")

    def check_class(self, value, cls: type, path: str, errors: list[str]) -> None:
        attr = self.attr
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object ({cls.__name__}), got {json.dumps(value)}")
            return
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in attr.fields(cls)}
        for name, f in fields.items():
            if name not in value:
                if f.default is attr.NOTHING:
                    errors.append(f"{path}: missing required field {name!r} ({cls.__name__})")
                continue
            self.check(value[name], hints.get(name, typing.Any), f"{path}.{name}", errors)
        for key in value:
            if key not in fields:
                errors.append(f"{path}: unknown field {key!r} ({cls.__name__} has {sorted(fields)})")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _facets(event: dict):
    """(path, key, facet) of every facet of the event."""

    def of(container, path):
        if isinstance(container, dict):
            for key, facet in container.items():
                yield f"{path}.{key}", key, facet

    run, job = event.get("run"), event.get("job")
    if isinstance(run, dict):
        yield from of(run.get("facets"), "run.facets")
    if isinstance(job, dict):
        yield from of(job.get("facets"), "job.facets")
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        datasets = event.get(side)
        if not isinstance(datasets, list):
            continue
        for i, d in enumerate(datasets):
            if isinstance(d, dict):
                yield from of(d.get("facets"), f"{side}[{i}].facets")
                yield from of(d.get(extra), f"{side}[{i}].{extra}")


def _error_text(error) -> str:
    from jsonschema.exceptions import best_match

    # anyOf/allOf failures carry the real cause among their sub-errors.
    while error.context:
        error = best_match(error.context)
    where = "/".join(str(p) for p in error.absolute_path) or "(event)"
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    return f"{where}: {message}"


def validate_event(event, spec: Spec, models: Models, notes: dict[str, set]) -> list[str]:
    if not isinstance(event, dict):
        return ["not a JSON object"]
    errors = [_error_text(e) for e in spec.event_validator.iter_errors(event)]
    url = event.get("schemaURL")
    if isinstance(url, str) and url != RUN_EVENT:
        errors.append(f"schemaURL: {url!r} is not {RUN_EVENT!r}")
    for path, key, facet in _facets(event):
        if not isinstance(facet, dict):
            continue  # the core schema reported it
        validator = spec.facet_validators.get(key)
        if validator is None:
            notes["model only"].add(key)
        else:
            errors += [f"{path}: {_error_text(e)}" for e in validator.iter_errors({key: facet})]
            declared = str(facet.get("_schemaURL", "")).split("#")[0]
            if declared and declared != spec.facet_files[key]:
                notes["other version"].add(f"{key} ({declared.rsplit('/', 2)[-2]} checked against "
                                           f"{spec.facet_files[key].rsplit('/', 2)[-2]})")
        schema_url = facet.get("_schemaURL")
        cls = models.by_url.get(schema_url) if isinstance(schema_url, str) else None
        if cls is None:
            errors.append(
                f"{path}._schemaURL: {schema_url!r} is not a facet of openlineage-python {models.version}"
            )
        else:
            models.check_class(facet, cls, path, errors)
    return errors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="JSON Lines files of RunEvents")
    parser.add_argument("--spec-dir", help="directory with OpenLineage.json and facets/*.json")
    parser.add_argument("--print-spec-dir", action="store_true", help="print the spec directory used and exit")
    args = parser.parse_args(argv)

    try:
        spec_dir = find_spec_dir(args.spec_dir)
        if args.print_spec_dir:
            print(spec_dir)
            return 0
        if not args.files:
            parser.error("no FILE given")
        spec = Spec(spec_dir)
        models = Models()
    except SetupError as e:
        print(f"validate.py: cannot validate: {e}", file=sys.stderr)
        return 2

    valid = invalid = 0
    notes: dict[str, set] = {"model only": set(), "other version": set()}
    for file in args.files:
        try:
            lines = file.read_text().splitlines()
        except OSError as e:
            print(f"validate.py: {e}", file=sys.stderr)
            return 2
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                errors = validate_event(event, spec, models, notes)
            except ValueError as e:
                event, errors = None, [f"not JSON: {e}"]
            label = f"{file}:{n}"
            if errors:
                invalid += 1
                print(f"{label}: INVALID")
                for e in errors:
                    print(f"    {e}")
            else:
                valid += 1
                print(f"{label}: ok {event.get('eventType')} {event.get('job', {}).get('name')}")

    print(f"spec: {spec_dir} (RunEvent {CORE_ID.split('/')[-2]}); models: openlineage-python {models.version}")
    if notes["model only"]:
        print(f"no JSON Schema file in the spec, checked by the client model only: {sorted(notes['model only'])}")
    if notes["other version"]:
        print(f"facet schema version differs from the one declared: {sorted(notes['other version'])}")
    print(f"validate.py: {valid} valid, {invalid} invalid")
    return 0 if invalid == 0 and valid > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
