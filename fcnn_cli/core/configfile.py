"""Configuration files of ``fcnn train``: TOML, with the options' own names as keys.

The keys are the option fields of config.py: those of DataConfig (``data``, ``targets``,
``features``, ``val``, ``test``) at the top, NetConfig's in a ``[net]`` section and TrainConfig's
in ``[train]``; any of them may also stand at the top, outside a section. Paths are taken from
the file's directory. How a command runs (its run directory, ``--force``, ``--resume``, the
number of processes, ``-q``) is not part of a run's description and stays on the command line.
The run directory holds its resolved options as such a file, ``config.toml``, which trains the
same run again.
"""

import difflib
import json
import math
import os
import re
import tomllib

from fcnn_cli.core.config import DataConfig, NetConfig, TrainConfig, option_fields, typed
from fcnn_cli.core.errors import FcnnError, first_line, shown, size_text

SECTIONS = {"net": NetConfig, "train": TrainConfig}
FIELDS = {f.name: (cls, f) for cls in (DataConfig, NetConfig, TrainConfig)
          for f in option_fields(cls)}
PATHS = ("data", "val", "test")
# How a command runs, which only the command line says.
COMMAND_LINE = {"output": "-o", "force": "--force", "resume": "--resume", "nproc": "--nproc",
                "quiet": "-q", "config": "--config", "print_config": "--print-config"}
# How a command runs that a file may still set, as a default under the command line's flag:
# a batch system's jobs switch their plots off in the one file they share (``plots = false``),
# or in the environment (PLOTS_VARIABLE, read by the commands' --plots/--no-plots).
RUN_DEFAULTS = {"plots": "--plots/--no-plots"}
PLOTS_VARIABLE = "FCNN_PLOTS"
SWITCH_WORDS = {"1": True, "true": True, "yes": True, "on": True,
                "0": False, "false": False, "no": False, "off": False}
# Other spellings of the run directory, which a file would otherwise take for a typo of a key.
COMMAND_LINE_SPELLINGS = {"o": "-o", "out": "-o", "run_dir": "-o", "output_dir": "-o"}
MAX_BYTES = 1 << 20
# Tables and lists nested deeper than any option's value (a list of lists at most) can hold;
# deeper ones exhaust the parser's recursion, or that of whatever reads the values next.
MAX_DEPTH = 16
HEADER = """\
# fcnn train options: `fcnn train --config FILE` trains with them; options given on the
# command line override them. Relative paths are taken from this file's directory.
"""
LINE = 96  # a longer list of names is written one line of names after another


def read_config(path, document=None):
    """The options of the configuration file ``path``: {key: value}, every key known and every
    value of its option's type (ranges and combinations are checked where the options are).
    ``document``: the file's parsed TOML, where the caller has read it already."""
    document = parse(path) if document is None else document
    values = {}
    for key, value in document.items():
        if key in SECTIONS and isinstance(value, dict):
            for name, item in value.items():
                _take(values, path, name, item, key)
        elif key in SECTIONS:  # net = 3, or [[net]]: an array of tables
            given = f"[[{key}]]" if isinstance(value, list) else f"{key} = {shown(value)}"
            raise FcnnError(f"{path}: {key!r} must be a section (a table): [{key}] with its "
                            f"keys on the lines below it, not {given}")
        elif key == "samples" and isinstance(value, dict):
            _take(values, path, key, _sample_tables(path, value), None)
        elif isinstance(value, dict) and key not in FIELDS:
            near = difflib.get_close_matches(key, SECTIONS, n=1)
            raise FcnnError(f"{path}: unknown section [{key}]"
                            + (f"; did you mean [{near[0]}]?" if near else
                               f"; the sections are {', '.join(f'[{s}]' for s in SECTIONS)}"))
        else:
            _take(values, path, key, value, None)
    return values


def parse(path):
    """The TOML document of the configuration file ``path``."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise FcnnError(f"{path}: cannot read the configuration file: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise FcnnError(f"{path}: a configuration file larger than {size_text(MAX_BYTES)}")
    try:
        # utf-8-sig: a byte-order mark, which some editors write, is not part of the TOML.
        document = tomllib.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise FcnnError(f"{path}: not a TOML file: {first_line(e)}") from None
    except RecursionError:
        document = None
    if document is None or _too_deep(document):
        raise FcnnError(f"{path}: tables or lists nested more than {MAX_DEPTH} levels deep; "
                        "no option takes such a value")
    return document


def _too_deep(document):
    """Whether tables and lists nest beyond MAX_DEPTH (dotted keys nest without recursion in
    the parser, so a parsed document can still be too deep for a recursive reader)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        items = value.values() if isinstance(value, dict) else value
        stack += [(v, depth + 1) for v in items if isinstance(v, (dict, list))]
    return False


def plots_default():
    """Whether a command draws its plots where neither its command line nor a configuration
    file says: as PLOTS_VARIABLE says, else yes."""
    text = os.environ.get(PLOTS_VARIABLE, "").strip()
    if not text:
        return True
    if text.lower() not in SWITCH_WORDS:
        raise FcnnError(f"the environment variable {PLOTS_VARIABLE}={shown(text)}: give 0 or "
                        "1 (false or true, no or yes, off or on)")
    return SWITCH_WORDS[text.lower()]


