"""Build the browsable documentation: the API reference of both public APIs and the guide pages.

Run by ``nox -s docs`` (which installs both distributions and pdoc): ``python tools/build_docs.py
OUTDIR``. The API reference is pdoc's rendering of the docstrings of the public modules
(:data:`MODULES`); the guide is README.md and docs/*.md rendered with the Markdown library pdoc
uses. Any warning (pdoc's, or an import's) is an error, and so is a guide link to a page that was
not built: the build fails instead of publishing a broken page.

Docstrings cite other objects with Sphinx roles (``:class:`~kisclient.KISClient```); pdoc leaves
roles as literal text, so :func:`_roles_to_code` turns each into inline code naming the object,
which pdoc's renderer links to the object's entry.
"""

from __future__ import annotations

import html
import pathlib
import re
import shutil
import sys
import warnings

import markdown2  # type: ignore[import-untyped]  # a dependency of pdoc
import pdoc
import pdoc.docstrings
import pdoc.render
import pdoc.render_helpers

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The public modules of both distributions (everything else is private, ``_``-prefixed).
MODULES = (
    "kisclient",
    "kisclient.testing",
    "hantu_sched",
    "hantu_sched.pipeline",
    "hantu_sched.testing",
)
#: The guide pages, in the order the index lists them.
GUIDE = ("README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md"))))

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const|type):`~?([^`]+)`")
_MD_LINK = re.compile(r"(\]\()([^)#\s]+\.md)(#[^)]*)?\)")
_HREF = re.compile(r'href="([^"#:]+\.html)(?:#[^"]*)?"')

_rst = pdoc.docstrings.rst


def _roles_to_code(contents: str, source_file: pathlib.Path | None) -> str:
    """pdoc's reStructuredText conversion, with Sphinx roles made into linkable inline code."""
    return _rst(_ROLE.sub(r"`\1`", contents), source_file)


def _guide_name(path: str) -> str:
    return pathlib.PurePosixPath(path).stem + ".html"


def _render_guide(out: pathlib.Path) -> list[str]:
    """Render the guide pages into *out*/guide; return the problems found (broken links)."""
    guide = out / "guide"
    guide.mkdir(parents=True)
    built = {_guide_name(p) for p in GUIDE}
    problems: list[str] = []
    nav = " · ".join(
        f'<a href="{_guide_name(p)}">{html.escape(pathlib.PurePosixPath(p).stem)}</a>'
        for p in GUIDE
    )
    for page in GUIDE:
        text = (ROOT / page).read_text(encoding="utf-8")
        # Links between guide pages point at the rendered pages.
        text = _MD_LINK.sub(lambda m: f"{m[1]}{_guide_name(m[2])}{m[3] or ''})", text)
        body = markdown2.markdown(
            text,
            extras=pdoc.render_helpers.markdown_extensions,
            link_patterns=pdoc.render_helpers.markdown_link_patterns,
        )
        for target in _HREF.findall(body):
            if target not in built:
                problems.append(f"{page}: link to {target}, which is not a guide page")
        title = html.escape(pathlib.PurePosixPath(page).stem)
        (guide / _guide_name(page)).write_text(
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{title}</title>"
            "<style>body{max-width:52rem;margin:2rem auto;padding:0 1rem;"
            "font-family:system-ui,sans-serif;line-height:1.5}"
            "pre,code{background:#f4f4f4}pre{padding:.6rem;overflow:auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .4rem}"
            "</style></head><body>"
            f"<nav><a href='../index.html'>API reference</a> · {nav}</nav><hr>"
            f"{body}</body></html>\n",
            encoding="utf-8",
        )
    return problems


def _write_index(out: pathlib.Path) -> None:
    api = "".join(
        f"<li><a href='{m.replace('.', '/')}.html'><code>{m}</code></a></li>" for m in MODULES
    )
    guide = "".join(
        f"<li><a href='guide/{_guide_name(p)}'>{html.escape(p)}</a></li>" for p in GUIDE
    )
    (out / "index.html").write_text(
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>kisclient and hantu-sched</title></head>"
        "<body style='max-width:52rem;margin:2rem auto;font-family:system-ui,sans-serif'>"
        "<h1>kisclient and hantu-sched</h1>"
        f"<h2>API reference</h2><ul>{api}</ul><h2>Guide</h2><ul>{guide}</ul></body></html>\n",
        encoding="utf-8",
    )


def main(argv: list[str]) -> int:
    out = pathlib.Path(argv[1] if len(argv) > 1 else ROOT / "build" / "docs")
    shutil.rmtree(out, ignore_errors=True)
    warnings.simplefilter("error")  # pdoc reports unrenderable docstrings as warnings
    pdoc.docstrings.rst = _roles_to_code
    pdoc.render.configure(docformat="restructuredtext", show_source=False)
    pdoc.pdoc(*MODULES, output_directory=out)
    missing = [m for m in MODULES if not (out / f"{m.replace('.', '/')}.html").is_file()]
    problems = _render_guide(out) + [f"no page for module {m}" for m in missing]
    _write_index(out)
    for problem in problems:
        print(f"docs: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"docs: {len(MODULES)} modules and {len(GUIDE)} guide pages in {out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
