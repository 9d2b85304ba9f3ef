"""Samples: the files of each simulated process (``--sample NAME=FILE[,FILE…][*SCALE]``, a
``[samples]`` table of a configuration file), or the several files of one DATA, as lists of
files with what a run records of each (path, size, SHA-256).

A sample's files are names, globs and directories, expanded here in a stable order: a glob's
matches and a directory's table files sorted by name, the items in the order given. Plain
Python: a bad sample is refused before any table is read.
"""

import glob
import hashlib
import math
import os
import re
from dataclasses import dataclass, field

from fcnn_cli.core.errors import FcnnError, shown

# Keys of a sample written as a table (a configuration file's [samples.NAME]).
KEYS = ("files", "scale", "where")
MAX_SAMPLES = 1000  # classes past this are a typo, not an analysis
HASH_BLOCK = 1 << 20
NAME = re.compile(r"[^\s=,*]+")  # a class name: no blanks, and none of the syntax's characters
NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*|\s*[-+]?(inf|nan)\s*",
                    re.IGNORECASE)  # a scale, as --sample's text writes it


@dataclass
class Sample:
    """One sample: its name (the class of its rows; None for DATA's files), its files as given
    (``patterns``) and as found (``files``), the scale every event's weight is multiplied by,
    and a selection of its own."""

    name: str | None
    patterns: list
    scale: float = 1.0
    where: str | None = None
    files: list = field(default_factory=list)  # paths, once found
    records: list | None = None  # of each file once recorded (stdin: none): see record()
    whole: bool = False  # DATA's directory streamed as one source, which finds its files

    def find(self):
        """Look for the files of the patterns."""
        self.files = list(self.patterns) if self.whole else find(self.patterns)
        return self

    def recorded(self, path):
        """The record of ``path`` as it is now (None for stdin or a pipe, which cannot be
        read twice). A file of which the sample holds a record already (a run that resumes)
        must be as it was: one that is not is refused, before any training on it."""
        if not recordable(path):
            return None
        now = record(path)
        then = next((r for r in self.records or [] if r["path"] == now["path"]), None)
        if then is not None and (then["size"], then["sha256"]) != (now["size"], now["sha256"]):
            raise FcnnError(f"{now['path']}: not the file this run started with (its size or "
                            "content differ); cannot resume")
        return now

    def record(self):
        """Record each file's path, size and SHA-256 (read once, in blocks)."""
        self.records = [record(f) for f in self.files if f != "-"]
        return self

    def to_dict(self):
        return {"name": self.name,
                "files": list(self.files) if self.records is None else self.records,
                "scale": self.scale, "where": self.where}


def parse(item):
    """A Sample from ``--sample``'s text ``NAME=FILE[,FILE…][*SCALE]`` or from a table
    ``{"name", "files", "scale", "where"}``; its files are not looked for yet."""
    if isinstance(item, dict):
        return _of_table(item)
    if not isinstance(item, str) or "=" not in item:
        raise FcnnError(f"sample {shown(item)}: write NAME=FILE[,FILE…][*SCALE]", ("samples",))
    name, files = (part.strip() for part in item.split("=", 1))
    label = f"sample {item!r}"
    files, scale = _scale_of(files, label)
    return Sample(_name(name, label), _patterns(files.split(","), label), scale)


def _of_table(item):
    name = item.get("name")
    unknown = sorted(set(item) - {"name", *KEYS})
    if unknown:
        raise FcnnError(f"sample {name!r}: unknown key {unknown[0]!r}; a sample takes "
                        f"{', '.join(KEYS)}", ("samples",))
    files = item.get("files")
    files = [files] if isinstance(files, str) else files
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise FcnnError(f"sample {name!r}: files must be a file name or a list of them, not "
                        f"{shown(files)}", ("samples",))
    scale, where = item.get("scale", 1.0), item.get("where")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise FcnnError(f"sample {name!r}: scale must be a number, not {shown(scale)}",
                        ("samples",))
    if where is not None and not (isinstance(where, str) and where.strip()):
        raise FcnnError(f"sample {name!r}: where must be an expression, not {shown(where)}",
                        ("samples",))
    label = f"sample {name!r}"
    return Sample(_name(name, label), _patterns(files, label), _checked_scale(scale, label),
                  where)


def _scale_of(files, label):
    """(the files, the scale): a last ``*NUMBER`` is the scale, other stars are globs. Where
    the last file's text so read names no file but the whole of it as a glob does
    (``ttbar_*2018``), the star is a glob's; where both name files, the reading is refused."""
    head, star, tail = files.rpartition("*")
    if not (star and NUMBER.fullmatch(tail)):
        return files, 1.0
    whole, cut = files.split(",")[-1].strip(), head.split(",")[-1].strip()
    if _globs_files(whole, cut):
        if _names_files(cut):
            raise FcnnError(f"{label}: ambiguous: {whole!r} names files, and so does {cut!r} "
                            f"at scale {tail.strip()}; write the scale after the glob "
                            f"('{whole}*1'), or the sample as a table", ("samples",))
        return files, 1.0
    return head, _checked_scale(float(tail), label)


