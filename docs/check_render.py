r"""Check that the built HTML renders in a real browser, offline, with its images and math.

Usage::

    python docs/check_render.py [BUILD_DIR] [--page PATH ...] [--out DIR]

``BUILD_DIR`` defaults to ``docs/_build/html``. Pages checked by default: ``index.html``, the
concepts page (most math), one method page, the benchmarks page (widest tables), one API page
and one executed gallery page. Checks:

1. **Static links.** Every ``<img src>`` / ``srcset`` and every local stylesheet and script
   named by the HTML must exist under the build directory and be non-empty; PNG/JPEG/SVG
   images must be decodable (PNG/JPEG with Pillow when installed, SVG as XML). No script,
   stylesheet or image may come from another host (a CDN): the site must work offline.
2. **No absolute paths, no remote assets, site-wide.** No page of the whole site may
   contain the absolute path of the checkout or of the build (a path printed by an example,
   a ``file://`` link) or load a script, stylesheet or image from another host.
3. **Browser.** Headless Chromium (Debian's ``chromium``; ``apt-get install -y chromium``)
   loads each page in a 1280-px-wide iframe of a probe page and reports, for every ``<img>``,
   whether the browser decoded it (``naturalWidth > 0``); whether MathJax typeset every
   formula (no ``.math`` element without its ``mjx-container``, no raw ``\(`` or ``\[`` left in
   the text outside code); and whether the page is wider than the window (a table, an
   equation or a code block that does not fit at 1280 px).
4. **No request leaves the machine.** Chromium writes a network log (``--log-net-log``) of
   everything the pages asked for; any ``http(s)``/``ws(s)`` request is a failure (and host
   resolution is disabled, so nothing is fetched even then).
5. **Screenshot.** Chromium takes a 1280 × 2000 screenshot, which must be a PNG with visible
   content (not one flat colour). Screenshots are kept in ``--out`` (default: a temporary
   directory) for a human to look at.

Exit status 0 when every check passes, 1 otherwise (each failure is printed). Needs no network.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

DOCS = Path(__file__).resolve().parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-default-apps",
                  "--disable-sync", "--mute-audio", "--hide-scrollbars", "--disable-quic",
                  "--host-resolver-rules=MAP * ~NOTFOUND")


# ------------------------------------------------------------------------------ static checks
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            if a.get("src"):
                self.images.append(a["src"])
            for part in (a.get("srcset") or "").split(","):
                if part.strip():
                    self.images.append(part.strip().split()[0])
        elif tag == "link" and "stylesheet" in (a.get("rel") or "") and a.get("href"):
            self.assets.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.assets.append(a["src"])


def _local(ref: str, page: Path) -> Path | None:
    """The file a relative or file:// reference points to; None for remote/data URLs."""
    url = urlparse(ref)
    if url.scheme in ("http", "https", "data", "mailto") or ref.startswith("//"):
        return None
    return (page.parent / unquote(url.path)).resolve()


def _decodable(path: Path) -> str | None:
    """None if the image decodes, else why not."""
    suffix = path.suffix.lower()
    if suffix == ".svg":
        import xml.etree.ElementTree as ET

        try:
            ET.parse(path)
        except ET.ParseError as e:
            return f"invalid SVG ({e})"
        return None
    if suffix in (".png", ".jpg", ".jpeg", ".gif", ".webp"):
        try:
            from PIL import Image
        except ImportError:
            return None
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception as e:  # noqa: BLE001  (any decoder error means a broken image)
            return f"cannot be decoded ({type(e).__name__}: {e})"
    return None


