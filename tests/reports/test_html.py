"""The HTML page: self-contained and escaped, and as headless Chromium shows it."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest

from harness.reports.document import to_document
from harness.reports.html import to_html
from harness.reports.publish import write_reports


def test_html_is_self_contained_and_escaped(cells):
    doc = to_document(cells)
    doc["cells"][0]["output"] = "<script>alert(1)</script>"
    page = to_html(doc)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for external in ("<link", "<script", "src=", "url(", "@import"):
        assert external not in page


def test_each_cell_shows_what_the_server_saw(cells):
    page = to_html(to_document(cells))
    cell = re.search(r'<td class="cell [^"]*"[^>]*data-client="attended" data-scenario="inspected-continue".*?</td>', page, re.S)
    assert cell and "<b>server saw interception</b> yes <b>grade</b> A" in cell.group(0)
    assert "<dt>server saw interception</dt><dd>yes</dd>" in page and "<dt>TLS grade at the server</dt>" in page


# -- what a person sees: the page in real headless Chromium ------------------------------------

PROBE_SCRIPT = """<script>
const cells = [...document.querySelectorAll('td.cell[data-verdict]')].map(td => {
  const s = getComputedStyle(td), r = td.getBoundingClientRect();
  return {scenario: td.dataset.scenario, client: td.dataset.client, verdict: td.dataset.verdict,
          bg: s.backgroundColor, edge: s.borderLeftColor, text: td.innerText, width: r.width, height: r.height};
});
const pre = document.createElement('pre'); pre.id = 'computed';
pre.textContent = JSON.stringify({cells, title: document.title, text: document.body.innerText});
document.body.appendChild(pre);
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is missing; .ci/run installs Debian's chromium package")
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")


def run_chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1200", *args],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def rgb(css: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", css)[:3])


def test_html_in_chromium(cells, tmp_path, tls_lab):
    write_reports(tmp_path, cells, lab=json.loads(tls_lab.to_json()), seconds=2.0)
    probe_page = tmp_path / "probe.html"
    probe_page.write_text((tmp_path / "report.html").read_text().replace("</body>", PROBE_SCRIPT + "</body>"))
    dom = run_chromium(tmp_path, "--dump-dom", probe_page.as_uri()).stdout
    seen = json.loads(html.unescape(re.search(r'<pre id="computed">(.*?)</pre>', dom, re.S).group(1)))
    assert seen["title"] == f"TLS-inspection lab: {len(cells) - 1} passed, 1 failed"
    by = {(c["scenario"], c["client"]): c for c in seen["cells"]}
    assert len(by) == len(cells)
    for c in seen["cells"]:
        r, g, b = rgb(c["bg"])
        er, eg, eb = rgb(c["edge"])
        assert c["width"] > 100 and c["height"] > 40, c
        if c["verdict"] == "PASS":
            assert g > r and g > b and eg > er and c["text"].startswith("PASS"), c
        else:
            assert r > g and r > b and er > eg and c["text"].startswith("FAIL"), c
    org = f"issuer CN={tls_lab.org_issuer_cn}"
    refused = by[("inspected-continue", "curl-pinned")]["text"]
    assert "refused" in refused and org in refused and "pin no match (forged key)" in refused
    unpinned = by[("inspected-continue", "curl-unpinned")]["text"]
    assert "accepted-inspection" in unpinned and "proxy read 1 request + authorization" in unpinned
    assert "issuer CN=Lab Public Intermediate CA" in by[("exception-wildcard", "curl-pinned")]["text"]
    assert "pin match" in by[("direct", "beam")]["text"]
    assert "expected accepted-inspection" in by[("inspected-continue", "mislabelled")]["text"]
    # The failure's details are open and say what the proxy could not read; nothing secret is visible.
    assert "but read nothing: the client finished the handshake, then sent nothing" in seen["text"]
    assert not any(cell.secret in seen["text"] for cell in cells)


# -- at a glance: the summary first, one line per failure, a failures-only switch, 100+ cells at 1400 px ----------

GLANCE_SCRIPT = """<script>
const visible = el => !!el && el.getClientRects().length > 0;
function look() {
  const failing = [...document.querySelectorAll('table.failures tbody tr')];
  return {
    failures: failing.map(tr => tr.innerText),
    visibleFailures: failing.filter(visible).length,
    passDetails: [...document.querySelectorAll('details.cell.pass')].filter(visible).length,
    failDetails: [...document.querySelectorAll('details.cell.fail')].filter(visible).length,
    passRows: [...document.querySelectorAll('tr.all-pass')].filter(visible).length,
    rows: [...document.querySelectorAll('table.matrix tbody tr')].filter(visible).length,
    firstDetail: document.querySelector('details.cell').id,
  };
}
const counts = [...document.querySelectorAll('.count')].map(c => c.innerText.replace(/\\s+/g, ' ').trim());
const topOf = sel => document.querySelector(sel).getBoundingClientRect().top;
const overflowing = [...document.querySelectorAll('td.cell, table.list td')]
  .filter(td => td.scrollWidth > td.clientWidth + 1).map(td => td.innerText.slice(0, 60));
const before = look();
document.querySelector('label.toggle').click();  // a person clicks "Show failures only"
const after = look();
const pre = document.createElement('pre'); pre.id = 'computed';
pre.textContent = JSON.stringify({counts, before, after, overflowing,
  summary: document.querySelector('main').innerText.split('Matrix')[0],
  topCounts: topOf('.counts'), topFailures: topOf('#failures'), topMatrix: topOf('table.matrix'),
  pageWidth: document.documentElement.scrollWidth, fontSize: getComputedStyle(document.body).fontSize});
document.body.appendChild(pre);
</script>"""