def _globs_files(whole, cut):
    """Whether ``whole``, a file's text whose last star is a glob's (not a selector's), names
    files."""
    from fcnn_cli.data.tables import input_file

    return len(input_file(whole)) > len(cut) and _names_files(whole)


def _names_files(pattern):
    """Whether a file's text (a name, glob or directory; a selector aside) names files."""
    file = _file_part(pattern)
    if os.path.lexists(file):
        return True
    return glob.has_magic(file) and any(os.path.isfile(f) for f in glob.iglob(file))


def _checked_scale(scale, label):
    if not (math.isfinite(scale) and scale > 0):
        raise FcnnError(f"{label}: the scale must be a finite number > 0, not {scale}",
                        ("samples",))
    return float(scale)


def _name(name, label):
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise FcnnError(f"{label}: the sample needs a name without blanks, '=', ',' or '*' "
                        "(the class of its rows)", ("samples",))
    return name


def _patterns(files, label):
    patterns = [f.strip() for f in files]
    if not patterns or not all(patterns):
        raise FcnnError(f"{label}: name its files (FILE, FILE,FILE, a glob or a directory)",
                        ("samples",))
    return patterns


def of_options(items):
    """The Samples of ``--sample`` items (texts or tables), each name once."""
    found = [parse(item) for item in items]
    if len(found) > MAX_SAMPLES:
        raise FcnnError(f"{len(found)} samples: at most {MAX_SAMPLES}", ("samples",))
    seen = set()
    for sample in found:
        if sample.name in seen:
            raise FcnnError(f"sample {sample.name!r} is given twice", ("samples",))
        seen.add(sample.name)
    return found


def data_patterns(data):
    """The patterns of DATA's files: several for a comma-separated list, one for a glob or a
    directory; None for one table, read as ever (an existing file of that whole name, commas
    and all, is one)."""
    text = str(data)
    if text == "-" or os.path.lexists(text) and not os.path.isdir(text):
        return None
    patterns = [p.strip() for p in text.split(",") if p.strip()]
    if len(patterns) == 1 and not (glob.has_magic(text) or os.path.isdir(text)):
        return None
    return patterns


def find(patterns):
    """The files of ``patterns`` (names, globs, directories; a ``:selector`` of ROOT, HDF5 and
    FITS files kept after each file found), each once, in order."""
    files = [f for p in patterns for f in _matches(p)]
    _once([(None, f) for f in files])
    return files


def check_once(samples):
    """Refuse a file found in two samples."""
    _once([(s.name, f) for s in samples for f in s.files])


def _once(files):
    """Refuse a file (through links) given twice among ``files``, [(sample name, path)]."""
    seen = {}
    for name, f in files:
        key = os.path.realpath(_file_part(f)), _selector(f)
        if key in seen:
            where = "" if seen[key][0] == name else \
                f" in sample {seen[key][0]!r} and in sample {name!r}"
            raise FcnnError(f"{f}: given twice{where} (as {seen[key][1]!r} too): its rows "
                            "would count twice", ("samples",))
        seen[key] = (name, f)


def _matches(pattern):
    from fcnn_cli.data.tables import split_selector

    if os.path.isdir(pattern):
        return _directory_tables(pattern)
    file, selector = split_selector(pattern)
    if not glob.has_magic(file) or os.path.lexists(file):  # a file named run[1].root is one
        return [pattern]
    found = sorted(f for f in glob.glob(file) if os.path.isfile(f))
    if not found:
        raise FcnnError(f"{file}: no file matches", ("samples",))
    return [f if selector is None else f"{f}:{selector}" for f in found]


# A directory's notes are .txt files as often as its tables are: a .txt table is read when
# named or globbed, never found in a directory.
NOT_IN_DIRECTORIES = (".txt",)


def _directory_tables(directory):
    """The table files directly in ``directory`` (by their suffix, .txt aside), sorted by
    name."""
    from fcnn_cli.data.tables import table_format

    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise FcnnError(f"{directory}: cannot list the directory: {e.strerror or e}") from None
    files = []
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith((".", "_")) or name.lower().endswith(NOT_IN_DIRECTORIES) or \
                not os.path.isfile(path):
            continue
        try:
            table_format(path)
        except FcnnError:
            continue  # not a table: a README, a log
        files.append(path)
    if not files:
        raise FcnnError(f"{directory}: holds no table files")
    return files


def _file_part(path):
    from fcnn_cli.data.tables import input_file

    return input_file(path)


def _selector(path):
    from fcnn_cli.data.tables import split_selector

    return split_selector(path)[1]


def recordable(path):
    """Whether a run records ``path``: a regular file, not stdin nor a pipe (which cannot be
    read twice)."""
    return path != "-" and os.path.isfile(_file_part(path))


def record(path):
    """What a run records of a file it read: its absolute path (with any ``:selector``), its
    size and the SHA-256 of its bytes."""
    file = _file_part(path)
    h = hashlib.sha256()
    try:
        with open(file, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            while block := f.read(HASH_BLOCK):
                h.update(block)
    except OSError as e:
        raise FcnnError(f"{file}: cannot read: {e.strerror or e}") from None
    selector = _selector(path)
    where = os.path.abspath(file) + (f":{selector}" if selector is not None else "")
    return {"path": where, "size": size, "sha256": h.hexdigest()}
