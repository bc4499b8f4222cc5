"""Sparse-trace format: round trip, statistics, and every kind of bad file."""

import json
import struct
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.numpy

from focus_algo.trace import FORMAT_VERSION, SITES, SiteTrace, SparseTrace, TraceError, TraceMeta
from focus_hw.params import FocusParams

GRID = (3, 2, 3)  # frames, height, width -> T = 18
T = 18


def random_site(rng, layers, v):
    """Valid random masks: zero, similar (pointing back to a root) or unique."""
    zero = np.zeros((layers, 1, T, v), bool)
    similar = np.zeros_like(zero)
    root = np.broadcast_to(np.arange(T, dtype=np.int32)[None, None, :, None], zero.shape).copy()
    for layer in range(layers):
        for j in range(v):
            for t in range(T):
                roots = [
                    u for u in range(t) if not zero[layer, 0, u, j] and not similar[layer, 0, u, j]
                ]
                kind = rng.integers(3)
                if kind == 0:
                    zero[layer, 0, t, j] = True
                elif kind == 1 and roots:
                    similar[layer, 0, t, j] = True
                    root[layer, 0, t, j] = rng.choice(roots)
    return SiteTrace(zero=zero, similar=similar, root=root)


def make_trace(layers=2, sites=SITES, seed=0):
    rng = np.random.default_rng(seed)
    meta = TraceMeta(
        model="m",
        dataset="d",
        num_tokens=T,
        frames=GRID[0],
        height=GRID[1],
        width=GRID[2],
        num_layers=layers,
        params=FocusParams(threshold=0.8, vector_size=16),
        extra={"note": "test", "n": [1, 2]},
    )
    vectors = {"q_proj": 3, "query": 3, "o_proj": 3, "gate_proj": 3, "down_proj": 11}
    return SparseTrace(meta, {s: random_site(rng, layers, vectors[s]) for s in sites})


def assert_same(a: SparseTrace, b: SparseTrace):
    assert a.meta == b.meta
    assert list(a.sites) == list(b.sites)
    for s in a.sites:
        for name in ("zero", "similar", "root"):
            x, y = getattr(a.sites[s], name), getattr(b.sites[s], name)
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)


def test_round_trip(tmp_path):
    tr = make_trace()
    tr.validate()
    path = tmp_path / "t.safetensors"
    tr.save(path)
    back = SparseTrace.load(path)
    assert_same(tr, back)
    assert back.meta.params == FocusParams(threshold=0.8, vector_size=16)
    assert back.sites["down_proj"].num_vectors == 11
    # the masks are stored packed: 11 vectors -> 2 bytes per token
    raw = safetensors.numpy.load(path.read_bytes())
    assert raw["down_proj.zero"].shape == (2, 1, T, 2)
    assert raw["q_proj.root"].dtype == np.int32


def test_subset_of_sites_round_trip(tmp_path):
    tr = make_trace(sites=("query", "down_proj"), layers=1)
    tr.save(tmp_path / "t.safetensors")
    assert_same(tr, SparseTrace.load(tmp_path / "t.safetensors"))


def test_sparsity_and_summary():
    tr = make_trace()
    st = tr.sites["down_proj"]
    want = (st.zero[1].sum() + st.similar[1].sum()) / st.zero[1].size
    assert tr.sparsity("down_proj", 1) == pytest.approx(want)
    all_z = sum(s.zero.sum() + s.similar.sum() for s in tr.sites.values())
    all_n = sum(s.zero.size for s in tr.sites.values())
    assert tr.sparsity() == pytest.approx(all_z / all_n)
    df = tr.summary()
    assert len(df) == len(SITES) * 2
    row = df[(df.site == "down_proj") & (df.layer == 1)].iloc[0]
    assert row.sparsity == pytest.approx(want)
    assert row.zero == pytest.approx(st.zero[1].sum() / (T * 11))
    assert row.vectors == T * 11
    # weighted average: hand computation over the two sites with weights 1 and 3
    sub = SparseTrace(tr.meta, {k: tr.sites[k] for k in ("query", "o_proj")})
    s = [sub.sparsity(k, layer) for k in ("query", "o_proj") for layer in range(2)]
    assert sub.weighted_sparsity({"query": 1, "o_proj": 3}) == pytest.approx(
        (s[0] + s[1] + 3 * s[2] + 3 * s[3]) / 8
    )
    with pytest.raises(KeyError, match="nope"):
        tr.sparsity("nope")
    with pytest.raises(IndexError):
        tr.sparsity("query", 2)


