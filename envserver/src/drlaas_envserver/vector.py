"""A vector of `numEnvs` copies of one environment, stepped as one: what one connection serves.

Per step the server loops over the copies in Python (each is a Python object with its own `step`),
but everything around that loop is numpy: observations are written into preallocated f32 rows that go
out as they are, actions are decoded and range-checked for the whole batch at once, and nothing is
encoded as JSON after SPACES.

Auto-reset happens in the same step (docs/env-protocol.md): an environment whose episode ended
reports its final observation apart and its next episode's first observation in the row. The server
keeps each environment's running return and length, so finished episodes are reported exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import SERVER_NAME
from .environments import Built, close_all
from .protocol import F32, MAX_FRAME, PROTOCOL_VERSION, U8, ProtocolError, encode_stepped
from .spaces import ActionCodec, ObservationCodec, action_codec, describe, observation_codec, space_name

# The agent id of a single-agent (Gymnasium) environment, in SPACES' agentIds.
SINGLE_AGENT_ID = "agent"


def _raised(field: str, env: int, name: str, e: BaseException) -> ProtocolError:
    error = ProtocolError(field, f"environment {env} ({name}) raised {type(e).__name__}: {e}")
    error.__cause__ = e
    return error


class Vector:
    """The state and buffers shared by the single-agent and the multi-agent vector."""

    def __init__(
        self,
        built: Built,
        agent_ids: list[str],
        observation_space: Any,
        action_space: Any,
        max_episode_steps: int | None,
    ) -> None:
        self.envs = built.envs
        self.name = built.name
        self.num_envs = len(built.envs)
        self.agent_ids = agent_ids
        self.agents = len(agent_ids)
        self.rows = self.num_envs * self.agents
        self.observation_description = describe(observation_space, "observationSpace")
        self.action_description = describe(action_space, "actionSpace")
        self.obs_codec: ObservationCodec = observation_codec(observation_space)
        self.act_codec: ActionCodec = action_codec(action_space)
        self.obs_len = self.obs_codec.width
        self.max_episode_steps = max_episode_steps
        self._check_frame_sizes()

        self.obs = np.zeros((self.rows, self.obs_len), dtype=F32)
        self.rewards = np.zeros(self.rows, dtype=F32)
        self.terminated = np.zeros(self.num_envs, dtype=U8)
        self.truncated = np.zeros(self.num_envs, dtype=U8)
        # Final observations of the environments that ended in a step, by environment.
        self.finals = np.zeros((self.num_envs, self.agents * self.obs_len), dtype=F32)
        self.episode_return = np.zeros(self.num_envs, dtype=np.float64)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)

    def _check_frame_sizes(self) -> None:
        # The largest STEPPED: every environment ends (a final observation and an episode each).
        row_bytes = self.obs_len * F32.itemsize
        largest = (
            1
            + self.rows * (row_bytes + 4)
            + 2 * self.num_envs
            + 4
            + self.num_envs * (4 + self.agents * row_bytes)
            + 4
            + self.num_envs * 12
        )
        if largest > MAX_FRAME:
            raise ProtocolError(
                "numEnvs",
                f"{self.num_envs} environments of {self.agents} agent(s) x {self.obs_len} f32 need STEPPED frames "
                f"of up to {largest} bytes, over the protocol's {MAX_FRAME}",
            )

    def spaces(self) -> dict[str, Any]:
        """SPACES' JSON."""
        return {
            "protocol": PROTOCOL_VERSION,
            "numEnvs": self.num_envs,
            "agents": self.agents,
            "agentIds": self.agent_ids,
            "observationSpace": self.observation_description,
            "observationShape": self.obs_codec.wire_shape,
            "actionSpace": self.action_description,
            "maxEpisodeSteps": self.max_episode_steps,
            "server": SERVER_NAME,
        }

    def _write(self, obs: Any, row: np.ndarray, env: int, field: str) -> None:
        try:
            self.obs_codec.write(obs, row)
        except (ValueError, TypeError) as e:
            raise ProtocolError(
                field, f"environment {env} ({self.name}) gave an observation that does not fit its space: {e}"
            ) from e

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Resets every environment with its seed; returns the `(rows, obsLen)` observations."""
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0
        for e, seed in enumerate(seeds):
            self._reset_one(e, seed)
        return self.obs

    def step(self, wire_actions: np.ndarray) -> list[Any]:
        """One step of every environment; returns STEPPED's parts."""
        actions = self.act_codec.decode(wire_actions)
        self.terminated[:] = 0
        self.truncated[:] = 0
        ended: list[int] = []
        episodes: list[tuple[int, float, int]] = []
        for e in range(self.num_envs):
            terminated, truncated = self._step_one(e, actions)
            if terminated or truncated:
                # Both at once is reported as terminated only: there is nothing to bootstrap.
                self.terminated[e] = terminated
                self.truncated[e] = not terminated
                ended.append(e)
                episodes.append((e, float(self.episode_return[e]), int(self.episode_length[e])))
                self.episode_return[e] = 0.0
                self.episode_length[e] = 0
                self._reset_one(e, None)
        return encode_stepped(
            self.obs, self.rewards, self.terminated, self.truncated, ended, self.finals[ended], episodes
        )

    def close(self) -> None:
        close_all(self.envs)

    # The single- and multi-agent vectors differ only in these two.

    def _reset_one(self, env: int, seed: int | None) -> None:
        """Resets one environment (seeded, or going on from its generator) and writes its rows."""
        raise NotImplementedError

    def _step_one(self, env: int, actions: list[Any]) -> tuple[bool, bool]:
        """Steps one environment, writes its rewards and rows (its final observation if it ended)."""
        raise NotImplementedError


