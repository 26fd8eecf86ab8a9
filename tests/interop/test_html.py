"""`graft plan --html` and `graft diff --html` (issue 17), rendered by headless
Chromium (Debian's `chromium`; missing = failure, never a skip).

- a torchvision ResNet-50 into a Keras Applications skeleton, and a Hugging
  Face BERT into a Google BERT TF checkpoint: every skeleton tensor (names
  from h5py / an independent TF index reader) is on the rendered page with
  the plan's status; the ResNet-50 page stays under 5 MB; the trace shown for
  a selected tensor is `graft explain`'s; the filter narrows the trees;
- a layout mutant of the ResNet rules: its finding is on the page and the
  tensors it names carry the layout status;
- a diff page over NumPy files (compressed, stored, big-endian, Fortran
  order, zeros, a shape mismatch, an unpaired tensor) lists every tensor with
  the max abs / max relative error NumPy computes, worst first, and each
  tensor's min / max / mean / std / histogram equal NumPy's;
- no request leaves the page: no http, https or // in any src or href, and
  Chromium's net log holds no request made by the page (a control page with
  one external image proves the log check sees requests);
- the screenshot is not blank (pixel variance, against a blank control).
"""
import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(__file__))
import hfmodels  # noqa: E402
import kerasapps  # noqa: E402
from fwdlib import rules_path  # noqa: E402
from graftlib import Results, run  # noqa: E402
from test_rulelib_tf import tf_skeleton  # noqa: E402
from test_tf import read_bundle  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

R = Results()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PLAN_STATUS = {"ok": "ok", "missing": "missing", "mismatch": "mismatch", "error": "mismatch"}
LEGEND = ["ok", "missing", "unused", "ignored", "mismatch", "layout", "lowconf"]


# ---- Chromium --------------------------------------------------------------

def chromium(url, *extra, tag="run"):
    """Run headless Chromium on url with a fresh profile; its stdout."""
    assert CHROMIUM, "chromium is not installed (.ci/install-deps installs it)"
    profile = R.path(f"profile-{tag}")
    shutil.rmtree(profile, ignore_errors=True)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--hide-scrollbars", f"--user-data-dir={profile}", *extra, url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"chromium exited {p.returncode}: {p.stderr[-2000:]}"
    return p.stdout


def dump_dom(page, fragment="all", tag="dom"):
    return chromium("file://" + page + ("#" + fragment if fragment else ""), "--dump-dom", tag=tag)


def page_requests(page, tag):
    """URLs the page asked the network for, from Chromium's net log: requests
    whose initiator is the page (Chromium's own background requests have
    'not an origin') or whose isolation key is the file:// page."""
    log = R.path(f"{tag}.netlog")
    chromium("file://" + page, "--dump-dom", f"--log-net-log={log}", tag=tag)
    text = open(log).read()
    try:
        d = json.loads(text)
    except json.JSONDecodeError:  # Chromium killed before closing the array
        d = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    urls = []
    for e in d["events"]:
        p = e.get("params") or {}
        if names[e["type"]] == "URL_REQUEST_START_JOB" and "url" in p and (
                p.get("initiator") != "not an origin" or "file:" in p.get("network_isolation_key", "")):
            urls.append(p["url"])
    return urls


