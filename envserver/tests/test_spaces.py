"""Spaces on the wire: descriptions, one-hot observations, action decoding and the spaces refused."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from drlaas_envserver.protocol import ProtocolError
from drlaas_envserver.spaces import action_codec, describe, observation_codec


def test_descriptions() -> None:
    assert describe(spaces.Discrete(5, start=-2), "actionSpace") == {"type": "discrete", "n": 5, "start": -2}
    assert describe(spaces.MultiDiscrete([2, 3]), "actionSpace") == {"type": "multiDiscrete", "nvec": [2, 3]}
    box = spaces.Box(low=np.array([[-1.0, -np.inf]]), high=np.array([[np.inf, 2.0]]), dtype=np.float64)
    assert describe(box, "observationSpace") == {
        "type": "box",
        "shape": [1, 2],
        "low": [-1.0, None],
        "high": [None, 2.0],
    }


def test_box_observations_keep_their_values_and_shape() -> None:
    codec = observation_codec(spaces.Box(0, 255, shape=(2, 2, 3), dtype=np.uint8))
    assert codec.wire_shape == [2, 2, 3] and codec.width == 12
    row = np.zeros(12, dtype=np.float32)
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    codec.write(image, row)
    np.testing.assert_array_equal(row, image.reshape(-1).astype(np.float32))  # not scaled
    with pytest.raises(ValueError, match="shape"):
        codec.write(np.zeros(3), row)


def test_a_scalar_box_travels_as_shape_one() -> None:
    codec = observation_codec(spaces.Box(-1, 1, shape=(), dtype=np.float32))
    assert codec.wire_shape == [1] and codec.width == 1


def test_discrete_and_multi_discrete_observations_are_one_hot() -> None:
    codec = observation_codec(spaces.Discrete(4, start=10))
    row = np.full(4, 9.0, dtype=np.float32)
    codec.write(12, row)
    np.testing.assert_array_equal(row, [0, 0, 1, 0])
    with pytest.raises(ValueError):
        codec.write(14, row)
    codec = observation_codec(spaces.MultiDiscrete([2, 3], start=[1, 0]))
    assert codec.wire_shape == [5]
    row = np.full(5, 9.0, dtype=np.float32)
    codec.write(np.array([2, 1]), row)
    np.testing.assert_array_equal(row, [0, 1, 0, 1, 0])


def test_actions_are_decoded_per_space() -> None:
    assert action_codec(spaces.Discrete(3, start=-1)).decode(np.array([[-1], [1]], dtype="<i4")) == [-1, 1]
    multi = action_codec(spaces.MultiDiscrete([[2, 3], [4, 5]])).decode(np.array([[1, 2, 3, 4]], dtype="<i4"))
    assert multi[0].shape == (2, 2) and multi[0].tolist() == [[1, 2], [3, 4]]
    box = action_codec(spaces.Box(-1, 1, shape=(2,), dtype=np.float64)).decode(np.array([[5.0, -0.5]], dtype="<f4"))
    # Not clipped: the trainer decides.
    assert box[0].dtype == np.float64 and box[0].tolist() == [5.0, -0.5]


@pytest.mark.parametrize(
    "space",
    [
        spaces.Dict({"a": spaces.Discrete(2)}),
        spaces.Tuple((spaces.Discrete(2),)),
        spaces.MultiBinary(3),
        spaces.Text(5),
    ],
)
def test_other_spaces_are_refused_by_name(space: spaces.Space) -> None:
    for make, field in ((observation_codec, "observationSpace"), (action_codec, "actionSpace")):
        with pytest.raises(ProtocolError) as info:
            make(space)
        assert info.value.field == field
        assert type(space).__name__ in info.value.message


def test_a_multi_discrete_action_with_a_start_is_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        action_codec(spaces.MultiDiscrete([2, 3], start=[1, 0]))
    assert info.value.field == "actionSpace"