def static_check(page: Path, root: Path) -> tuple[list[str], int]:
    """(problems, number of images) of one page's images, stylesheets and scripts."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    problems = []
    remote = []
    refs = [(r, True) for r in dict.fromkeys(parser.images)]
    refs += [(r, False) for r in dict.fromkeys(parser.assets)]
    for ref, is_image in refs:
        path = _local(ref, page)
        if path is None:
            remote.append(ref)
            continue
        if not path.is_file():
            problems.append(f"missing {'image' if is_image else 'asset'}: {ref}")
        elif path.stat().st_size == 0:
            problems.append(f"empty {'image' if is_image else 'asset'}: {ref}")
        elif is_image and (why := _decodable(path)):
            problems.append(f"broken image {ref}: {why}")
        elif root not in path.parents:
            problems.append(f"{ref} points outside the build directory")
    remote = [r for r in remote if not r.startswith("data:")]
    if remote:
        problems.append(f"images, scripts or stylesheets from the network (fail offline): "
                        f"{remote}")
    return problems, len(set(parser.images) - set(remote))


def absolute_paths(root: Path) -> list[str]:
    """Pages of the whole site that contain the checkout's or the build's absolute path, or
    that name a script, stylesheet or image on another host."""
    import tempfile as _tempfile

    needles = {str(DOCS.parent), str(root), str(Path(_tempfile.gettempdir())) + os.sep}
    needles.discard(os.sep)
    problems = []
    for page in sorted(root.rglob("*.html")):
        text = page.read_text(encoding="utf-8", errors="replace")
        found = sorted(n for n in needles if n in text)
        if "file://" in text:
            found.append("file://")
        if found:
            problems.append(f"{page.relative_to(root)} contains {', '.join(found)}")
        links = _Links()
        links.feed(text)
        remote = [r for r in links.images + links.assets
                  if _local(r, page) is None and not r.startswith("data:")]
        if remote:
            problems.append(f"{page.relative_to(root)} loads from the network: {remote[:3]}")
    return problems


# ------------------------------------------------------------------------------ browser checks
def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_chromium(chromium: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="invdiff-chromium-") as profile:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


_PROBE = r"""<!DOCTYPE html><html><body><pre id="out">pending</pre>
<iframe id="f" src="{src}" width="1280" height="2000" style="border:0"></iframe>
<script>
function report(out) {{
  document.getElementById('out').textContent = 'RESULT' + JSON.stringify(out) + 'END';
}}
function inspect(frame) {{
  var doc = frame.contentDocument, out = {{images: [], math: 0, untypeset: [], raw: [],
                                         width: 0, client: 0}};
  var imgs = doc.images;
  for (var i = 0; i < imgs.length; i++) {{
    out.images.push({{src: imgs[i].getAttribute('src'),
                      ok: imgs[i].complete && imgs[i].naturalWidth > 0}});
  }}
  var maths = doc.querySelectorAll('span.math, div.math');
  out.math = maths.length;
  for (var j = 0; j < maths.length; j++) {{
    if (!maths[j].querySelector('mjx-container'))
      out.untypeset.push(maths[j].textContent.slice(0, 60));
  }}
  var walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT, null);
  var node;
  while ((node = walker.nextNode())) {{
    if (node.parentElement.closest('pre, code, script, style, textarea, mjx-container')) continue;
    var t = node.textContent, k = Math.max(t.indexOf('\\('), t.indexOf('\\['));
    if (k >= 0) out.raw.push(t.slice(Math.max(0, k - 30), k + 30));
  }}
  out.width = doc.documentElement.scrollWidth;
  out.client = doc.documentElement.clientWidth;
  report(out);
}}
document.getElementById('f').addEventListener('load', function () {{
  var frame = this, waited = 0;
  try {{
    var imgs = frame.contentDocument.images;
    for (var i = 0; i < imgs.length; i++) imgs[i].loading = 'eager';
  }} catch (e) {{ report({{error: String(e)}}); return; }}
  (function poll() {{
    var w = frame.contentWindow;
    var hasMath = frame.contentDocument.querySelector('span.math, div.math');
    var ready = w.MathJax && w.MathJax.startup && w.MathJax.startup.promise;
    if (hasMath && !ready && waited < 6000) {{
      waited += 100; setTimeout(poll, 100); return;
    }}
    var done = hasMath && w.MathJax && w.MathJax.startup ? w.MathJax.startup.promise
                                                          : Promise.resolve();
    done.then(function () {{ setTimeout(function () {{ inspect(frame); }}, 200); }},
              function (e) {{ report({{error: 'MathJax failed: ' + e}}); }});
  }})();
}});
</script></body></html>
"""


def _net_requests(netlog: Path) -> list[str]:
    """The http(s)/ws(s) URLs the *pages* requested, from a Chromium network log
    (``--log-net-log``). Chromium's own background requests (time, sign-in) carry the
    initiator "not an origin" and are not the site's doing; every request a page makes
    carries the page's origin ("null" for file:// pages)."""
    if not netlog.is_file():
        return []
    text = netlog.read_text(encoding="utf-8", errors="replace").rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # Chromium ended before closing the file
        log = json.loads(text.rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = set()
    for event in log["events"]:
        params = event.get("params") or {}
        url = str(params.get("url", ""))
        if (event.get("type") == start and url.split(":", 1)[0] in ("http", "https", "ws", "wss")
                and params.get("initiator") != "not an origin"):
            urls.add(url)
    return sorted(urls)


def browser_check(chromium: str, page: Path, workdir: Path) -> tuple[list[str], int]:
    """(problems, images the browser decoded) for one page, as Chromium sees it: images,
    math typesetting, width at 1280 px, and any request to the network."""
    probe = workdir / f"probe_{abs(hash(page))}.html"
    probe.write_text(_PROBE.format(src=html.escape(page.as_uri())))
    netlog = workdir / f"net_{abs(hash(page))}.json"
    proc = _run_chromium(chromium, ["--allow-file-access-from-files", "--virtual-time-budget=15000",
                                    f"--log-net-log={netlog}", "--dump-dom", probe.as_uri()],
                         timeout=180)
    problems = [f"request to the network: {u}" for u in _net_requests(netlog)]
    text = html.unescape(proc.stdout)
    if "RESULT" not in text:
        return problems + [f"chromium did not report (exit {proc.returncode}): "
                           f"{proc.stderr[-300:]}"], 0
    data = json.loads(text.split("RESULT", 1)[1].split("END", 1)[0])
    if "error" in data:
        return problems + [f"probe could not read the page: {data['error']}"], 0
    bad = list(dict.fromkeys(d["src"] for d in data["images"] if not d["ok"]))
    problems += [f"browser could not display image: {s}" for s in bad]
    if data["untypeset"]:
        problems.append(f"{len(data['untypeset'])} of {data['math']} formulas not typeset by "
                        f"MathJax, e.g. {data['untypeset'][0]!r}")
    if data["raw"]:
        problems.append(f"raw TeX delimiters left in the text: {data['raw'][:2]}")
    if data["width"] > data["client"] + 1:
        problems.append(f"the page is {data['width']} px wide in a {data['client']} px window: "
                        "something does not fit at 1280 px")
    return problems, sum(d["ok"] for d in data["images"])


def screenshot(chromium: str, page: Path, out: Path) -> list[str]:
    """Take a screenshot; problems if it is missing or a flat colour."""
    proc = _run_chromium(chromium, ["--window-size=1280,2000", "--virtual-time-budget=5000",
                                    f"--screenshot={out}", page.as_uri()], timeout=120)
    if not out.is_file() or out.stat().st_size == 0:
        return [f"no screenshot (exit {proc.returncode}): {proc.stderr[-300:]}"]
    try:
        from PIL import Image
    except ImportError:
        return [] if out.stat().st_size > 10_000 else [f"screenshot suspiciously small: {out}"]
    with Image.open(out) as im:
        im = im.convert("RGB")
        colors = im.getcolors(maxcolors=1 << 16)
        lo, hi = im.convert("L").getextrema()
    n_colors = len(colors) if colors is not None else 1 << 16
    if n_colors < 8 or hi - lo < 32:
        return [f"screenshot is (nearly) blank: {n_colors} colours, grey range {lo}..{hi}"]
    return []


# ------------------------------------------------------------------------------ driver
def default_pages(root: Path) -> list[Path]:
    pages = [root / "index.html", root / "concepts.html", root / "methods" / "dmps.html",
             root / "benchmarks.html", root / "generated" / "api" / "invdiff.methods.dmps.html"]
    gallery = root / "auto_examples"
    preferred = gallery / "own_data" / "plot_restore_own_image.html"
    candidates = [preferred] + sorted(p for p in gallery.rglob("plot_*.html") if p != preferred)
    for p in candidates:
        if p.is_file() and "sphx-glr-single-img" in p.read_text(encoding="utf-8"):
            pages.append(p)
            break
    else:
        pages.append(preferred)  # reported as missing / without figure below
    return pages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default=str(DOCS / "_build" / "html"))
    parser.add_argument("--page", action="append", default=None,
                        help="page to check, relative to BUILD (repeatable)")
    parser.add_argument("--out", default=None, help="folder for the screenshots")
    args = parser.parse_args(argv)

    root = Path(args.build).resolve()
    if not (root / "index.html").is_file():
        print(f"no built HTML in {root} (run `make -C docs html` first)")
        return 1
    pages = [root / p for p in args.page] if args.page else default_pages(root)
    chromium = find_chromium()
    if chromium is None:
        print("chromium not found: install it (Debian: apt-get install -y chromium)")
        return 1
    out = Path(args.out or tempfile.mkdtemp(prefix="invdiff-docs-shots-"))
    out.mkdir(parents=True, exist_ok=True)

    failures = 0
    site = absolute_paths(root)
    print(f"[{'ok' if not site else 'FAIL'}] no absolute paths and no remote assets in the "
          f"{sum(1 for _ in root.rglob('*.html'))} pages")
    for p in site:
        print(f"    - {p}")
    failures += bool(site)
    with tempfile.TemporaryDirectory(prefix="invdiff-probe-") as work:
        for page in pages:
            rel = page.relative_to(root) if root in page.parents else page
            problems: list[str] = []
            if not page.is_file():
                problems.append("page not built")
                n_static = n_browser = 0
            else:
                problems, n_static = static_check(page, root)
                found, n_browser = browser_check(chromium, page, Path(work))
                problems += found
                shot = out / (str(rel).replace(os.sep, "_").replace(".html", ".png"))
                problems += screenshot(chromium, page, shot)
                if n_static == 0 and page.name in ("index.html",) or (
                        "auto_examples" in str(rel) and n_static == 0):
                    problems.append("page has no images")
                if "auto_examples" in str(rel) and page.name != "index.html" and \
                        "sphx-glr-single-img" not in page.read_text(
                        encoding="utf-8") and "sphx-glr-multi-img" not in page.read_text(
                        encoding="utf-8"):
                    problems.append("gallery page has no figure (example not executed?)")
            status = "ok" if not problems else "FAIL"
            print(f"[{status}] {rel}: {n_static} distinct images referenced, {n_browser} <img> "
                  "elements displayed by chromium")
            for p in problems:
                print(f"    - {p}")
            failures += bool(problems)
    print(f"screenshots in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