def test_from_results_accepts_torch_masks():
    import torch

    tr = make_trace(sites=("o_proj",), layers=2)
    st = tr.sites["o_proj"]
    results = {
        "o_proj": [
            SimpleNamespace(
                zero=torch.from_numpy(st.zero[layer, 0]),
                similar=torch.from_numpy(st.similar[layer, 0]),
                root=torch.from_numpy(st.root[layer, 0]).long(),
            )
            for layer in range(2)
        ]
    }
    assert_same(tr, SparseTrace.from_results(tr.meta, results))
    with pytest.raises(TraceError, match="1 results but meta.num_layers=2"):
        SparseTrace.from_results(tr.meta, {"o_proj": results["o_proj"][:1]})


def test_from_real_sic_results():
    torch = pytest.importorskip("torch")
    sic = pytest.importorskip("focus_algo.sic")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, 40, generator=g)
    x[6:12] = x[0:6]  # frame 1 repeats frame 0
    x[13] = 0  # a zero token
    params = FocusParams(vector_size=16)
    res = sic.similarity_concentrate(x, GRID, params)
    meta = TraceMeta("m", "d", T, *GRID, num_layers=1, params=params)
    tr = SparseTrace.from_results(meta, {"query": [res]})
    assert tr.sites["query"].num_vectors == 3
    assert tr.sparsity("query", 0) == pytest.approx(res.sparsity)
    assert tr.sites["query"].similar[0, 0, 6:12].all()


# -- bad files ------------------------------------------------------------------


def _rewrite(tr, tensors=None, metadata=None):
    """Bytes of a trace file with some tensors/metadata entries changed."""
    data = tr.to_bytes()
    raw = dict(safetensors.numpy.load(data))
    n = struct.unpack("<Q", data[:8])[0]
    meta = json.loads(data[8 : 8 + n])["__metadata__"]
    raw.update(tensors or {})
    raw = {k: v for k, v in raw.items() if v is not None}
    meta.update(metadata or {})
    return safetensors.numpy.save(raw, metadata=meta)


def test_missing_file(tmp_path):
    with pytest.raises(TraceError, match="does not exist"):
        SparseTrace.load(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 100, -7])
def test_truncated_file(tmp_path, keep):
    data = make_trace().to_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(TraceError, match=r"cut\.safetensors.*(truncated|corrupt)"):
        SparseTrace.load(path)


def test_wrong_version(tmp_path):
    path = tmp_path / "v.safetensors"
    path.write_bytes(_rewrite(make_trace(), metadata={"version": "7"}))
    with pytest.raises(TraceError, match=f"version 7 is not supported.*version {FORMAT_VERSION}"):
        SparseTrace.load(path)


def test_wrong_format_name(tmp_path):
    path = tmp_path / "f.safetensors"
    path.write_bytes(_rewrite(make_trace(), metadata={"format": "other"}))
    with pytest.raises(TraceError, match="not a focus-trace file"):
        SparseTrace.load(path)


