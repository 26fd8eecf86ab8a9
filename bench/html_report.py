#!/usr/bin/python3
"""The `--html` report, measured by hand (issue 17), and README's screenshot.

1. A torchvision ResNet-50 (ImageNet shapes, random init, BatchNorm running
   statistics made non-trivial) planned into a Keras Applications skeleton
   through rules/torch-to-keras/resnet.yaml with `graft plan --html`: page
   size, wall time and peak RSS; then headless Chromium renders the page
   with one tensor selected and saves bench/html_report.png (README.md).
2. 6000 small tensors: page size, and how long Chromium takes to render it
   (trees collapsed, and every tree open).
3. Flat memory: one float32 tensor of SIZE_GB (default 1) in a safetensors
   file, planned against a copy of itself with --html (statistics of both,
   read twice each): peak RSS against the tensor's size.

usage: bench/html_report.py [BUILD_DIR] [SIZE_GB]   (BUILD_DIR default: build; SIZE_GB 0: no step 3)
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
import kerasapps  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402


def timed(cmd):
    """Run under /usr/bin/time: (seconds, peak RSS in MB)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr}")
    secs, kb = p.stderr.strip().splitlines()[-1].split()
    return float(secs), int(kb) / 1024


def resnet50(graft, tmp):
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    for m in model.modules():  # a trained-looking BatchNorm: spread statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    # Run in tmp with short relative names (they are on the page).
    os.symlink(os.path.join(ROOT, "rules"), os.path.join(tmp, "rules"))
    os.chdir(tmp)
    src, skel, page = "resnet50.pth", "resnet50.h5", "resnet50.html"
    torch.save(model.state_dict(), src)
    k, out = kerasapps.resnet(50, 224, 1000, bias=True)
    k.write(skel, out)
    secs, rss = timed([graft, "plan", "-r", "rules/torch-to-keras/resnet.yaml", "--html", page, src, skel])
    print(f"resnet50 plan --html: {os.path.getsize(page) / 1e6:.2f} MB page, {secs:.2f} s, "
          f"peak RSS {rss:.0f} MB (models {(os.path.getsize(src) + os.path.getsize(skel)) / 1e6:.0f} MB)")
    png = os.path.join(ROOT, "bench", "html_report.png")
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp}/profile", "--window-size=1400,820", f"--screenshot={png}",
                    f"file://{tmp}/{page}#sel=conv3_block1_2_conv/kernel:0"], check=True, capture_output=True)
    print(f"screenshot: {os.path.relpath(png, ROOT)}")


def many_tensors(graft, tmp, n=6000):
    """n small tensors (an LLM-sized table): page size and how long Chromium
    takes to load and render it, collapsed and with every tree open."""
    import time
    header, off = {}, 0
    for i in range(n):
        name = f"model.layers.{i // 12}.{['attn', 'mlp', 'norm'][i % 3]}.{i % 12}.weight"
        header[name] = {"dtype": "F32", "shape": [16, 8], "data_offsets": [off, off + 512]}
        off += 512
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    a, page = os.path.join(tmp, "many.safetensors"), os.path.join(tmp, "many.html")
    with open(a, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.write(np.random.default_rng(2).standard_normal(off // 4, dtype=np.float32).tobytes())
    secs, rss = timed([graft, "plan", "--html", page, a, a])
    print(f"{n} tensors: page {os.path.getsize(page) / 1e6:.2f} MB, plan --html {secs:.2f} s, {rss:.0f} MB")
    empty = os.path.join(tmp, "empty.html")
    open(empty, "w").write("<!DOCTYPE html><title>empty</title><p>empty")
    for what, url in (("an empty page", f"file://{empty}"), ("the page", f"file://{page}"),
                      ("the page, every tree open", f"file://{page}#all")):
        t0 = time.time()
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp}/profile",
                        f"--screenshot={tmp}/many.png", url], check=True, capture_output=True)
        print(f"  chromium --screenshot of {what}: {time.time() - t0:.2f} s")


def safetensors(path, name, n):
    """One float32 tensor of n elements, written in slices."""
    header = json.dumps({name: {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
    header += b" " * (-len(header) % 8)
    rng = np.random.default_rng(1)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for i in range(0, n, 1 << 24):
            f.write(rng.standard_normal(min(1 << 24, n - i), dtype=np.float32).tobytes())


def flat_memory(graft, tmp, gb):
    n = int(gb * (1 << 30)) // 4
    a, b, page = (os.path.join(tmp, x) for x in ("big_a.safetensors", "big_b.safetensors", "big.html"))
    safetensors(a, "w", n)
    shutil.copyfile(a, b)
    secs, rss = timed([graft, "plan", "--html", page, a, b])
    print(f"one {4 * n / 2**30:.2f} GiB tensor, plan --html (stats of both sides): {secs:.1f} s, "
          f"peak RSS {rss:.0f} MB")
    secs, rss = timed([graft, "diff", "--html", page, a, b])
    print(f"the same, diff --html (the diff itself holds both tensors): {secs:.1f} s, peak RSS {rss:.0f} MB")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    gb = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    graft = os.path.abspath(os.path.join(ROOT, build, "src", "graft"))
    tmp = tempfile.mkdtemp(prefix="graft-html-bench-")
    try:
        resnet50(graft, tmp)
        many_tensors(graft, tmp)
        if gb > 0:
            flat_memory(graft, tmp, gb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