def _take(values, path, key, value, section):
    where = f"{path}: " + (f"[{section}] " if section else "")
    if key in RUN_DEFAULTS:
        if section is not None:
            raise FcnnError(f"{where}{key!r} belongs at the top, outside any section")
        if not isinstance(value, bool):
            raise FcnnError(f"{where}{key} must be true or false, not {shown(value)}")
        values[key] = value
        return
    flag = COMMAND_LINE.get(key) or COMMAND_LINE_SPELLINGS.get(key)
    if flag:
        raise FcnnError(f"{where}{key!r}: how a command runs is given on its command line "
                        f"({flag}), not in a configuration file")
    if key not in FIELDS:
        near = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.5)
        raise FcnnError(f"{where}unknown key {key!r}; " + (
            f"did you mean {near[0]!r}?" if near else
            "fcnn train --print-config shows every key"))
    cls, f = FIELDS[key]
    home = next((name for name, c in SECTIONS.items() if c is cls), None)
    if section is not None and section != home:
        place = f"[{home}]" if home else "the top, outside any section"
        raise FcnnError(f"{where}{key!r} belongs in {place}")
    if key in values:
        raise FcnnError(f"{where}{key!r} is given twice")
    try:
        value = typed(f, value, none=False)
    except FcnnError as e:
        raise FcnnError(f"{where}{e}") from None
    if key in PATHS and not value:  # joined to the file's directory, it would name that
        raise FcnnError(f"{where}{key} must be a path, not an empty string")
    if key in PATHS and value != "-":
        value = each_path(value, lambda p: os.path.join(os.path.dirname(path), p))
    if key == "samples":
        value = [_sample_paths(path, s) for s in value]
    values[key] = value


def each_path(value, change):
    """``change`` applied to the path ``value``, or to each file of a DATA of several
    (``a.csv,b.csv``: no file of that whole name)."""
    if "," in value and not os.path.lexists(value):
        return ",".join(change(p.strip()) for p in value.split(",") if p.strip())
    return change(value)


def _sample_tables(path, tables):
    """The samples of a ``[samples]`` section, ``[samples.NAME]`` tables of ``files``,
    ``scale`` and ``where``, as a list of tables with their names, in the order written."""
    samples = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise FcnnError(f"{path}: [samples] {name!r} must be a table: [samples.{name}] "
                            "with files = [...] (and scale, where) on the lines below it")
        samples.append({"name": name, **table})
    return samples


def _sample_paths(path, sample):
    """A sample with its files taken from the configuration file's directory: a table's
    ``files``, or the files of a ``NAME=FILE[,FILE…][*SCALE]`` text."""
    base = os.path.dirname(path)
    if isinstance(sample, dict):
        files = sample.get("files")
        if isinstance(files, str):
            files = os.path.join(base, files)
        elif isinstance(files, list):
            files = [os.path.join(base, f) if isinstance(f, str) else f for f in files]
        return {**sample, "files": files} if "files" in sample else sample
    name, eq, files = sample.partition("=")
    if not eq:
        return sample  # refused with the sample's own message
    return name + "=" + ",".join(os.path.join(base, f.strip()) if f.strip() else f
                                 for f in files.split(","))


def dumps(data, net, train):
    """The text of a configuration file with these options; one that is None (TOML has no
    none) is a comment that says what applies without it. A path read from stdin,
    ``<stdin>``, is a comment too: the command line gives it again."""
    lines = [HEADER.rstrip("\n")]
    samples = data.get("samples")
    for key, value in data.items():
        if value == "<stdin>":
            lines.append(f"# {key}: the run read stdin; give it on the command line again")
        elif key == "samples" and value:
            lines.append("# samples: the [samples.NAME] tables below")
        else:
            lines.append(_line(key, value))
    for sample in samples or ():
        lines += ["", f"[samples.{_key(sample['name'])}]"]
        lines += [_line(k, v) for k, v in sample.items() if k != "name" and v is not None]
    for name, values in (("net", net), ("train", train)):
        lines += ["", f"[{name}]"]
        lines += [_line(key, value) for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _line(key, value):
    if value is not None:
        return f"{key} = {_value(value)}"
    default = unset_default(key)
    return f"# {key}: not set" + (f"; the default: {default}" if default else "")


def unset_default(key):
    """What applies where option ``key`` is not set, as its help text says after "Default:"."""
    found = re.search(r"\b[Dd]efault: (.*)", FIELDS[key][1].metadata["help"]) \
        if key in FIELDS else None
    if not found:
        return None
    text = found[1].rstrip(".")
    if text.count(")") > text.count("("):  # the help's own parenthesis closes after it
        text = text[:text.rindex(")")].rstrip(".")
    return text


def _key(name):
    """A TOML key: bare where it may be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _value(name)


def _value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ("nan" if math.isnan(value) else "inf" if value > 0 else "-inf") \
            if not math.isfinite(value) else repr(value)
    if isinstance(value, str):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):  # bytes no UTF-8 file can hold
            raise FcnnError(f"{value!r} cannot be written in a TOML file (it is not UTF-8)")
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    items = [_value(v) for v in value]
    text = "[" + ", ".join(items) + "]"
    if len(text) <= LINE:
        return text
    rows, row = [], ""
    for item in items:
        if row and len(row) + len(item) + 2 > LINE:
            rows.append(row)
            row = ""
        row += ("" if not row else " ") + item + ","
    return "[\n" + "\n".join("    " + r for r in rows + [row]) + "\n]"
