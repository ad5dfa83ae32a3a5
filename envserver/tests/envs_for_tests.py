"""Environments the tests ask the server for by name (`envs_for_tests:Name`), as a requester would.

pytest puts tests/ on sys.path (pyproject's pythonpath), and the subprocess tests put it on PYTHONPATH,
so the server imports this module like any requester's module.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo.utils.env import ParallelEnv


class CountingEnv(gymnasium.Env):
    """A requester's own environment: the observation is (step, last action, noise), reward the action.

    Actions are Discrete(3, start=1), so a test can tell the server keeps `start`; the noise comes
    from the seeded generator, so a test can tell seeds apart. The episode terminates after `length`
    steps (and is truncated in the same step if `both`).
    """

    def __init__(self, length: int = 3, both: bool = False) -> None:
        self.length = length
        # Whether the last step is truncated as well as terminated (a time limit on the terminal step).
        self.both = both
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float64)
        self.action_space = spaces.Discrete(3, start=1)
        self.t = 0

    def _obs(self, action: int) -> np.ndarray:
        return np.array([self.t, action, self.np_random.uniform()], dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(0), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.action_space.contains(action), action
        self.t += 1
        done = self.t >= self.length
        return self._obs(action), float(action), done, done and self.both, {}


class GridEnv(gymnasium.Env):
    """MultiDiscrete actions and observations: the observation is the last action, plus a seeded component."""

    def __init__(self, length: int = 4) -> None:
        self.length = length
        self.action_space = spaces.MultiDiscrete([3, 4])
        self.observation_space = spaces.MultiDiscrete([3, 4, 5])
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.array([0, 0, self.np_random.integers(5)]), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.action_space.contains(action), action
        self.t += 1
        obs = np.array([action[0], action[1], self.np_random.integers(5)])
        return obs, float(action[0] * 10 + action[1]), False, self.t >= self.length, {}


class EchoBoxEnv(gymnasium.Env):
    """A Box action space with mixed bounds, whose observation is the action it received.

    Component 0 is in [-1, 2], component 1 is unbounded below and at most 0.5, component 2 is
    unbounded: a test can see which side of which component the trainer clipped. Episodes last 4
    steps; the reward is the sum of the action.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Box(
            np.array([-1.0, -np.inf, -np.inf], dtype=np.float32),
            np.array([2.0, 0.5, np.inf], dtype=np.float32),
            dtype=np.float32,
        )
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        action = np.asarray(action, dtype=np.float32)
        return action.copy(), float(action.sum()), False, self.t >= 4, {}


class CrashingEnv(CountingEnv):
    """Raises in its `crash_at`-th step (counted over its life, across episodes)."""

    def __init__(self, crash_at: int = 2, length: int = 100) -> None:
        super().__init__(length=length)
        self.crash_at = crash_at
        self.steps = 0

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.steps += 1
        if self.steps >= self.crash_at:
            raise RuntimeError(f"the simulator exploded at step {self.steps}")
        return super().step(action)


class CrashingResetEnv(CountingEnv):
    """Raises when reset without a seed: the auto-reset after its first episode."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is None:
            raise ValueError("cannot reset without a seed")
        return super().reset(seed=seed)


# Ids of the ClosingEnv instances closed so far (the server closes every environment of a connection).
CLOSED: list[int] = []


class ClosingEnv(CountingEnv):
    """Records its close in CLOSED."""

    def close(self) -> None:
        CLOSED.append(id(self))


class DictObsEnv(CountingEnv):
    """A Dict observation space: the protocol does not carry it."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict({"position": spaces.Box(-1, 1, shape=(2,)), "gear": spaces.Discrete(3)})


class NotAnEnv:
    """A class that is not a gymnasium.Env."""

    def __init__(self, **_kwargs: Any) -> None:
        raise AssertionError("the server must refuse this class without constructing it")


class TeamEnv(ParallelEnv):
    """Three agents sharing spaces; agent "c" is done after `c_steps` steps (terminated), the others
    after `length` steps (truncated, unless `terminate_all`).

    An observation is (step, agent index, seeded noise); the reward of an agent is its action. Acting
    for an agent that is gone is an error here, as in many PettingZoo environments, so a test can tell
    the server ignores the actions of agents that are gone.
    """

    metadata: dict[str, Any] = {"name": "team_v0"}  # noqa: RUF012 - PettingZoo's own annotation
    render_mode = None

    def __init__(
        self, length: int = 4, c_steps: int = 2, terminate_all: bool = False, report_all: bool = False
    ) -> None:
        self.possible_agents = ["a", "b", "c"]
        self.agents: list[str] = []
        self.length = length
        self.c_steps = c_steps
        self.terminate_all = terminate_all
        # Report observations and (made-up) rewards of gone agents too, as some environments do.
        self.report_all = report_all
        self._obs_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self._act_space = spaces.Discrete(3)
        self.t = 0
        self.rng = np.random.default_rng()

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    def _obs(self, agent: str) -> np.ndarray:
        return np.array([self.t, self.possible_agents.index(agent), self.rng.uniform()], dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        if set(actions) != set(self.agents):
            raise KeyError(f"actions for {sorted(actions)}, but the agents are {sorted(self.agents)}")
        self.t += 1
        observations = {a: self._obs(a) for a in self.agents}
        rewards = {a: float(actions[a]) for a in self.agents}
        terminations = {a: a == "c" and self.t >= self.c_steps for a in self.agents}
        truncations = {a: a != "c" and self.t >= self.length for a in self.agents}
        if self.terminate_all and self.t >= self.length:
            terminations = {a: True for a in self.agents}
            truncations = {a: False for a in self.agents}
        self.agents = [a for a in self.agents if not terminations[a] and not truncations[a]]
        if self.report_all:
            for agent in self.possible_agents:
                observations.setdefault(agent, self._obs(agent))
                rewards.setdefault(agent, 100.0)
        return observations, rewards, terminations, truncations, {a: {} for a in observations}


def team_parallel_env(**kwargs: Any) -> TeamEnv:
    """A factory, as PettingZoo packages have (`module:parallel_env`)."""
    return TeamEnv(**kwargs)


class HeterogeneousEnv(TeamEnv):
    """Agent "b" observes more than the others: one shared policy could not serve them."""

    def __init__(self) -> None:
        super().__init__()
        self._wide = spaces.Box(-np.inf, np.inf, shape=(5,), dtype=np.float32)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._wide if agent == "b" else self._obs_space


class HeterogeneousActionsEnv(TeamEnv):
    """Agent "c" has other actions than the others."""

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(5) if agent == "c" else self._act_space


def team_aec_env(**kwargs: Any) -> Any:
    """The AEC form of TeamEnv: the server serves parallel environments only."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(TeamEnv(**kwargs))


class HangingEnv(CountingEnv):
    """Never returns from its second step: a simulator that hangs."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.t >= 1:
            time.sleep(3600)
        return super().step(action)


class DyingEnv(CountingEnv):
    """Kills its server process in its second step, as a simulator that segfaults would."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.t >= 1:
            print("simulator: fatal error, core dumped", file=sys.stderr, flush=True)
            os._exit(3)
        return super().step(action)


# Registered ids, for tasks that name a Gymnasium id (`envs_for_tests:drlaas-tests/Crashing-v0` imports
# this module, which registers them).
gymnasium.register(id="drlaas-tests/Crashing-v0", entry_point=CrashingEnv, kwargs={"crash_at": 40})
