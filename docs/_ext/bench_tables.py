"""Turn ``benchmarks/results/*.md`` into reStructuredText includes for the docs.

The benchmark scripts write Markdown (headings, paragraphs, pipe tables, code fences and PNG
plots). Sphinx reads reStructuredText, so :func:`write` converts each results file into
``generated/bench/<name>.rst.inc`` (pipe tables -> ``list-table``, headings -> rubrics, so
they cannot clash with the section levels of the page that includes them; inline Markdown
is escaped so that ``|``, ``*`` or ``_`` in a number never become RST markup) and copies the
images it references next to it. A results file that does not exist yet gives a short note
saying which command produces it, so the docs build before the benchmarks have run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

#: results file stem -> command that writes it (shown when the file is missing)
RESULTS = {
    "validity": "python -m benchmarks.validity",
    "restoration": "python -m benchmarks.restoration",
    "quantized_cs": "python -m benchmarks.quantized_cs",
    "speed": "python -m benchmarks.speed",
    "coverage": "python -m benchmarks.coverage",
}

_CODE = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*([^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$")


def _escape(text: str) -> str:
    return re.sub(r"([\\*_|`<>\[\]])", r"\\\1", text)


def inline(text: str) -> str:
    """Markdown inline text -> safe RST (code, bold and links kept; everything else literal)."""
    out, pos = [], 0
    tokens = []
    for m in _CODE.finditer(text):
        tokens.append((m.start(), m.end(), f"``{m.group(2).strip()}``"))
    for m in _LINK.finditer(text):
        if not any(s <= m.start() < e for s, e, _ in tokens):
            label, url = m.group(1), m.group(2)
            if re.match(r"https?://", url):
                tokens.append((m.start(), m.end(), f"`{_escape(label)} <{url}>`__"))
            else:  # a relative link to a repository file: keep the label only
                tokens.append((m.start(), m.end(), _escape(label)))
    for m in _BOLD.finditer(text):
        if not any(s <= m.start() < e for s, e, _ in tokens):
            tokens.append((m.start(), m.end(), f"**{_escape(m.group(1))}**"))
    for m in _ITALIC.finditer(text):
        if not any(s <= m.start() < e for s, e, _ in tokens):
            tokens.append((m.start(), m.end(), f"*{_escape(m.group(1))}*"))
    for start, end, rst in sorted(tokens):
        if start < pos:
            continue
        # RST inline markup must not touch word characters: separate with an escaped space
        before = "\\ " if start > 0 and re.match(r"\w", text[start - 1]) else ""
        after = "\\ " if end < len(text) and re.match(r"\w", text[end]) else ""
        out += [_escape(text[pos:start]), before, rst, after]
        pos = end
    out.append(_escape(text[pos:]))
    return "".join(out)


def _cells(row: str) -> list[str]:
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def _is_rule(row: str) -> bool:
    return bool(re.fullmatch(r"\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*", row))


def _table(rows: list[str]) -> list[str]:
    header = _cells(rows[0])
    body = [_cells(r) for r in rows[2:]]
    n = len(header)
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [header, *body]:
        cells = (cells + [""] * n)[:n]
        lines.append(f"   * - {inline(cells[0]) or ' '}")
        lines += [f"     - {inline(c) or ' '}" for c in cells[1:]]
    return lines + [""]


def convert(md: str, src_dir: Path, out_dir: Path, prefix: str,
            url: str = "/generated/bench") -> str:
    """Markdown text -> RST text; images are copied into ``out_dir`` as ``prefix_*`` and
    referenced as ``url/prefix_*`` (a docs-root path)."""
    lines = relative_paths(md).splitlines()
    out: list[str] = []
    para: list[str] = []
    i = 0

    def flush():
        if para:
            out.extend([inline(" ".join(p.strip() for p in para)), ""])
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            flush()
            lang = line.strip().strip("`").strip() or "text"
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out += [f".. code-block:: {lang}", ""] + [f"   {b}" for b in block] + [""]
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _is_rule(lines[i + 1]):
            flush()
            rows = [line, lines[i + 1]]
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += _table(rows)
            continue
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            flush()
            out += [f".. rubric:: {inline(m.group(2).strip())}", ""]
        elif m := _IMAGE.match(line.strip()):
            flush()
            src = (src_dir / m.group(2)).resolve()
            if src.is_file():
                dst = out_dir / f"{prefix}_{src.name}"
                shutil.copyfile(src, dst)
                # "/..." is the docs source root for Sphinx, whichever page includes this
                alt = m.group(1) or src.stem
                out += [f".. image:: {url}/{dst.name}", f"   :alt: {alt}", ""]
        elif _ITEM.match(line):
            flush()
            i = _list(lines, i, out)
            continue
        elif not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return "\n".join(out) + "\n"


_ITEM = re.compile(r"^(\s*)([-*+]|\d+\.)\s+(.*)$")


def _list(lines: list[str], i: int, out: list[str]) -> int:
    """A Markdown list (items, wrapped continuation lines, sub-items indented by two or
    more spaces) from line ``i`` as RST bullet lists; returns the index after it."""
    items: list[list] = []  # [level, text]
    while i < len(lines):
        line = lines[i]
        m = _ITEM.match(line)
        if m:
            items.append([1 if len(m.group(1)) >= 2 else 0, m.group(3).strip()])
        elif line.strip() and line[:1].isspace() and items:
            items[-1][1] += " " + line.strip()  # a wrapped line of the item above
        else:
            break
        i += 1
    level = 0
    for lvl, text in items:
        if lvl != level:
            out.append("")
            level = lvl
        out.append(("  " * lvl) + f"* {inline(text)}")
    out.append("")
    return i


#: Absolute paths of a checkout (``/home/me/invdiff/benchmarks/x.py``): shown relative.
_ABSOLUTE = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+?(?=(?:benchmarks|invdiff|invdiff_models|docs|"
                       r"examples|tests)/)")


def relative_paths(text: str) -> str:
    """``text`` with the absolute paths of repository files made repository-relative."""
    return _ABSOLUTE.sub("", text)


def write(docs: Path, results: Path) -> dict[str, bool]:
    """Write ``generated/bench/<name>.rst.inc`` for every :data:`RESULTS` entry."""
    out_dir = docs / "generated" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for name, command in RESULTS.items():
        md = results / f"{name}.md"
        if md.is_file():
            text = convert(md.read_text(), md.parent, out_dir, name)
            text = (f"*From* ``benchmarks/results/{name}.md`` *(made by* ``{command}``\\ *).*"
                    f"\n\n{text}")
        else:
            text = (f".. note::\n\n   ``benchmarks/results/{name}.md`` has not been generated "
                    f"in this checkout yet; ``{command}`` writes it (and "
                    f"``{command} --quick`` a fast, smaller version).\n")
        found[name] = md.is_file()
        target = out_dir / f"{name}.rst.inc"
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
    return found


#: ``benchmarks/README.md`` sections shown on the Benchmarks page: (include name, titles).
README_PARTS = (
    ("readme_commands", ["Commands"]),
    ("readme_verdicts", ["Where our numbers agree and disagree with the papers"]),
    ("readme_latest", ["Latest full-run results (2026-11-29, bundled priors, CPU)"]),
    ("readme_setup", ["`restoration`", "`quantized_cs`"]),
)


def write_readme(docs: Path, readme: Path) -> None:
    """``generated/bench/readme_*.rst.inc``: parts of the benchmarks README, converted.

    A section is found by its ``##`` title; ``Latest full-run results`` by its prefix, so
    that a new run date does not drop it from the site."""
    out_dir = docs / "generated" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    md = readme.read_text() if readme.is_file() else ""
    titles = [m.group(1).strip() for m in re.finditer(r"^##\s+(.*)$", md, re.M)]
    for name, wanted in README_PARTS:
        wanted = [next((t for t in titles if t.startswith(w.split(" (")[0])), w) for w in wanted]
        part = markdown_sections(md, wanted)
        text = convert(part, readme.parent, out_dir, name) if part.strip() else (
            f".. note::\n\n   ``benchmarks/README.md`` has no section {', '.join(wanted)}.\n")
        target = out_dir / f"{name}.rst.inc"
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)


def write_model_cards(docs: Path, bundled: Path) -> list[str]:
    """``generated/models/<name>.rst.inc`` from ``invdiff_models/bundled/<name>.md``."""
    out_dir = docs / "generated" / "models"
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for md in sorted(bundled.glob("*.md")):
        text = convert(md.read_text(), md.parent, out_dir, md.stem, url="/generated/models")
        target = out_dir / f"{md.stem}.rst.inc"
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
        names.append(md.stem)
    return names


def markdown_sections(md: str, titles: list[str]) -> str:
    """The Markdown of the ``## <title>`` sections of ``md`` named in ``titles``, in order."""
    parts, current, keep = [], [], False
    for line in md.splitlines():
        m = re.match(r"^##\s+(.*)$", line)
        if m:
            if keep:
                parts.append("\n".join(current))
            keep, current = m.group(1).strip() in titles, []
            continue
        if keep:
            current.append(line)
    if keep:
        parts.append("\n".join(current))
    return "\n\n".join(parts)