class GymnasiumVector(Vector):
    """Copies of a Gymnasium environment: one row per environment."""

    def __init__(self, built: Built) -> None:
        env = built.envs[0]
        spec = getattr(env, "spec", None)
        max_steps = getattr(spec, "max_episode_steps", None) if spec is not None else None
        super().__init__(built, [SINGLE_AGENT_ID], env.observation_space, env.action_space, max_steps)

    def _reset_one(self, env: int, seed: int | None) -> None:
        instance = self.envs[env]
        try:
            if seed is not None:
                instance.action_space.seed(seed)
            obs, _ = instance.reset(seed=seed)
        except Exception as e:
            raise _raised("environment.reset", env, self.name, e) from e
        self._write(obs, self.obs[env], env, "environment.reset")

    def _step_one(self, env: int, actions: list[Any]) -> tuple[bool, bool]:
        try:
            obs, reward, terminated, truncated, _ = self.envs[env].step(actions[env])
            reward = float(reward)
        except Exception as e:
            raise _raised("environment.step", env, self.name, e) from e
        self.rewards[env] = reward
        self.episode_return[env] += reward
        self.episode_length[env] += 1
        ended = bool(terminated) or bool(truncated)
        # The row gets the next episode's first observation from _reset_one; the final one goes apart.
        self._write(obs, self.finals[env] if ended else self.obs[env], env, "environment.step")
        return bool(terminated), bool(truncated)


class ParallelVector(Vector):
    """Copies of a PettingZoo parallel environment: `len(possible_agents)` rows per environment.

    One shared policy acts for every agent, so every agent must have the same spaces. An agent that is
    gone before the others gets a zero row and zero reward, and its action is ignored; the episode ends
    when `env.agents` is empty.
    """

    def __init__(self, built: Built) -> None:
        env = built.envs[0]
        ids = list(env.possible_agents)
        if not ids:
            raise ProtocolError("environment.pettingzoo", f"{built.name} has no possible_agents")
        for e, other in enumerate(built.envs[1:], start=1):
            if list(other.possible_agents) != ids:
                raise ProtocolError(
                    "environment.pettingzoo", f"copy {e} of {built.name} has other possible_agents than copy 0"
                )
        obs_space = env.observation_space(ids[0])
        act_space = env.action_space(ids[0])
        for agent in ids[1:]:
            for field, mine, first in (
                ("observationSpace", env.observation_space(agent), obs_space),
                ("actionSpace", env.action_space(agent), act_space),
            ):
                if mine != first:
                    raise ProtocolError(
                        field,
                        f"agent {agent!r} has {space_name(mine)} but agent {ids[0]!r} has {space_name(first)}: "
                        "heterogeneous agents are not served (one shared policy acts for every agent)",
                    )
        self.ids = ids
        self.index = {agent: i for i, agent in enumerate(ids)}
        super().__init__(built, [str(a) for a in ids], obs_space, act_space, None)

    def _rows(self, env: int) -> np.ndarray:
        return self.obs[env * self.agents : (env + 1) * self.agents]

    def _write_agents(self, observations: dict[Any, Any], rows: np.ndarray, alive: Any, env: int, field: str) -> None:
        for i, agent in enumerate(self.ids):
            if agent in alive and agent in observations:
                self._write(observations[agent], rows[i], env, field)
            else:
                rows[i] = 0.0

    def _reset_one(self, env: int, seed: int | None) -> None:
        instance = self.envs[env]
        try:
            if seed is not None:
                for agent in self.ids:
                    instance.action_space(agent).seed(seed)
            observations, _ = instance.reset(seed=seed)
            alive = set(instance.agents)
        except Exception as e:
            raise _raised("environment.reset", env, self.name, e) from e
        self._write_agents(observations, self._rows(env), alive, env, "environment.reset")

    def _step_one(self, env: int, actions: list[Any]) -> tuple[bool, bool]:
        instance = self.envs[env]
        base = env * self.agents
        try:
            acting = {agent: actions[base + self.index[agent]] for agent in instance.agents}
            observations, rewards, terminations, _, _ = instance.step(acting)
            rewards = {agent: float(r) for agent, r in rewards.items()}
            alive = set(instance.agents)
        except Exception as e:
            raise _raised("environment.step", env, self.name, e) from e
        # Only the agents that acted are rewarded: one that is gone gets zero, whatever the environment says.
        row_rewards = self.rewards[base : base + self.agents]
        row_rewards[:] = 0.0
        total = 0.0
        for agent in acting:
            reward = rewards.get(agent, 0.0)
            row_rewards[self.index[agent]] = reward
            total += reward
        self.episode_return[env] += total
        self.episode_length[env] += 1
        if alive:
            self._write_agents(observations, self._rows(env), alive, env, "environment.step")
            return False, False
        # No agent left: the episode is over. The agents of this last step have their final observation,
        # those gone before a zero one. Terminated if any of them terminated in this step, else truncated.
        final = self.finals[env].reshape(self.agents, self.obs_len)
        self._write_agents(observations, final, acting, env, "environment.step")
        terminated = any(bool(terminations.get(agent, False)) for agent in acting)
        return terminated, not terminated


def make_vector(built: Built) -> Vector:
    """The vector for built environments; refuses their spaces here, before the first RESET."""
    try:
        if built.multi_agent:
            return ParallelVector(built)
        return GymnasiumVector(built)
    except BaseException:
        close_all(built.envs)
        raise
