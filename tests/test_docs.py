"""The examples of README.md and docs/*.md run as written, and their links lead somewhere.

An example is runnable where the line before its code block is ``<!-- runnable -->`` (which
GitHub does not show). A page's runnable blocks run in order as one bash script with ``set -e``
in a temporary directory that holds a copy of ``sample_data/``, with ``fcnn`` on the PATH from
the interpreter running the tests; a ``python`` block runs with that interpreter. The README's
tour runs in every test run; the pages of docs/ in the slow tests.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^```(\w*)\s*$")
SHELLS = {"sh", "bash", "shell"}
README_LINES = 250


def runnable_blocks(text):
    """[(line number, language, code)] of the blocks marked runnable, in the page's order."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        opening = FENCE.match(lines[number + 1]) if number + 1 < len(lines) else None
        language = opening.group(1) if opening else None
        if language not in SHELLS | {"python"}:
            raise ValueError(f"line {number + 1}: {MARKER} is not followed by a ```sh, ```bash "
                             f"or ```python block")
        end = next(k for k in range(number + 2, len(lines)) if lines[k].strip() == "```")
        blocks.append((number + 3, language, "\n".join(lines[number + 2:end])))
    return blocks


def script(name, blocks):
    """One bash script of a page's blocks; each says where it comes from as it starts, so that
    a failure names its block."""
    parts = ["set -e"]
    for line, language, code in blocks:
        parts.append(f"echo '>>> {name}:{line}' >&2")
        if language == "python":
            parts.append(f'"$FCNN_DOCS_PYTHON" - <<\'PYTHON_EXAMPLE\'\n{code}\nPYTHON_EXAMPLE')
        else:
            parts.append(code)
    return "\n".join(parts) + "\n"


def run_page(page, tmp_path, timeout):
    blocks = runnable_blocks(page.read_text())
    assert blocks, f"{page.name} has no runnable examples"
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    env = {**os.environ, "FCNN_DOCS_PYTHON": sys.executable, "NO_COLOR": "1",
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(["bash", "-c", script(page.name, blocks)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        pytest.fail(f"an example of {page.name} failed (exit {done.returncode}); the last block "
                    f"started (>>> page:line) is the one at fault:\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-5000:]}", pytrace=False)


def test_the_readme_tour_runs_as_written(tmp_path):
    run_page(ROOT / "README.md", tmp_path, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if MARKER in p.read_text()],
                         ids=lambda p: p.name)
def test_the_examples_of_a_page_run_as_written(page, tmp_path):
    run_page(page, tmp_path, timeout=1800)


def test_a_failing_example_fails_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"{MARKER}\n```sh\ntrue\n```\n\n{MARKER}\n```sh\nfalse\necho never\n```\n")
    work = tmp_path / "work"
    work.mkdir()
    # the second block failed at its first line: its marker is the last, and "never" not printed
    ran = r"\(exit 1\)[^\n]*\n\n>>> page.md:3\n>>> page.md:8\n$"
    with pytest.raises(pytest.fail.Exception, match=ran):
        run_page(page, work, timeout=60)


def test_a_marker_must_stand_before_a_runnable_block():
    assert runnable_blocks(f"{MARKER}\n```python\nprint(1)\n```\n") == [
        (3, "python", "print(1)")]
    with pytest.raises(ValueError, match="line 1"):
        runnable_blocks(f"{MARKER}\n```text\nfcnn --help\n```\n")
    for page in [ROOT / "README.md", *PAGES]:
        runnable_blocks(page.read_text())  # raises on a stray marker


def test_the_readme_is_short_and_leads_to_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LINES
    for page in PAGES:
        assert f"docs/{page.name}" in readme, f"README.md has no link to docs/{page.name}"


def anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, each space a
    hyphen."""
    text = re.sub(r"<[^>]+>", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_link_leads_to_a_file_and_heading_that_exist(page):
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to {target}: no such file"
        if fragment and linked.suffix == ".md":
            assert fragment in anchors(linked), f"{page.name}: link to {target}: no such heading"
