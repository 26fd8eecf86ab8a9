"""graft.open: tensors of real PyTorch checkpoints as NumPy arrays equal to
torch.load, without a copy where the file allows, errors as graft.Error."""
import gc
import glob
import os
import zipfile

import numpy as np
import pytest
import torch

import graft
from pyhelp import (FIXTURES, SOURCE_ROOT, assert_model_equals_torch, file_mapping_of,
                    save_safetensors, torch_load)

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16,
          torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128]


def every_dtype():
    torch.manual_seed(0)
    d = {}
    for dt in DTYPES:
        if dt == torch.bool:
            d[str(dt)] = torch.rand(3, 4) > 0.5
        elif dt.is_floating_point or dt.is_complex:
            d[str(dt)] = (torch.randn(3, 4) * 100).to(dt)
        else:
            d[str(dt)] = torch.randint(-100 if dt != torch.uint8 else 0, 100, (3, 4)).to(dt)
    d["scalar"] = torch.tensor(3.5)
    d["empty"] = torch.zeros(0, 5)
    return d


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_every_dtype_equals_torch_load(tmp_path, legacy):
    path = tmp_path / "dtypes.pth"
    torch.save(every_dtype(), path, _use_new_zipfile_serialization=not legacy)
    m = graft.open(path)
    assert m.format == ("pytorch-legacy" if legacy else "pytorch-zip")
    assert_model_equals_torch(m, torch.load(path))
    assert m["torch.bfloat16"].dtype == "bfloat16"
    assert np.asarray(m["torch.bfloat16"]).dtype == np.uint16


FIXTURE_FILES = sorted(glob.glob(os.path.join(FIXTURES, "pytorch_zip", "*", "*")) +
                       glob.glob(os.path.join(FIXTURES, "pytorch_legacy", "*", "*")))


def test_fixtures_are_there():
    assert len(FIXTURE_FILES) >= 20, FIXTURES


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: os.path.relpath(p, FIXTURES))
def test_real_checkpoint_equals_torch_load(path):
    assert_model_equals_torch(graft.open(path), torch_load(path))


@pytest.mark.parametrize("name", ["resnet_tiny.pth", "resnet18_narrow.pth"])
def test_sample_equals_torch_load(name):
    path = os.path.join(SOURCE_ROOT, "samples", name)
    assert_model_equals_torch(graft.open(path), torch_load(path))


def test_arrays_are_views_of_the_mapped_file(tmp_path):
    """Plain, strided (a saved transpose) and offset (a slice of a shared
    storage) tensors lie in the file's mapping: no copy, read-only."""
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    sd = {"plain": torch.randn(8, 3), "transposed": base.t(), "slice": base[2:4, 1:7]}
    path = tmp_path / "views.pth"
    torch.save(sd, path)
    m = graft.open(path)
    for name, t in sd.items():
        a = np.asarray(m[name])
        assert file_mapping_of(a.__array_interface__["data"][0]) == str(path), name
        assert not a.flags.writeable, name
        assert np.array_equal(a, t.numpy()), name
        with pytest.raises(ValueError):
            a[(0,) * a.ndim] = 1
    a = np.asarray(m["transposed"])
    assert not a.flags.c_contiguous and a.strides == (4, 40)
    w = np.array(m["plain"])  # np.array copies: writable
    w[0, 0] = 7
    assert w.flags.writeable and np.asarray(m["plain"])[0, 0] != 7


def test_compressed_records_are_copied(tmp_path):
    """A zip re-packed with deflate cannot be viewed: the values are inflated
    into a buffer the array owns, equal to torch.load."""
    src, dst = tmp_path / "plain.pth", tmp_path / "deflated.pth"
    torch.save({"w": torch.randn(16, 16), "t": torch.randn(4, 6).t()}, src)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    m = graft.open(dst)
    a = np.asarray(m["w"])
    assert file_mapping_of(a.__array_interface__["data"][0]) != str(dst)
    assert_model_equals_torch(m, torch.load(dst))


