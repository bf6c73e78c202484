"""Presets: named prompt templates with the settings that go with them (``--preset NAME``), a
few built in and the user's own as ``[presets.NAME]`` tables of the config file.

A preset's settings are a table of known keys (:data:`PRESET_KEYS`), one line per key: how its
value is checked, and the run flag it stands in for. A flag the user gives wins over the
preset, and the preset wins over the config file's defaults, because what it sets is given to
the run as that flag would be.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanoedit.backends.registry import backend_names
from nanoedit.errors import ConfigError, UsageError
from nanoedit.jobs import (
    DIAL_NAMES,
    FIDELITIES,
    FORMATS,
    QUALITIES,
    RATIOS,
    RUN_TIERS,
    SIZES,
    THINKING_LEVELS,
    TRANSPARENT_AUTO,
    TRANSPARENT_METHODS,
    Dials,
    normalize_ratio,
    normalize_size,
)
from nanoedit.settings.store import PRESETS, config_path, read_document

PLACEHOLDER = "{prompt}"
"""Where a template takes the prompt the user gives."""
TEMPLATE = "prompt"
DESCRIPTION = "description"
# A preset's name is typed on command lines and in job files: a word, no quoting needed.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
MAX_COUNT = 10  # as --count


def _ratio(value: object) -> object:
    try:
        return normalize_ratio(_string(value))
    except UsageError:
        raise UsageError(f"must be one of: {', '.join(RATIOS)}, not {value!r}") from None


def _size(value: object) -> object:
    # 512 may be written as a TOML number; the other sizes are strings (1K), in any case.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        return normalize_size(_string(text))
    except UsageError:
        raise UsageError(f"must be one of: {', '.join(SIZES)}, not {value!r}") from None


def _model(value: object) -> object:
    return _string(value).strip()


def _count(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise UsageError(f"must be a whole number from 1 to {MAX_COUNT}, not {value!r}")
    return value


def _seed(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise UsageError(f"must be a whole number from 0 to {2**31 - 1}, not {value!r}")
    return value


def _switch(value: object) -> object:
    # A TOML boolean only: "false" as a string would read as true, the typo that paid twice.
    if not isinstance(value, bool):
        raise UsageError(f"must be true or false (unquoted), not {value!r}")
    return value


def _one_of(names: tuple[str, ...]) -> Callable[[object], object]:
    def check(value: object) -> object:
        if not isinstance(value, str) or value.strip().lower() not in names:
            raise UsageError(f"must be one of: {', '.join(names)}, not {value!r}")
        return value.strip().lower()

    return check


def _transparent(value: object) -> object:
    # true is --transparent (the best method for the backend); a method's name is
    # --transparent-method. Either way the value is the method asked for, which the planner
    # resolves per job (nanoedit.run.transparency), so a --from line's preset may set it too.
    methods = (TRANSPARENT_AUTO, *TRANSPARENT_METHODS)
    if value is True:
        return TRANSPARENT_AUTO
    if isinstance(value, str) and value.strip().lower() in methods:
        return value.strip().lower()
    raise UsageError(f"must be true or one of: {', '.join(methods)}, not {value!r}")


def _backend(value: object) -> object:
    names = ("auto", *backend_names())
    if _string(value) not in names:
        raise UsageError(f"must be one of: {', '.join(names)}, not {value!r}")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"must be a non-empty string, not {value!r}")
    return value


@dataclass(frozen=True)
class PresetKey:
    """One setting a preset may hold: its name in the config file, which is also the name of
    the run flag it stands in for (a field of the command line's ``RunFlags``), how its value
    is checked (raising :class:`UsageError` with why), and whether a ``--from`` line's preset
    may set it for its own job (a field of the job's ``Options``) or it belongs to the run."""

    name: str
    check: Callable[[object], object]
    per_job: bool
    help: str


# One line per key. A flag added to the run is a line here for presets to set it: its name is
# the RunFlags field (and, with per_job, the Options field a --from line's preset sets), its
# check takes the TOML value and returns the field's value or raises UsageError("must be ...").
PRESET_KEYS: tuple[PresetKey, ...] = (
    PresetKey("ratio", _ratio, per_job=True, help="aspect ratio, as --ratio (16:9)"),
    PresetKey("size", _size, per_job=True, help="resolution, as --size (512, 1K, 2K, 4K)"),
    PresetKey("model", _model, per_job=True, help="model alias or id, as --model"),
    PresetKey("count", _count, per_job=True, help="images per job, as --count (1 to 10)"),
    PresetKey("backend", _backend, per_job=False, help="which API, as --backend"),
    PresetKey(
        "transparent",
        _transparent,
        per_job=True,
        help="true (as --transparent) or native, key or matte (as --transparent-method)",
    ),
    # The provider dials belong to the run: a --from line's preset may not set them.
    PresetKey("seed", _seed, per_job=False, help="sampling seed, as --seed"),
    PresetKey("thinking", _one_of(THINKING_LEVELS), per_job=False, help="as --thinking"),
    PresetKey("search", _switch, per_job=False, help="search grounding, as --search"),
    PresetKey("image_only", _switch, per_job=False, help="as --image-only"),
    PresetKey("format", _one_of(FORMATS), per_job=False, help="png, jpeg or webp, as --format"),
    PresetKey("safety", _string, per_job=False, help="the backend's level, as --safety"),
    PresetKey("quality", _one_of(QUALITIES), per_job=False, help="as --quality (gpt-image)"),
    PresetKey("input_fidelity", _one_of(FIDELITIES), per_job=False, help="as --input-fidelity"),
    # The tier belongs to the run, as --tier does (RunOptions.tier): no --from line sets it.
    PresetKey(
        "tier",
        _one_of(RUN_TIERS),
        per_job=False,
        help="standard, flex, priority or batch, as --tier",
    ),
)
KEYS: Mapping[str, PresetKey] = {key.name: key for key in PRESET_KEYS}
FIELDS = (TEMPLATE, DESCRIPTION, *KEYS)
"""Every key a ``[presets.NAME]`` table may hold."""


@dataclass(frozen=True)
class Preset:
    """A named prompt template and settings. ``template`` holds :data:`PLACEHOLDER` once (the
    user's prompt goes there) or not at all (it is the whole prompt, and no other is taken);
    None leaves the prompt as given. ``settings`` are checked values of :data:`PRESET_KEYS`,
    in the table's order. ``source`` is the config file it is read from (None: built in)."""

    name: str
    description: str
    template: str | None = None
    settings: tuple[tuple[str, object], ...] = ()
    source: Path | None = None
    overrides_builtin: bool = False

    def fill(self, prompt: str) -> str:
        """The prompt sent: ``prompt`` (as given, stripped; may be empty) put into the template.
        A usage error when the template wants a prompt and none is given, or is a whole prompt
        and one is given too."""
        if self.template is None:
            return prompt
        if PLACEHOLDER not in self.template:
            if prompt:
                raise UsageError(
                    f"the preset {self.name}'s template is a whole prompt (it has no "
                    f"{PLACEHOLDER} to put yours in), and a prompt was given too; leave out the "
                    "prompt, or put {prompt} in the preset's template"
                )
            return self.template
        if not prompt:
            raise UsageError(
                f"the preset {self.name} puts your prompt into its template at {PLACEHOLDER}, "
                'and no prompt was given; say what you want with -p "..."'
            )
        return self.template.replace(PLACEHOLDER, prompt)

    @property
    def wants_prompt(self) -> bool:
        """Whether a prompt must be given with this preset (its template has the placeholder,
        or it has none)."""
        return self.template is None or PLACEHOLDER in self.template

    def values(self, given: Collection[str] = ()) -> dict[str, Any]:
        """The settings as run flags' values, leaving out the flags in ``given`` (those the
        user gave, which win over the preset); each of the type its flag's field has."""
        return {name: value for name, value in self.settings if name not in given}

    def stand_in(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """A program's call's options (``given``, by setting name; None or False where the
        call gave none) with this preset's setting in place of each one left out, as the
        command line's flags: what the call gives wins."""
        ours = dict(self.settings)
        return {
            name: ours.get(name, value) if value is None or value is False else value
            for name, value in given.items()
        }

    def dials_under(self, dials: Dials) -> Dials:
        """``dials`` (a program's call's) with this preset's in place of those it leaves
        unasked (None or False), as the command line's flags: what the call asks wins."""
        ours = {name: value for name, value in self.settings if name in DIAL_NAMES}
        return Dials(**{**ours, **dials.given()})

    def run_keys(self) -> list[str]:
        """The settings that belong to the whole run (no ``--from`` line may set them)."""
        return [name for name, _ in self.settings if not KEYS[name].per_job]

    def as_toml(self) -> str:
        """The preset as the ``[presets.NAME]`` table that makes it, after a comment saying
        where it comes from (``nanoedit presets``)."""
        import tomli_w

        if self.source is None:
            source = "# built in"
        else:
            over = f", in place of the built-in {self.name}" if self.overrides_builtin else ""
            source = f"# from the config file {self.source}{over}"
        table: dict[str, Any] = {DESCRIPTION: self.description} if self.description else {}
        if self.template is not None:
            table[TEMPLATE] = self.template
        table.update(self.settings)
        return f"{source}\n{tomli_w.dumps({PRESETS: {self.name: table}})}"

    def as_json(self) -> dict[str, Any]:
        """The preset as ``nanoedit presets --json`` prints it (schema ``nanoedit/preset/1``)."""
        return {
            "schema": "nanoedit/preset/1",
            "name": self.name,
            "source": "built-in" if self.source is None else "config",
            "file": None if self.source is None else str(self.source),
            "overrides_builtin": self.overrides_builtin,
            "description": self.description,
            "template": self.template,
            "settings": dict(self.settings),
        }


# Built in: what people most often ask an image model for, written as full art direction so
# that a short prompt ("a red fox") makes a usable result. The prompt comes first: the model
# reads the subject before the style, and a generated file is named after the prompt alone.
BUILT_IN: tuple[Preset, ...] = (
    Preset(
        "icon",
        "a square app icon: one bold subject, flat and readable at small sizes",
        "{prompt}, as an app icon: one bold, simple subject centred with even margins, on a "
        "plain background; flat shapes with soft shading, a small palette of strong colours, "
        "clean edges, no text or lettering, readable at 32 pixels",
        (("ratio", "1:1"),),
    ),
    Preset(
        "product",
        "a product shot: the product alone, whole, in soft studio light, on transparent",
        "{prompt}, as a professional product photograph: the product alone, whole and centred, "
        "in sharp focus, soft even studio lighting, true-to-life colours and materials, no "
        "props, no text, with clean edges",
        # Cut out by the backend's best method (a key colour on Gemini, one request); set
        # transparent = "matte" in your own to keep glass and soft shadows, at two requests.
        (("ratio", "1:1"), ("transparent", TRANSPARENT_AUTO)),
    ),
    Preset(
        "sticker",
        "a die-cut sticker with a thick white border",
        "{prompt}, as a die-cut sticker: bold clean outlines, flat vivid colours with simple "
        "cel shading, the whole subject inside a thick even white border that follows its "
        "outline, no text",
        # Cut out along its border: a sticker is its shape.
        (("ratio", "1:1"), ("transparent", TRANSPARENT_AUTO)),
    ),
    Preset(
        "thumbnail",
        "a 16:9 video thumbnail: one focal subject, bold, readable when small",
        "{prompt}, as a 16:9 video thumbnail: one clear focal subject large in the frame, a "
        "bold composition that reads at a glance when small, strong contrast and saturated "
        "colours, simple uncluttered background, clear space on one side for a title",
        (("ratio", "16:9"),),
    ),
)


class PresetBook:
    """The presets a run can name: the built-in ones, and the config file's (``path``,
    ``document``: its TOML), which override a built-in one of the same name."""

    def __init__(self, path: Path, document: Mapping[str, Any]) -> None:
        self.path = path
        found = {preset.name: preset for preset in BUILT_IN}
        for preset in read_presets(path, document):
            found[preset.name] = preset
        self._presets = found

    @classmethod
    def built_in(cls) -> PresetBook:
        """The built-in presets alone."""
        return cls(Path(), {})

    @classmethod
    def of(cls, environ: Mapping[str, str]) -> PresetBook:
        """The presets of the config file the environment names."""
        path = config_path(environ)
        return cls(path, read_document(path))

    def all(self) -> list[Preset]:
        """Every preset: the built-in ones in their order (the file's in their place when it
        overrides them), then the file's own in its order."""
        return list(self._presets.values())

    def find(self, name: str) -> Preset:
        """The preset ``name``; a usage error naming the nearest one when there is none."""
        preset = self._presets.get(name)
        if preset is not None:
            return preset
        close = difflib.get_close_matches(name, list(self._presets), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(
            f"no preset is called {name!r}; {hint}the presets are: {', '.join(self._presets)} "
            "(nanoedit presets shows them)"
        )


def read_presets(path: Path, document: Mapping[str, Any]) -> list[Preset]:
    """The ``[presets.NAME]`` tables of a config file's document, checked; a config error
    naming the file, the key and its line when one is wrong."""
    tables = document.get(PRESETS)
    if tables is None:
        return []
    if not isinstance(tables, dict):
        raise _bad(path, PRESETS, "must be tables of presets, such as [presets.logo]")
    builtin = {preset.name for preset in BUILT_IN}
    presets = []
    for name, table in tables.items():
        key = f"{PRESETS}.{name}"
        if not NAME.fullmatch(name):
            raise _bad(path, key, "is not a usable name: use letters, digits, - and _")
        if not isinstance(table, dict):
            raise _bad(path, key, f'must be a table, such as [{key}] with prompt = "..."')
        for field in table:
            if field not in FIELDS:
                close = difflib.get_close_matches(field, FIELDS, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise _bad(
                    path,
                    f"{key}.{field}",
                    f"is not a preset setting{hint}; a preset takes: {', '.join(FIELDS)}",
                )
        template = _template(path, key, table.get(TEMPLATE))
        description = table.get(DESCRIPTION, "")
        if not isinstance(description, str):
            raise _bad(path, f"{key}.{DESCRIPTION}", f"must be a string, not {description!r}")
        settings = []
        for spec in PRESET_KEYS:
            if spec.name in table:
                try:
                    settings.append((spec.name, spec.check(table[spec.name])))
                except UsageError as exc:
                    raise _bad(path, f"{key}.{spec.name}", exc.message) from None
        if template is None and not settings:
            raise _bad(path, key, f"sets nothing; give it a {TEMPLATE} or a setting")
        presets.append(Preset(name, description, template, tuple(settings), path, name in builtin))
    return presets


def _template(path: Path, key: str, value: object) -> str | None:
    if value is None:
        return None
    where = f"{key}.{TEMPLATE}"
    if not isinstance(value, str) or not value.strip():
        raise _bad(path, where, f"must be a non-empty string, not {value!r}")
    if value.count(PLACEHOLDER) > 1:
        raise _bad(
            path,
            where,
            f"has {PLACEHOLDER} {value.count(PLACEHOLDER)} times; put it once, where your "
            "prompt goes (or leave it out to make the template the whole prompt)",
        )
    return value.strip()


def _bad(path: Path, key: str, why: str) -> ConfigError:
    line = _line_of(path, key)
    where = f"{path} line {line}" if line else str(path)
    return ConfigError(f"the config file {where}: {key} {why}; correct it in the config file")


def _line_of(path: Path, key: str) -> int | None:
    """The line of the config file where ``key`` (``presets.NAME`` or ``presets.NAME.FIELD``)
    is written, as a ``[presets.NAME]`` table holds it; None when it is written another way
    (TOML allows several) or the file cannot be read again."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    _, _, rest = key.partition(".")
    name, _, field = rest.partition(".")
    header = re.compile(rf"\s*\[\s*{PRESETS}\s*\.\s*(\"{re.escape(name)}\"|{re.escape(name)})\s*\]")
    assignment = re.compile(rf"\s*(\"{re.escape(field)}\"|{re.escape(field)})\s*=")
    inside = False
    for number, text in enumerate(lines, start=1):
        if header.match(text):
            if not field:
                return number
            inside = True
        elif text.lstrip().startswith("["):
            inside = False
        elif inside and field and assignment.match(text):
            return number
    return None
