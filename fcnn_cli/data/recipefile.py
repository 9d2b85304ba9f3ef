"""A recipe read back from a checkpoint or a run: untrusted input. Every part must be of its
kind and bounded (each text no longer than an expression may be, each list no longer than a
recipe may hold) and every expression is parsed again, so that one that is not of the
language, or too long or deep, is refused in one line before anything is applied."""

from fcnn_cli.core.errors import FcnnError, shown
from fcnn_cli.data import samples as sampling
from fcnn_cli.data.expressions import MAX_LENGTH
from fcnn_cli.data.recipe import MAX_DEFINITIONS, Recipe

ENTRIES = {"samples", "label", "objects", "expanded", "define", "where", "weight", "ranges"}
MAX_FILES = 1 << 20  # of one sample


def read(d):
    """The :class:`~fcnn_cli.data.recipe.Recipe` of ``Recipe.to_dict``'s dict ``d``."""
    _need(isinstance(d, dict), "recipe is not an object")
    unknown = sorted(set(d) - ENTRIES)
    _need(not unknown, f"recipe: unknown entry {shown(unknown[:1])}")
    samples = [_sample(s) for s in _list(d.get("samples"), "samples", sampling.MAX_SAMPLES)]
    expanded = d.get("expanded")
    recipe = Recipe(samples, [_text(o, "object") for o in _list(d.get("objects"), "objects")],
                    None if expanded is None else _pairs(expanded, "expanded"),
                    _pairs(d.get("define") or [], "define"), _optional(d.get("where"), "where"),
                    _optional(d.get("weight"), "weight"), _optional(d.get("label"), "label"))
    _need(recipe.objects == [] or recipe.expanded is not None,
          "recipe: objects without their columns")
    try:
        recipe.check()
    except FcnnError as e:
        raise FcnnError(f"recipe: {e}") from None
    recipe.ranges = _ranges(d.get("ranges"), recipe)
    return recipe


def _ranges(value, recipe):
    """Raw columns' [smallest, largest] values: finite numbers in order (none before fcnn
    recorded them), of at most as many columns as the (checked) ``recipe``'s definitions
    read: one definition may read many (t_first those of every station)."""
    value = {} if value is None else value
    read = len({n for _, expression in recipe.definitions() for n in expression.names})
    _need(isinstance(value, dict) and len(value) <= read,
          f"recipe: ranges is not an object of at most {read} columns (those its definitions "
          "read)")
    for name, pair in value.items():
        numbers = isinstance(pair, list) and len(pair) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < float("inf")
            for v in pair)  # NaN is not < inf
        _need(isinstance(name, str) and len(name) <= MAX_LENGTH and numbers
              and pair[0] <= pair[1], f"recipe: the range of {shown(name)} is not "
              "[smallest, largest]")
    return {name: [float(v) for v in pair] for name, pair in value.items()}


def _need(ok, what):
    if not ok:
        raise FcnnError(what)


def _list(value, what, limit=MAX_DEFINITIONS):
    value = [] if value is None else value
    _need(isinstance(value, list), f"recipe: {what} is not a list")
    _need(len(value) <= limit, f"recipe: {len(value)} {what}, more than {limit}")
    return value


def _bounded(value):
    return isinstance(value, str) and 0 < len(value) <= MAX_LENGTH


def _text(value, what):
    _need(_bounded(value), f"recipe: a {what} is {shown(value)}, not text of at most "
                           f"{MAX_LENGTH} characters")
    return value


def _optional(value, what):
    return None if value is None else _text(value, what)


def _pairs(value, what):
    pairs = _list(value, what)
    _need(all(isinstance(p, list) and len(p) == 2 and all(map(_bounded, p)) for p in pairs),
          f"recipe: {what} is not a list of [name, expression]")
    return [tuple(p) for p in pairs]


def _sample(d):
    _need(isinstance(d, dict), "recipe: a sample is not an object")
    name = d.get("name")
    _need(name is None or _bounded(name) and sampling.NAME.fullmatch(name),
          f"recipe: a sample's name is {shown(name)}")
    scale = d.get("scale")
    _need(isinstance(scale, float) and 0 < scale < float("inf"),
          f"recipe: sample {name!r}: scale {shown(scale)} is not a number > 0")
    records = [_file(f, name) for f in _list(d.get("files"), "files", MAX_FILES)]
    where = _optional(d.get("where"), "selection")
    paths = [r["path"] for r in records]
    return sampling.Sample(name, paths, scale, where, list(paths), records)


def _file(record, name):
    _need(isinstance(record, dict) and set(record) == {"path", "size", "sha256"} and
          _bounded(record["path"]) and type(record["size"]) is int and
          isinstance(record["sha256"], str) and len(record["sha256"]) == 64,
          f"recipe: sample {name!r}: a file is not {{path, size, sha256}}")
    return record