def test_arrays_outlive_the_model(tmp_path):
    path = tmp_path / "m.pth"
    w = torch.randn(64, 64)
    torch.save({"w": w}, path)
    a = np.asarray(graft.open(path)["w"])
    gc.collect()
    assert np.array_equal(a, w.numpy())
    assert file_mapping_of(a.__array_interface__["data"][0]) == str(path)
    del a
    gc.collect()
    assert not any(str(path) in line for line in open("/proc/self/maps"))


def test_model_interface(tmp_path):
    path = tmp_path / "ck.pth"
    sd = {"model": {"a.weight": torch.ones(2, 3), "b": torch.zeros(4)},
          "optimizer": {"step": torch.tensor(5)}}
    torch.save(sd, path)
    m = graft.open(path)
    assert len(m) == 3 and m.keys() == ["model.a.weight", "model.b", "optimizer.step"]
    assert "model.b" in m and "b" not in m
    assert m[0].name == "model.a.weight" and m[-1].name == "optimizer.step"
    with pytest.raises(KeyError):
        m["nothing"]
    t = m["model.a.weight"]
    assert (t.name, t.dtype, t.shape, t.ndim, t.size, t.nbytes) == \
        ("model.a.weight", "float32", (2, 3), 2, 6, 24)
    import hashlib
    assert t.sha256() == hashlib.sha256(np.ones((2, 3), np.float32).tobytes()).hexdigest()
    sub = graft.open(path, select="model")
    assert sub.keys() == ["a.weight", "b"]
    assert graft.open(path, format="pytorch-zip").format == "pytorch-zip"
    with pytest.raises(graft.Error):
        graft.open(path, select="nothing")


def test_float8_and_bfloat16_are_their_bits(tmp_path):
    """safetensors F8_E4M3 / F8_E5M2 / BF16 come back as uint8 / uint16
    arrays of the stored bits, the tensor naming the real dtype."""
    f8 = bytes([0x00, 0x38, 0x40, 0xb8, 0x7e, 0x01])
    bf = np.array([0x3f80, 0xc000, 0x7fc0], np.uint16)
    path = tmp_path / "f8.safetensors"
    save_safetensors(path, {"e4m3": ("F8_E4M3", [2, 3], f8), "e5m2": ("F8_E5M2", [6], f8),
                            "bf": ("BF16", [3], bf.tobytes())})
    m = graft.open(path)
    assert m["e4m3"].dtype == "float8_e4m3fn" and m["e5m2"].dtype == "float8_e5m2"
    a = np.asarray(m["e4m3"])
    assert a.dtype == np.uint8 and a.shape == (2, 3) and a.tobytes() == f8
    assert np.asarray(m["e5m2"]).tobytes() == f8
    b = np.asarray(m["bf"])
    assert b.dtype == np.uint16 and np.array_equal(b, bf)
    as_float = torch.from_numpy(b.astype(np.int16)).view(torch.bfloat16).float()
    assert as_float[:2].tolist() == [1.0, -2.0] and torch.isnan(as_float[2])


CORRUPT = os.path.join(SOURCE_ROOT, "samples", "corrupt", "pytorch")


def expected_errors():
    with open(os.path.join(CORRUPT, "EXPECTED")) as f:
        return [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]


@pytest.mark.parametrize("name,needle", expected_errors(), ids=lambda x: str(x)[:30])
def test_bad_files_raise_graft_error(name, needle):
    path = os.path.join(CORRUPT, name)
    with pytest.raises(graft.Error) as e:
        m = graft.open(path)
        for t in m:
            np.asarray(t)
    msg = str(e.value)
    assert "\n" not in msg and needle in msg and name in msg, msg
    assert e.value.status < 0 and e.value.code.startswith("E")


def test_hostile_pickle_is_refused_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "x": Evil()}, path)
    with pytest.raises(graft.Error) as e:
        graft.open(path)
    assert e.value.code == "EUNSAFE" and "system" in str(e.value)
    assert not marker.exists()


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(graft.Error) as e:
        graft.open(tmp_path / "nope.pth")
    assert "nope.pth" in str(e.value) and e.value.code == "ENOTFOUND"
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(graft.Error) as e:
        graft.open(junk)
    assert "junk.bin" in str(e.value)
