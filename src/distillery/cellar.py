"""The Cellar: where Spirits are kept, named, and promoted.

A folder (`DISTILLERY_CELLAR`, default `~/.distillery/cellar`) that holds
```
index.json            name -> entry (version, proof, params, size, date, teacher, parent, sha256, ...)
aliases.json          alias -> {target, min_proof, history}
spirits/<sha256>.spirit   each Spirit's file, stored under its content hash
notes/<sha256>.json   its full tasting notes, when they sat next to it in its run directory
```
Files are stored by content hash, so re-pointing a name or an alias never overwrites a file
a server has open. Every write replaces a whole file atomically (`os.replace`) under a lock,
so a reader (a running server) sees the old index or the new one, never half of one, and two
writers never lose each other's change. A Spirit's sha256 is recorded when it comes in and
checked whenever it is loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import yaml
from filelock import FileLock, Timeout

from distillery.errors import DistilleryError
from distillery.spirit import Spirit, file_sha256, load_spirit, read_metadata

ENV = "DISTILLERY_CELLAR"
FORMAT = "distillery.cellar/1"
HISTORY = 20  # alias targets remembered for rollback
# Names are looked up in the index, never joined to a path; the pattern still keeps them
# to what reads well in a URL, a shell and a table.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CellarError(DistilleryError):
    """A Cellar name, alias or file the user can fix."""


def default_root() -> Path:
    return Path(os.environ.get(ENV) or Path.home() / ".distillery" / "cellar").expanduser()


def check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CellarError(f"{what} {name!r} is not allowed. Fix: 1 to 64 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit (e.g. needle-v2, prod).")
    return name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, value: dict) -> None:
    """Replace `path` atomically: a reader sees the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the index from a server run as another user
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Cellar:
    """One Cellar folder. Reads are cheap (a file is re-read only when its stat changes)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.index_path = self.root / "index.json"
        self.aliases_path = self.root / "aliases.json"
        self._cache: dict[Path, tuple[tuple, dict]] = {}

    # -- reading -----------------------------------------------------------------------------
    def _read(self, path: Path, key: str) -> dict:
        try:
            st = path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or not isinstance(data.get(key), dict):
                raise ValueError(f"expected format {FORMAT!r} with a {key!r} object")
        except (OSError, ValueError, AttributeError) as exc:
            raise CellarError(f"{path}: the Cellar's {path.name} is damaged ({exc}). Fix: restore it from a "
                              f"backup, or remove it and `distillery cellar add` the Spirits again.") from None
        self._cache[path] = (stamp, data[key])
        return data[key]

    def entries(self) -> dict[str, dict]:
        """Every Spirit in the Cellar, by name."""
        return self._read(self.index_path, "spirits")

    def aliases(self) -> dict[str, dict]:
        """Every alias, by name: {"target", "min_proof", "history", "updated"}."""
        return self._read(self.aliases_path, "aliases")

    def entry(self, name: str) -> dict:
        """The entry of a Spirit name (not an alias)."""
        entries = self.entries()
        if name not in entries:
            raise CellarError(f"no Spirit named {name!r} in the Cellar ({self.root}). "
                              f"Fix: one of {self._known(entries)}, or `distillery cellar add FILE`.")
        return entries[name]

    def resolve(self, name: str) -> dict:
        """The entry a Spirit name or an alias stands for, now."""
        if not isinstance(name, str):
            raise CellarError("a model name must be a string.")
        alias = self.aliases().get(name)
        if alias is not None:
            entries = self.entries()
            if alias["target"] not in entries:
                raise CellarError(f"alias {name!r} points at {alias['target']!r}, which is no longer in the "
                                  f"Cellar. Fix: `distillery cellar alias set {name} NAME`.")
            return entries[alias["target"]]
        entries = self.entries()
        if name not in entries:
            raise CellarError(f"no Spirit or alias named {name!r} in the Cellar ({self.root}). "
                              f"Fix: one of {self._known(entries, self.aliases())}.")
        return entries[name]

    def _known(self, *names: dict) -> str:
        known = sorted(n for group in names for n in group)
        return ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") if known else "(the Cellar is empty)"

    def spirit_path(self, entry: dict) -> Path:
        return self.root / "spirits" / f"{entry['sha256']}.spirit"

    def verified_path(self, entry: dict) -> Path:
        """The entry's file, after checking it still has the sha256 recorded when it came in."""
        path = self.spirit_path(entry)
        if not path.is_file():
            raise CellarError(f"{path}: the file of {entry['name']!r} is missing from the Cellar. "
                              f"Fix: `distillery cellar add {entry.get('source', 'FILE')} --name {entry['name']} "
                              "--replace`.")
        found = file_sha256(path)
        if found != entry["sha256"]:
            raise CellarError(f"{path}: the file of {entry['name']!r} has sha256 {found[:12]}..., not the "
                              f"{entry['sha256'][:12]}... recorded when it was added: it was changed or damaged. "
                              f"Fix: `distillery cellar add {entry.get('source', 'FILE')} --name {entry['name']} "
                              "--replace`.")
        return path

    def load(self, name: str) -> Spirit:
        """The Spirit a name or alias stands for, its sha256 checked."""
        return load_spirit(self.verified_path(self.resolve(name)))

    def notes(self, name: str) -> dict:
        """The full tasting notes when the Cellar has them, else the headline the Spirit carries."""
        entry = self.resolve(name)
        path = self.root / "notes" / f"{entry['sha256']}.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        return {"name": entry["name"], "version": entry["version"], "task": entry["task"], **entry["tasting"]}

    def diff(self, a: str, b: str) -> list[tuple[str, float | None, float | None, float | None]]:
        """(metric, value in A, value in B, B - A) for the headline numbers and every metric of either."""
        ta, tb = self.resolve(a), self.resolve(b)

        def numbers(entry: dict) -> dict:
            tasting = entry["tasting"]
            row = {"proof": tasting.get("proof"), **(tasting.get("metrics") or {}), "n_eval": tasting.get("n_eval")}
            latency = tasting.get("latency_ms") or {}
            row.update({"latency_p50_ms": latency.get("p50"), "latency_p95_ms": latency.get("p95"),
                        "params": entry.get("params"), "size_bytes": entry.get("size")})
            return {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

        na, nb = numbers(ta), numbers(tb)
        keys = list(dict.fromkeys([*na, *nb]))
        return [(k, na.get(k), nb.get(k), nb[k] - na[k] if k in na and k in nb else None) for k in keys]

    def lineage(self, name: str) -> list[str]:
        """The Spirit and its ancestors, newest first: Cellar names where the parent is in the
        Cellar, else the parent's sha256 (first 12), where the chain leaves the Cellar."""
        entry, by_sha = self.resolve(name), {e["sha256"]: n for n, e in self.entries().items()}
        chain, seen = [entry["name"]], {entry["sha256"]}
        parent = entry.get("parent")
        while parent and parent not in seen:
            seen.add(parent)
            if parent not in by_sha:
                chain.append(parent[:12])
                break
            chain.append(by_sha[parent])
            parent = self.entries()[by_sha[parent]].get("parent")
        return chain

    # -- writing -----------------------------------------------------------------------------
    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".lock"), timeout=30)

    def _write(self, path: Path, key: str, value: dict) -> None:
        _write_json(path, {"format": FORMAT, key: value})
        self._cache.pop(path, None)

    def _locked(self):
        lock = self._lock()
        try:
            lock.acquire()
        except Timeout:
            raise CellarError(f"{self.root}: another distillery has held the Cellar's lock for 30 s. "
                              f"Fix: wait for it, or remove {self.root / '.lock'} if no distillery is running.")
        return lock

    def add(self, path: Path, name: str | None = None, *, replace: bool = False) -> dict:
        """Copy a Spirit file into the Cellar under `name` (default: `<recipe name>-v<version>`).

        The same file under the same name again is a no-op. Another file under a taken name needs
        `replace`, and is refused while an alias points at that name: an alias only moves through
        `set_alias`, which applies its gate.
        """
        path = Path(path)
        read_metadata(path)  # a clear error for a missing file or a non-Spirit, before anything is copied
        store = self.root / "spirits"
        store.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=store, prefix=".incoming.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o644)
        try:
            shutil.copyfile(path, tmp)
            # Hash and read the copy, not the source: what is recorded is what is stored.
            sha, meta = file_sha256(tmp), read_metadata(tmp)
            entry = _entry(meta, sha, tmp.stat().st_size, path)
            name = check_name(name or entry["name"])
            entry["name"] = name
            with self._locked():
                entries, aliases = dict(self.entries()), self.aliases()
                if name in aliases:
                    raise CellarError(f"{name!r} is already an alias. Fix: give the Spirit another --name.")
                old = entries.get(name)
                if old is not None and old["sha256"] == sha:
                    return old
                if old is not None and not replace:
                    raise CellarError(f"the Cellar already has another Spirit named {name!r} (sha256 "
                                      f"{old['sha256'][:12]}..., added {old['added']}). Fix: add this one with "
                                      f"--name NEW_NAME, or --replace to put it in the old one's place.")
                pointing = sorted(a for a, rec in aliases.items() if rec["target"] == name)
                if old is not None and pointing:
                    raise CellarError(f"alias {', '.join(pointing)} points at {name!r}; replacing it would promote "
                                      f"an untested Spirit past the alias's gate. Fix: add it with --name NEW_NAME, "
                                      f"then `distillery cellar alias set {pointing[0]} NEW_NAME`.")
                os.replace(tmp, self.spirit_path(entry))
                self._keep_notes(path, entry)
                entries[name] = entry
                self._write(self.index_path, "spirits", entries)
                if old is not None:
                    self._drop_unused_file(old, entries)
            return entry
        finally:
            tmp.unlink(missing_ok=True)

    def _keep_notes(self, path: Path, entry: dict) -> None:
        # A Spirit in its run directory has its full notes beside it; keep them if they are its own.
        notes_path = path.parent / "tasting" / "notes.json"
        try:
            notes = json.loads(notes_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if notes.get("recipe_sha256") == entry["lineage"].get("recipe_sha256") and \
                notes.get("proof") == entry["proof"]:
            (self.root / "notes").mkdir(exist_ok=True)
            _write_json(self.root / "notes" / f"{entry['sha256']}.json", notes)

    def _drop_unused_file(self, old: dict, entries: dict) -> None:
        if not any(e["sha256"] == old["sha256"] for e in entries.values()):
            self.spirit_path(old).unlink(missing_ok=True)
            (self.root / "notes" / f"{old['sha256']}.json").unlink(missing_ok=True)

    def remove(self, name: str) -> dict:
        """Take a Spirit out of the Cellar; refused while an alias points at it."""
        with self._locked():
            entries, aliases = dict(self.entries()), dict(self.aliases())
            entry = self.entry(name)
            pointing = sorted(a for a, rec in aliases.items() if rec["target"] == name)
            if pointing:
                raise CellarError(f"alias {', '.join(pointing)} points at {name!r}. Fix: re-point it first "
                                  f"(`distillery cellar alias set {pointing[0]} OTHER`) or remove it "
                                  f"(`distillery cellar alias rm {pointing[0]}`).")
            del entries[name]
            self._write(self.index_path, "spirits", entries)
            # A removed name can no longer be rolled back to.
            changed = {a: {**rec, "history": [h for h in rec["history"] if h != name]} for a, rec in aliases.items()}
            if changed != aliases:
                self._write(self.aliases_path, "aliases", changed)
            self._drop_unused_file(entry, entries)
            return entry

    def set_alias(self, alias: str, name: str, min_proof: float | None = None,
                  gates: dict[str, float] | None = None) -> dict:
        """Point `alias` at Spirit `name`, if its tasting passes every gate of the alias.

        A gate is a metric of the tasting notes and its lowest accepted value: `min_proof` is the
        gate on `proof`, `gates` any others (`{"exact_call_accuracy": 0.9}`). Given gates are
        added to the alias's own, kept for later promotions; without them its own gates apply.
        """
        check_name(alias, "alias")
        if min_proof is not None and not 0.0 <= min_proof <= 1.0:
            raise CellarError(f"--min-proof {min_proof} is outside [0, 1]. Fix: a proof such as 0.8 (80°).")
        with self._locked():
            aliases = dict(self.aliases())
            if alias in self.entries():
                raise CellarError(f"{alias!r} is the name of a Spirit, so it cannot be an alias. "
                                  "Fix: choose another alias name (e.g. prod, staging).")
            entry = self.entry(name)
            old = aliases.get(alias) or {}
            wanted = dict(old.get("gates") or {})
            if old.get("min_proof") is not None:  # aliases written before `gates` existed
                wanted.setdefault("proof", old["min_proof"])
            wanted.update(gates or {})
            if min_proof is not None:
                wanted["proof"] = min_proof
            for metric, floor in wanted.items():
                value = _metric(entry, metric)
                if value is None:
                    known = ", ".join(["proof", *sorted((entry.get("tasting") or {}).get("metrics") or {})])
                    raise CellarError(f"{name!r} has no {metric!r} in its tasting notes, which the gate of alias "
                                      f"{alias!r} needs; the alias is unchanged. Fix: gate on one of: {known}.")
                if value < floor:
                    shown = (_degrees(value), _degrees(floor)) if metric == "proof" else (f"{value:.4g}", f"{floor:g}")
                    raise CellarError(f"{name!r} has {metric} {shown[0]}, under the gate of alias {alias!r} "
                                      f"({metric} >= {shown[1]}); the alias is unchanged. Fix: promote a Spirit "
                                      "that tastes better, or lower the gate with --min.")
            history = list(old.get("history", []))
            if old and old["target"] != name:
                history = (history + [old["target"]])[-HISTORY:]
            record = {"target": name, "min_proof": wanted.get("proof"), "gates": wanted, "history": history,
                      "updated": _now()}
            aliases[alias] = record
            self._write(self.aliases_path, "aliases", aliases)
            return record

    def rollback(self, alias: str) -> dict:
        """Point `alias` back at its previous target (the gate is not applied: it passed it then)."""
        with self._locked():
            aliases = dict(self.aliases())
            old = aliases.get(alias)
            if old is None:
                raise CellarError(f"no alias named {alias!r}. Fix: one of {self._known(aliases)}.")
            if not old["history"]:
                raise CellarError(f"alias {alias!r} has no previous target to roll back to "
                                  f"(it points at {old['target']!r}, its first target).")
            record = {**old, "target": old["history"][-1], "history": old["history"][:-1], "updated": _now()}
            aliases[alias] = record
            self._write(self.aliases_path, "aliases", aliases)
            return record

    def remove_alias(self, alias: str) -> dict:
        with self._locked():
            aliases = dict(self.aliases())
            if alias not in aliases:
                raise CellarError(f"no alias named {alias!r}. Fix: one of {self._known(aliases)}.")
            record = aliases.pop(alias)
            self._write(self.aliases_path, "aliases", aliases)
            return record


def _metric(entry: dict, metric: str) -> float | None:
    """A headline number of a Spirit's tasting: its proof, or one of its metrics."""
    tasting = entry.get("tasting") or {}
    value = entry.get("proof") if metric == "proof" else (tasting.get("metrics") or {}).get(metric, tasting.get(metric))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _degrees(proof: float | None) -> str:
    return "unknown" if proof is None else f"{proof * 100:.0f}°"


def _entry(meta: dict, sha: str, size: int, source: Path) -> dict:
    """What the index records of one Spirit, read from its own metadata."""
    try:
        recipe = yaml.safe_load(meta.get("recipe") or "") or {}
    except yaml.YAMLError:
        recipe = {}
    recipe = recipe if isinstance(recipe, dict) else {}
    teacher = recipe.get("teacher") if isinstance(recipe.get("teacher"), dict) else {}
    provider, model = teacher.get("provider"), teacher.get("model")
    tasting, lineage = meta["tasting"], meta["lineage"]
    name, version = recipe.get("name"), recipe.get("version")
    return {
        "name": f"{name}-v{version}" if name and version is not None else source.stem,
        "version": version,
        "proof": tasting.get("proof"),
        "params": tasting.get("params"),
        "size": size,
        "added": _now(),
        "teacher": f"{provider}:{model}" if provider and model else provider,
        "parent": lineage.get("parent"),
        "sha256": sha,
        "task": meta.get("task"),
        "source": str(source.resolve()),
        "tasting": tasting,
        "lineage": lineage,
    }
