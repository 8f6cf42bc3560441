import os
import pickle

import numpy as np
import pytest

from vaelab.data.sources import safe_loads
from vaelab.errors import DataError


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_refuses_a_pickle_that_calls_a_function(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(((np.zeros(2), np.zeros(2)), _RunsACommand(marker)))
    with pytest.raises(DataError, match=r"refused to load global (posix|os)\.system"):
        safe_loads(payload)
    assert not marker.exists()


def test_refuses_builtins_eval():
    payload = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(DataError, match=r"builtins\.eval"):
        safe_loads(payload)


def test_accepts_numpy_arrays_in_tuples():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 256
    y = np.arange(3, dtype=np.int64)
    (a, b), c = safe_loads(pickle.dumps(((x, y), (1, "s"))))
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(b, y)
    assert c == (1, "s")