class Dom(HTMLParser):
    """What the tests read off a rendered page."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.diff, self.links, self.legend = [], [], [], {}
        self.detail, self.trace, self.problems, self.stats = {}, None, [], []
        self._in = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        for k in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            if k in a:
                self.links.append((tag, k, a[k]))
        if "row" in cls and "t" in cls:
            self.rows.append((a["data-side"], a["data-name"], a["data-status"], "linked" in cls))
        if tag == "tr" and "diff" in cls:
            self.diff.append((a["data-name"], a.get("data-abs"), a.get("data-rel")))
        if tag == "tr" and "stats" in cls:
            self.stats.append(a["data-name"])
        if tag == "button" and "data-status" in a:
            self.legend[a["data-status"]] = (int(a["data-skeleton"]), int(a["data-source"]))
        if a.get("id") == "detail" and "data-name" in a:
            self.detail = a
        if tag == "pre" and "trace" in cls:
            self._in, self.trace = "trace", ""
        if tag == "li" and self._in is None:
            self._in = "li"
            self.problems.append("")

    def handle_endtag(self, tag):
        if (tag == "pre" and self._in == "trace") or (tag == "li" and self._in == "li"):
            self._in = None

    def handle_data(self, data):
        if self._in == "trace":
            self.trace += data
        elif self._in == "li":
            self.problems[-1] += data


def page_data(page):
    """The JSON the library embedded in the page."""
    m = re.search(r'<script type="application/json" id="graft-data">(.*?)</script>', open(page).read(), re.S)
    assert m, "no data element"
    return json.loads(m.group(1))


def no_urls(page, dom):
    """No external reference in the file or the rendered DOM."""
    raw = open(page).read()
    for bad in ("http:", "https:", "url(", "@import", "@font-face", "<link", "<iframe"):
        assert bad not in raw, f"{page}: '{bad}' in the page"
    parsed = Dom(raw).links + dom.links
    for tag, attr, value in parsed:
        assert not re.search(r"https?:|//", value, re.I), f"{tag} {attr}={value!r}"


def expected_status(pj):
    """Per skeleton tensor, the status the page must show, from plan --json."""
    ignored = {e["target"] for e in pj["pairs"] if e["status"] == "kept" and not e["sources"]}
    want = {}
    for e in pj["pairs"]:
        st = PLAN_STATUS.get(e["status"], "ignored")
        want[e["target"]] = st
    layout = {f["target"] for f in pj["warnings"] + pj["problems"] if isinstance(f, dict)}
    for t in layout:
        if want[t] == "ok":
            want[t] = "layout"
    return want, ignored


def check_plan_page(page, names, pj, tag):
    """Every skeleton tensor in `names` is on the page with its status."""
    dom = Dom(dump_dom(page, tag=tag))
    shown = {n: st for side, n, st, _ in dom.rows if side == "skeleton"}
    assert set(shown) == set(names), (sorted(set(names) - set(shown))[:5], sorted(set(shown) - set(names))[:5])
    want, ignored = expected_status(pj)
    for n in names:
        w = want[n]
        if n in ignored:  # kept without a source: ignored, or missing under policy keep
            assert shown[n] in ("ignored", "missing"), (n, shown[n])
        else:
            assert shown[n] == w, (n, shown[n], w)
    counts = {st: sum(1 for v in shown.values() if v == st) for st in LEGEND}
    for st in LEGEND:
        assert dom.legend[st][0] == counts[st], (st, dom.legend[st], counts[st])
    no_urls(page, dom)
    return dom


# ---- the cases ---------------------------------------------------------------

def h5_weight_names(path):
    out = []
    with h5py.File(path, "r") as f:
        f["model_weights"].visititems(lambda n, o: out.append(n) if isinstance(o, h5py.Dataset) else None)
    return out


def resnet50():
    torch.manual_seed(0)
    src, skel, page = R.path("r50.pth"), R.path("r50.h5"), R.path("r50.html")
    torch.save(torchvision.models.resnet50().state_dict(), src)
    k, out = kerasapps.resnet(50, 224, 1000, bias=True)
    k.write(skel, out)
    rules = rules_path("torch-to-keras", "resnet")
    p = run("plan", "--html", page, "-r", rules, src, skel)
    assert "ok" in p.stdout
    size = os.path.getsize(page)
    print(f"  resnet50 page: {size / 1e6:.2f} MB")
    assert size < 5e6, size
    pj = json.loads(run("plan", "--json", "-r", rules, src, skel).stdout)
    names = [e["target"] for e in pj["pairs"]]
    assert len(names) == len(h5_weight_names(skel)) == 320, (len(names), len(h5_weight_names(skel)))
    dom = check_plan_page(page, names, pj, "r50")
    assert all(st == "ok" for side, n, st, _ in dom.rows if side == "skeleton")
    # the selected tensor: its source highlighted, statistics of both, explain's trace
    target = "conv2_block1_2_conv/kernel:0"
    dom = Dom(dump_dom(page, "sel=" + target, tag="r50sel"))
    assert dom.detail["data-name"] == target and dom.detail["data-status"] == "ok"
    assert [n for side, n, _, linked in dom.rows if linked] == ["layer1.0.conv2.weight"]
    assert dom.stats == [target, "layer1.0.conv2.weight"], dom.stats
    want = run("explain", "-r", rules, src, skel, target).stdout
    assert html.unescape(dom.trace).strip() == want.strip(), (dom.trace, want)
    assert "layout:" in want and "agrees" in want
    # the filter: only the matching tensors are drawn
    dom = Dom(dump_dom(page, "q=conv5_block3_3_bn", tag="r50q"))
    sk = sorted(n for side, n, _, _ in dom.rows if side == "skeleton")
    assert sk == sorted(n for n in names if "conv5_block3_3_bn" in n) and len(sk) == 4, sk
    # statistics: NumPy's of a source and a skeleton tensor
    data = page_data(page)
    sd = torch.load(src)
    check_stats(data["sides"][0], {"conv1.weight": sd["conv1.weight"].numpy(), "fc.bias": sd["fc.bias"].numpy()})
    with h5py.File(skel, "r") as f:
        kern = f["model_weights/conv1_conv/conv1_conv/kernel:0"][()]
    check_stats(data["sides"][1], {"conv1_conv/kernel:0": kern})


def layout_mutant():
    src, skel = "samples/resnet18_narrow.pth", "samples/resnet18_narrow_keras2.h5"
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    src, skel = os.path.join(root, src), os.path.join(root, skel)
    text = open(rules_path("torch-to-keras", "resnet18")).read()
    assert "permute: OIHW->HWIO" in text
    rules = R.path("mutant.yaml")
    open(rules, "w").write(text.replace("permute: OIHW->HWIO", "permute: [3, 2, 1, 0]"))
    page = R.path("mutant.html")
    p = run("plan", "--html", page, "-r", rules, src, skel, check=False, layout_ok=True)
    assert p.returncode in (0, 1), p.stderr
    pj = json.loads(run("plan", "--json", "-r", rules, src, skel, check=False, layout_ok=True).stdout)
    findings = [f for f in pj["warnings"] + pj["problems"] if isinstance(f, dict) and f["kind"] == "layout"]
    assert findings, "the mutant gives no layout finding"
    dom = check_plan_page(page, [e["target"] for e in pj["pairs"]], pj, "mutant")
    shown = {n: st for side, n, st, _ in dom.rows if side == "skeleton"}
    for f in findings:
        assert shown[f["target"]] in ("layout", "mismatch"), (f["target"], shown[f["target"]])
        assert any(f["message"] in p for p in dom.problems), f["message"]
    target = findings[0]["target"]
    dom = Dom(dump_dom(page, "sel=" + target, tag="mutsel"))
    assert "DIFFERS" in html.unescape(dom.trace), dom.trace


def bert():
    torch.manual_seed(3)
    model = hfmodels.BertForPreTraining().eval()
    src, page = R.path("bert.pth"), R.path("bert.html")
    torch.save(model.state_dict(), src)
    # two defects in the skeleton: a variable no source fills, one of another shape
    shapes = hfmodels.bert_tf_shapes()
    shapes["bert/pooler/extra"] = [3]
    shapes["bert/embeddings/LayerNorm/gamma"] = [31]
    index = tf_skeleton(R.path("bert_skel/model.ckpt"), shapes, 7)
    rules = rules_path("hf-to-tf", "bert")
    assert run("plan", "--html", page, "-r", rules, src, index, check=False).returncode == 1
    pj = json.loads(run("plan", "--json", "-r", rules, src, index, check=False).stdout)
    names = [e["target"] for e in pj["pairs"]]
    assert sorted(names) == sorted(n for n, _, _, _ in read_bundle(index[:-len(".index")]))
    dom = check_plan_page(page, names, pj, "bert")
    shown = {n: st for side, n, st, _ in dom.rows if side == "skeleton"}
    assert shown["global_step"] == "ignored" and shown["bert/pooler/extra"] == "missing"
    assert shown["bert/embeddings/LayerNorm/gamma"] == "mismatch"
    assert list(shown.values()).count("ok") == len(names) - 3
    srcs = {n: st for side, n, st, _ in dom.rows if side == "source"}
    assert set(srcs) == set(model.state_dict())
    assert srcs["cls.predictions.decoder.weight"] == "ignored", srcs["cls.predictions.decoder.weight"]
    assert srcs["bert.embeddings.LayerNorm.weight"] == "mismatch", srcs["bert.embeddings.LayerNorm.weight"]
    assert dom.legend["missing"] == (1, 0) and dom.legend["mismatch"] == (1, 1), dom.legend
    # the filter by status draws exactly the ignored tensors of both sides
    dom = Dom(dump_dom(page, "q=status:ignored", tag="bertq"))
    assert {(s, n) for s, n, st, _ in dom.rows} == {("skeleton", "global_step")} | {
        ("source", n) for n, st in srcs.items() if st == "ignored"}


# ---- diff --------------------------------------------------------------------

def check_stats(side, arrays):
    by = {t["n"]: t for t in side["tensors"]}
    for name, a in arrays.items():
        x = np.asarray(a, dtype=np.float64).ravel()
        s = by[name]["x"]
        fin = x[np.isfinite(x)]
        assert s["n"] == fin.size and s["nan"] == np.isnan(x).sum() and s["inf"] == np.isinf(x).sum(), (name, s)
        for k, v in (("min", fin.min()), ("max", fin.max()), ("mean", fin.mean()), ("std", fin.std())):
            assert np.isclose(float(s[k]), v, rtol=1e-7, atol=1e-12 * max(1.0, abs(fin).max())), (name, k, s[k], v)
        h, _ = np.histogram(fin, GRAFT_BINS)
        assert s["h"] == h.tolist(), (name, s["h"], h.tolist())


GRAFT_BINS = 32


def max_errors(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    d = np.abs(a - b)
    nz = b != 0
    rel = (d[nz] / np.abs(b[nz])).max() if nz.any() else (0.0 if not d.any() else np.inf)
    return d.max(), rel


def diff_page():
    rng = np.random.default_rng(17)
    a = {
        "big": rng.standard_normal(3_000_001).astype("<f4"),          # > one 8 MB piece
        "w": rng.standard_normal((7, 5)).astype("<f4"),
        "bias": np.zeros(9, "<f4"),
        "step": np.arange(-40, 60, dtype="<i8"),
        "half": rng.standard_normal(100).astype("<f2"),
        "wide": rng.standard_normal((4, 6)),
        "same": np.full(5, 3.25, "<f4"),
        "bad": np.ones((3, 4), "<f4"),
        "only_a": np.arange(3, dtype="<f4"),                           # unpaired
        "bigf": rng.standard_normal((1500, 2001)).astype("<f4"),
        "bige": rng.standard_normal(2_500_000).astype("<f4"),
    }
    b = {
        "big": a["big"] + rng.standard_normal(a["big"].size).astype("<f4") * np.float32(1e-3),
        "w": np.asfortranarray(a["w"] * np.float32(1.5)),             # strided view
        "bias": a["bias"].copy(),                                       # all zeros: rel 0
        "step": (a["step"] + (a["step"] % 7 == 0)).astype(">i8"),       # big-endian ints
        "half": a["half"].copy(),
        "wide": (a["wide"] - 0.25).astype(">f8"),                       # big-endian floats
        "same": a["same"].copy(),
        "bad": np.ones((4, 3), "<f4"),                                  # shapes disagree
        "only_b": np.ones(2, "<f4"),                                    # unpaired
        # 12 MB strided and 10 MB big-endian views: gathered in several pieces
        "bigf": np.asfortranarray(a["bigf"] * np.float32(0.5)),
        "bige": (a["bige"] + np.float32(2)).astype(">f4"),
    }
    b["bias"][3] = 0.5  # a difference where b is 0 and others where b is not
    b["bias"][4] = 2.0
    fa, fb, page = R.path("a.npz"), R.path("b.npz"), R.path("diff.html")
    np.savez_compressed(fa, **a)  # deflated members: statistics from the streamed pieces
    np.savez(fb, **b)
    p = run("diff", "--html", page, fa, fb, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    dom = Dom(dump_dom(page, "", tag="diff"))
    no_urls(page, dom)
    rows = {n: (ab, rl) for n, ab, rl in dom.diff}
    assert set(rows) == set(a) | set(b) and len(dom.diff) == len(rows), sorted(rows)
    for name in a:
        if name in ("bad", "only_a"):
            assert rows[name] == (None, None)
            continue
        want_abs, want_rel = max_errors(a[name], b[name])
        got_abs, got_rel = float(rows[name][0]), float(rows[name][1])
        assert np.isclose(got_abs, want_abs, rtol=1e-8, atol=0), (name, got_abs, want_abs)
        assert np.isclose(got_rel, want_rel, rtol=1e-8, atol=0), (name, got_rel, want_rel)
    assert rows["only_b"] == (None, None)
    # worst first: the shape mismatch, the unpaired tensors, then by max rel
    order = [n for n, _, _ in dom.diff]
    assert order[0] == "bad" and set(order[1:3]) == {"only_a", "only_b"}, order
    rels = [float(rows[n][1]) for n in order[3:]]
    assert rels == sorted(rels, reverse=True) and rels[0] > 0 and rels[-1] == 0, list(zip(order[3:], rels))
    data = page_data(page)
    check_stats(data["sides"][0], {k: v for k, v in a.items()})
    check_stats(data["sides"][1], {k: v for k, v in b.items()})


# ---- the page loads nothing, and draws something -----------------------------

def no_requests():
    src = os.path.join(os.path.dirname(__file__), "..", "..", "samples")
    page = R.path("small.html")
    run("plan", "--html", page, "-r", rules_path("torch-to-keras", "resnet18"),
        os.path.join(src, "resnet18_narrow.pth"), os.path.join(src, "resnet18_narrow_keras2.h5"))
    assert page_requests(page, "net") == []
    leak = R.path("leak.html")
    open(leak, "w").write(open(page).read().replace("<header>", '<header><img src="http://127.0.0.1:9/x.png">', 1))
    assert page_requests(leak, "leak") == ["http://127.0.0.1:9/x.png"], "the net log check sees no request"


def screenshot_variance(url, tag):
    from PIL import Image
    png = R.path(f"{tag}.png")
    chromium(url, f"--screenshot={png}", "--window-size=1280,800", tag=tag)
    px = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    return px.var(), len(np.unique(px))


def not_blank():
    page = R.path("shot.html")
    src = os.path.join(os.path.dirname(__file__), "..", "..", "samples")
    run("plan", "--html", page, "-r", rules_path("torch-to-keras", "resnet18"),
        os.path.join(src, "resnet18_narrow.pth"), os.path.join(src, "resnet18_narrow_keras2.h5"))
    var, colours = screenshot_variance("file://" + page + "#sel=conv1_conv/kernel:0", "shot")
    blank = R.path("blank.html")
    open(blank, "w").write("<!DOCTYPE html><title>blank</title><body></body>")
    bvar, _ = screenshot_variance("file://" + blank, "blank")
    print(f"  screenshot: variance {var:.0f}, {colours} grey levels (blank page: {bvar:.0f})")
    assert bvar < 1 and var > 200 and colours > 30, (var, colours, bvar)


if __name__ == "__main__":
    R.check("no request leaves the page (net log; a control page's request is seen)", no_requests)
    R.check("the screenshot is not blank", not_blank)
    R.check("diff page: every tensor's max abs / rel error as NumPy's, worst first; NumPy's statistics", diff_page)
    R.check("layout mutant: the finding and its tensors on the page", layout_mutant)
    R.check("BERT plan page (a missing and a mismatched variable): every tensor with its status; filter", bert)
    R.check("ResNet-50 plan page: every tensor with its status, < 5 MB, trace = explain, filter, stats", resnet50)
    R.close()
