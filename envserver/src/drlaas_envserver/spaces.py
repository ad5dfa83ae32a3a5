"""Gymnasium spaces on the wire: their JSON description, observations as flat f32 rows, actions from bytes.

The protocol carries three spaces (discrete, multiDiscrete, box). Each codec is built once per
connection, so that per step the server only copies numbers into preallocated rows; anything else
(Dict, Tuple, MultiBinary, Text, Graph, ...) is refused up front, naming the space, rather than
failing at the first step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from .protocol import ProtocolError

# Space reprs (a Dict of many boxes) can be long; an error message shows the start.
_REPR_LIMIT = 300


def space_name(space: Any) -> str:
    text = repr(space)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _unsupported(space: Any, field: str) -> ProtocolError:
    return ProtocolError(
        field,
        f"{space_name(space)} is not carried by the environment protocol "
        "(it carries Discrete, MultiDiscrete and Box spaces)",
    )


def _bounds(values: np.ndarray) -> list[float | None]:
    # An unbounded side is null: JSON has no infinity.
    return [None if not np.isfinite(v) else float(v) for v in values.reshape(-1).astype(np.float64)]


def describe(space: Any, field: str) -> dict[str, Any]:
    """The JSON description of a space (SPACES' observationSpace or actionSpace)."""
    if isinstance(space, spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "multiDiscrete", "nvec": [int(n) for n in space.nvec.reshape(-1)]}
    if isinstance(space, spaces.Box):
        return {
            "type": "box",
            "shape": [int(d) for d in space.shape],
            "low": _bounds(space.low),
            "high": _bounds(space.high),
        }
    raise _unsupported(space, field)


# ---------------------------------------------------------------------------------------------------
# Observations


class ObservationCodec:
    """Writes one observation of a space into one f32 row of the wire."""

    wire_shape: list[int]
    width: int

    def write(self, obs: Any, row: np.ndarray) -> None:
        raise NotImplementedError


class BoxObservations(ObservationCodec):
    """A box as it is, converted to f32 (an image's integers are not scaled: the trainer decides)."""

    def __init__(self, space: spaces.Box) -> None:
        self.shape = tuple(space.shape)
        self.width = int(np.prod(self.shape, dtype=np.int64))
        # A scalar box (shape ()) travels as shape [1]: a row always has at least one axis.
        self.wire_shape = [int(d) for d in self.shape] or [1]

    def write(self, obs: Any, row: np.ndarray) -> None:
        values = np.asarray(obs)
        if values.size != self.width:
            raise ValueError(f"an observation of shape {values.shape} in a Box of shape {self.shape}")
        row[:] = values.reshape(-1)


class DiscreteObservations(ObservationCodec):
    """A discrete observation as a one-hot vector of length n."""

    def __init__(self, space: spaces.Discrete) -> None:
        self.n = int(space.n)
        self.start = int(space.start)
        self.width = self.n
        self.wire_shape = [self.n]

    def write(self, obs: Any, row: np.ndarray) -> None:
        index = int(obs) - self.start
        if not 0 <= index < self.n:
            raise ValueError(f"an observation {obs!r} outside Discrete({self.n}, start={self.start})")
        row[:] = 0.0
        row[index] = 1.0


class MultiDiscreteObservations(ObservationCodec):
    """A multi-discrete observation as the concatenation of one one-hot vector per component."""

    def __init__(self, space: spaces.MultiDiscrete) -> None:
        self.nvec = space.nvec.reshape(-1).astype(np.int64)
        self.start = space.start.reshape(-1).astype(np.int64)
        # Where each component's one-hot vector begins in the row.
        self.offsets = np.concatenate([[0], np.cumsum(self.nvec)[:-1]]).astype(np.int64)
        self.width = int(self.nvec.sum())
        self.wire_shape = [self.width]

    def write(self, obs: Any, row: np.ndarray) -> None:
        values = np.asarray(obs, dtype=np.int64).reshape(-1) - self.start
        if values.shape != self.nvec.shape or np.any(values < 0) or np.any(values >= self.nvec):
            raise ValueError(f"an observation {obs!r} outside MultiDiscrete({self.nvec.tolist()})")
        row[:] = 0.0
        row[self.offsets + values] = 1.0


def observation_codec(space: Any) -> ObservationCodec:
    """The codec of an observation space, or ProtocolError(`observationSpace`) naming the space."""
    if isinstance(space, spaces.Box):
        return BoxObservations(space)
    if isinstance(space, spaces.Discrete):
        return DiscreteObservations(space)
    if isinstance(space, spaces.MultiDiscrete):
        return MultiDiscreteObservations(space)
    raise _unsupported(space, "observationSpace")


# ---------------------------------------------------------------------------------------------------
# Actions


class ActionCodec:
    """Turns STEP's `(rows, width)` wire values into one environment action per row, checking the range."""

    description: dict[str, Any]

    def decode(self, wire: np.ndarray) -> list[Any]:
        raise NotImplementedError


class DiscreteActions(ActionCodec):
    def __init__(self, space: spaces.Discrete) -> None:
        self.n = int(space.n)
        self.start = int(space.start)
        self.description = describe(space, "actionSpace")

    def decode(self, wire: np.ndarray) -> list[Any]:
        values = wire[:, 0]
        bad = np.flatnonzero((values < self.start) | (values >= self.start + self.n))
        if bad.size:
            row = int(bad[0])
            raise ProtocolError(
                "action",
                f"action {int(values[row])} of row {row} is outside [{self.start}, {self.start + self.n})",
            )
        # Python ints: what every Gymnasium environment accepts for a Discrete action.
        return values.tolist()


class MultiDiscreteActions(ActionCodec):
    def __init__(self, space: spaces.MultiDiscrete) -> None:
        if np.any(space.start != 0):
            # The protocol's multiDiscrete has no start; shifting silently would surprise a requester.
            raise ProtocolError(
                "actionSpace", f"{space_name(space)} has a non-zero start, which the protocol does not carry"
            )
        self.nvec = space.nvec.reshape(-1).astype(np.int64)
        self.shape = space.nvec.shape
        self.dtype = space.dtype
        self.description = describe(space, "actionSpace")

    def decode(self, wire: np.ndarray) -> list[Any]:
        bad = np.argwhere((wire < 0) | (wire >= self.nvec))
        if bad.size:
            row, component = (int(i) for i in bad[0])
            raise ProtocolError(
                "action",
                f"action {int(wire[row, component])} of row {row}, component {component}, "
                f"is outside [0, {int(self.nvec[component])})",
            )
        values = wire.astype(self.dtype)
        return [values[r].reshape(self.shape) for r in range(values.shape[0])]


class BoxActions(ActionCodec):
    """Box actions as sent: the server does not clip (the trainer clips or squashes before it sends)."""

    def __init__(self, space: spaces.Box) -> None:
        self.shape = tuple(space.shape)
        self.dtype = space.dtype
        self.description = describe(space, "actionSpace")

    def decode(self, wire: np.ndarray) -> list[Any]:
        # astype copies: the environment gets a writable array of its own dtype.
        values = wire.astype(self.dtype)
        return [values[r].reshape(self.shape) for r in range(values.shape[0])]


def action_codec(space: Any) -> ActionCodec:
    """The codec of an action space, or ProtocolError(`actionSpace`) naming the space."""
    if isinstance(space, spaces.Discrete):
        return DiscreteActions(space)
    if isinstance(space, spaces.MultiDiscrete):
        return MultiDiscreteActions(space)
    if isinstance(space, spaces.Box):
        return BoxActions(space)
    raise _unsupported(space, "actionSpace")


__all__ = [
    "ActionCodec",
    "ObservationCodec",
    "action_codec",
    "describe",
    "observation_codec",
    "space_name",
]