def many_cells(doc: dict, copies: int) -> dict:
    """``doc`` with its cells repeated under ``copies`` scenario names each: a matrix of 100+ cells."""
    big = json.loads(json.dumps(doc))
    big["cells"] = []
    for n in range(copies):
        for cell in doc["cells"]:
            cell = json.loads(json.dumps(cell))
            cell["scenario"] = f"{cell['scenario']}-{n:02d}"
            big["cells"].append(cell)
    big["passed"] = sum(c["verdict"] == "PASS" for c in big["cells"])
    big["failed"] = len(big["cells"]) - big["passed"]
    big["not_run"] = [{"scenario": "transparent-inspected-continue", "client": c,
                       "reason": "the transparent gateway needs root on Linux; run as root or skip these rows."}
                      for c in ("attended", "beam")]
    return big


@pytest.fixture
def glance(cells, tmp_path):
    doc = many_cells(to_document(cells, lab={"backend": "local", "org_issuer_cn": "Acme"}, seconds=12.5), 15)
    page = tmp_path / "report.html"
    page.write_text(to_html(doc))
    return doc, page


def test_the_page_opens_on_the_summary_and_the_switch_shows_failures_only(glance, tmp_path):
    doc, page = glance
    assert len(doc["cells"]) == 120 and doc["failed"] == 15
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", GLANCE_SCRIPT + "</body>"))
    dom = run_chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    seen = json.loads(html.unescape(re.search(r'<pre id="computed">(.*?)</pre>', dom, re.S).group(1)))
    # The counts first, on the first screen, then the failures, then the matrix.
    assert seen["counts"] == ["105 passed", "15 failed", "2 not run"]
    assert seen["topCounts"] < 120 and seen["topCounts"] < seen["topFailures"] < 400 < seen["topMatrix"]
    summary = seen["summary"]
    assert "120 cells in 12.50s" in summary and "Failures (15)" in summary and "Not run (2)" in summary
    assert "transparent-inspected-continue / beam\tthe transparent gateway needs root" in summary
    # One line per failing cell: which, expected, observed, why.
    assert len(seen["before"]["failures"]) == 15
    for n, line in enumerate(seen["before"]["failures"]):
        assert line.split("\t")[:3] == [f"inspected-continue-{n:02d} / mislabelled", "accepted-inspection", "refused"]
        assert "the proxy decrypted no request" in line.split("\t")[3]
    # Failures first in the cells below too.
    assert seen["before"]["firstDetail"] == "cell-inspected-continue-00--mislabelled"
    # Readable at 1400 px: no sideways scrolling, nothing cut off in a cell, the page's own font size.
    assert seen["pageWidth"] <= 1400 and seen["overflowing"] == [] and seen["fontSize"] == "14px"
    # The switch: everything shown before, only the failures after; no script in the page does it.
    assert (seen["before"]["passDetails"], seen["before"]["rows"]) == (105, 15 * 4 + 1)
    assert (seen["after"]["passDetails"], seen["after"]["passRows"], seen["after"]["failDetails"]) == (0, 0, 15)
    assert seen["after"]["rows"] == 15 + 1 and seen["after"]["visibleFailures"] == 15  # and the row not run
    assert "<script" not in page.read_text()


def test_screenshot_of_the_summary(glance, tmp_path):
    doc, page = glance
    shot = tmp_path / "summary.png"
    run_chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1400, 1200)
    ink = sum(1 for p in pixels if max(p) < 200)
    assert ink > 20_000, ink  # text and tables, not a blank page
    top = pixels[: width * 200]  # the first 200 rows: the title and the counts
    assert sum(1 for p in top if _near(p, (0xc5, 0x22, 0x1f))) > 150  # "15" failed, in red
    assert sum(1 for p in top if _near(p, (0x1e, 0x7e, 0x34))) > 150  # "105" passed, in green
    assert sum(1 for p in top if _near(p, (0xfd, 0xe7, 0xe6), 2)) > 3000  # the failed count's red box
    shutil.copy(shot, os.environ.get("HARNESS_KEEP_SCREENSHOT", tmp_path / "kept.png"))


def test_html_screenshot_shows_green_and_red(cells, tmp_path):
    write_reports(tmp_path, cells, lab={"backend": "local", "org_issuer_cn": "Acme"}, seconds=2.0)
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, f"--screenshot={shot}", (tmp_path / "report.html").as_uri())
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1400, 1200)
    pass_edge = sum(1 for p in pixels if _near(p, (0x1e, 0x7e, 0x34)))
    fail_edge = sum(1 for p in pixels if _near(p, (0xc5, 0x22, 0x1f)))
    assert pass_edge > 500 and fail_edge > 200, (pass_edge, fail_edge)


def _near(p, q, tol=12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(p, q))


def decode_png(data: bytes):
    """A small PNG reader (8-bit RGB/RGBA, not interlaced: what Chromium writes) -> (w, h, [(r, g, b)])."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, prev, pixels = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += [tuple(line[i:i + 3]) for i in range(0, stride, bpp)]
        prev = line
    return width, height, pixels