def test_missing_tensor(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(_rewrite(make_trace(), tensors={"o_proj.similar": None}))
    with pytest.raises(TraceError, match=r"m\.safetensors.*o_proj.*o_proj\.similar"):
        SparseTrace.load(path)


def test_shape_mismatch(tmp_path):
    tr = make_trace()
    path = tmp_path / "s.safetensors"
    path.write_bytes(_rewrite(tr, tensors={"query.root": tr.sites["query"].root[:, :, :-1]}))
    with pytest.raises(TraceError, match=r"query\.root.*shape|query\.root is int32"):
        SparseTrace.load(path)
    meta = tr.meta.to_dict() | {"num_layers": 3}
    path.write_bytes(_rewrite(tr, metadata={"meta": json.dumps(meta)}))
    with pytest.raises(TraceError, match="expected packed uint8"):
        SparseTrace.load(path)


def test_wrong_dtype(tmp_path):
    tr = make_trace()
    path = tmp_path / "d.safetensors"
    path.write_bytes(_rewrite(tr, tensors={"query.root": tr.sites["query"].root.astype(np.int64)}))
    with pytest.raises(TraceError, match=r"query\.root is int64"):
        SparseTrace.load(path)


def test_root_out_of_range(tmp_path):
    tr = make_trace()
    root = tr.sites["gate_proj"].root.copy()
    root[1, 0, 4, 2] = T
    path = tmp_path / "r.safetensors"
    path.write_bytes(_rewrite(tr, tensors={"gate_proj.root": root}))
    with pytest.raises(TraceError, match=rf"gate_proj\.root values must lie in \[0, {T}\)"):
        SparseTrace.load(path)


def test_root_not_own_index_where_not_similar(tmp_path):
    tr = make_trace()
    st = tr.sites["q_proj"]
    layer, _, t, j = np.argwhere(~st.similar & (np.arange(T)[:, None] > 0))[0]
    root = st.root.copy()
    root[layer, 0, t, j] = 0
    path = tmp_path / "o.safetensors"
    path.write_bytes(_rewrite(tr, tensors={"q_proj.root": root}))
    with pytest.raises(TraceError, match="differs from the own token index"):
        SparseTrace.load(path)


def test_similar_pointing_to_non_root_is_rejected():
    tr = make_trace()
    st = tr.sites["q_proj"]
    st.zero[0, 0, :, 0] = False
    st.similar[0, 0, :, 0] = False
    st.root[0, 0, :, 0] = np.arange(T)
    st.similar[0, 0, 1:3, 0] = True
    st.root[0, 0, 1:3, 0] = [0, 1]  # token 2 -> token 1, which is itself similar
    with pytest.raises(TraceError, match="itself zero or similar"):
        tr.validate()
    st.root[0, 0, 2, 0] = 0
    tr.validate()
    st.zero[0, 0, 2, 0] = True
    with pytest.raises(TraceError, match="both zero and similar"):
        tr.validate()


def test_unknown_site(tmp_path):
    tr = make_trace(sites=("query",), layers=2)
    q = tr.sites["query"]
    path = tmp_path / "u.safetensors"
    vectors = json.dumps({"query": 3, "k_proj": 3})
    path.write_bytes(
        _rewrite(
            tr,
            metadata={"vectors": vectors},
            tensors={
                "k_proj.zero": np.packbits(q.zero, axis=-1, bitorder="little"),
                "k_proj.similar": np.packbits(q.similar, axis=-1, bitorder="little"),
                "k_proj.root": q.root,
            },
        )
    )
    with pytest.raises(TraceError, match="unknown site.*k_proj"):
        SparseTrace.load(path)
    tr.sites["k_proj"] = q
    with pytest.raises(TraceError, match="unknown site"):
        tr.save(tmp_path / "never.safetensors")
    assert not (tmp_path / "never.safetensors").exists()


def test_bad_params_in_metadata(tmp_path):
    tr = make_trace()
    meta = tr.meta.to_dict()
    meta["params"]["threshold"] = 5.0
    path = tmp_path / "p.safetensors"
    path.write_bytes(_rewrite(tr, metadata={"meta": json.dumps(meta)}))
    with pytest.raises(TraceError, match=r"p\.safetensors.*threshold"):
        SparseTrace.load(path)


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "t.safetensors"
    old = make_trace(seed=1)
    old.save(path)
    before = path.read_bytes()

    import focus_hw.fileio as fileio

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        make_trace(seed=2).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]
    assert_same(old, SparseTrace.load(path))
