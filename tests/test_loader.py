import numpy as np
import pytest
import torch

from vaelab.data.loader import ImageDataset, TensorLoader


def _data(n=103):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 1, 4, 4), dtype=np.uint8), np.arange(n)


def _order(loader, epoch):
    loader.set_epoch(epoch)
    return torch.cat([y for _, y in loader]).tolist()


def test_every_index_once_per_epoch_and_reproducible():
    x, y = _data()
    a = TensorLoader(x, y, batch_size=10, seed=3)
    b = TensorLoader(x, y, batch_size=10, seed=3)
    e0, e1 = _order(a, 0), _order(a, 1)
    assert sorted(e0) == list(range(103)) and sorted(e1) == list(range(103))
    assert e0 != e1  # epochs differ
    assert _order(b, 0) == e0 and _order(b, 1) == e1  # same seed, same order
    assert _order(TensorLoader(x, y, batch_size=10, seed=4), 0) != e0
    assert len(a) == 11


def test_batches_are_float_in_unit_range_and_match_labels():
    x, y = _data()
    for xb, yb in TensorLoader(x, y, batch_size=16, shuffle=True, seed=0):
        assert xb.dtype == torch.float32 and xb.shape[1:] == (1, 4, 4)
        np.testing.assert_allclose(xb.numpy(), x[yb.numpy()] / 255.0, rtol=0, atol=1e-7)


def test_drop_last_and_no_shuffle():
    x, y = _data()
    loader = TensorLoader(x, y, batch_size=10, shuffle=False, drop_last=True)
    assert _order(loader, 0) == list(range(100)) and len(loader) == 10


def test_ddp_slices_are_disjoint_and_cover():
    x, y = _data(100)
    parts = [_order(TensorLoader(x, y, 7, seed=1, rank=r, world_size=4), 2) for r in range(4)]
    assert sorted(i for part in parts for i in part) == list(range(100))


def test_dynamic_binarisation_draws_per_epoch():
    x, y = _data()
    loader = TensorLoader(x, y, batch_size=103, shuffle=False, binarize="dynamic", seed=0)
    loader.set_epoch(0)
    b0 = next(iter(loader))[0]
    again = next(iter(loader))[0]
    loader.set_epoch(1)
    b1 = next(iter(loader))[0]
    assert set(b0.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(b0, again) and not torch.equal(b0, b1)
    # the draw is unbiased: mean of binary pixels ≈ mean intensity
    assert abs(b0.mean().item() - x.mean() / 255) < 0.05


def test_static_binarisation_is_fixed():
    x, y = _data()
    loader = TensorLoader(x, y, batch_size=103, shuffle=False, binarize="static", seed=0)
    loader.set_epoch(0)
    b0 = next(iter(loader))[0]
    loader.set_epoch(5)
    assert torch.equal(b0, next(iter(loader))[0])
    assert set(b0.unique().tolist()) <= {0.0, 1.0}


def test_invalid_arguments():
    x, y = _data()
    with pytest.raises(ValueError, match="binarize"):
        TensorLoader(x, y, 4, binarize="sometimes")  # type: ignore[arg-type]


def test_dataset_view():
    x, y = _data()
    ds = ImageDataset(x, y)
    xi, yi = ds[5]
    assert len(ds) == 103 and yi == 5
    np.testing.assert_allclose(xi.numpy(), x[5] / 255.0, atol=1e-7)


def test_min_last_batch_drops_a_final_batch_of_one():
    x = np.zeros((65, 1, 4, 4), np.uint8)
    y = np.zeros(65, np.int64)
    loader = TensorLoader(x, y, 32, min_last_batch=2)
    sizes = [len(b) for b, _ in loader]
    assert sizes == [32, 32] and len(loader) == 2
    loose = TensorLoader(x, y, 32)
    assert [len(b) for b, _ in loose] == [32, 32, 1] and len(loose) == 3
    kept = TensorLoader(np.zeros((66, 1, 4, 4), np.uint8), np.zeros(66), 32, min_last_batch=2)
    assert [len(b) for b, _ in kept] == [32, 32, 2] and len(kept) == 3
