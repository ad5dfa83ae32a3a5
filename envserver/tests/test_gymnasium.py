"""Gymnasium environments through the server, compared with the same environments stepped directly.

`reference` below is the protocol's semantics written the plain way (one environment, reset by hand
after each episode), so every test checks the server's vector against Gymnasium itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from drlaas_envserver.protocol import Stepped

from envs_for_tests import CountingEnv, GridEnv


@dataclass
class Expected:
    obs: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    final: np.ndarray | None
    episode: tuple[float, int] | None


def reference(
    make: Callable[[], gymnasium.Env], seed: int, actions: list[Any], encode: Callable[[Any], np.ndarray]
) -> tuple[np.ndarray, list[Expected]]:
    """One environment stepped directly: its first observation, then what each step should report."""
    env = make()
    obs, _ = env.reset(seed=seed)
    first = encode(obs)
    out = []
    episode_return, length = 0.0, 0
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        episode_return += float(reward)
        length += 1
        final = episode = None
        if terminated or truncated:
            final, episode = encode(obs), (episode_return, length)
            episode_return, length = 0.0, 0
            obs, _ = env.reset()
        out.append(Expected(encode(obs), float(reward), terminated, truncated and not terminated, final, episode))
    env.close()
    return first, out


def box(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)


def one_hot(nvec: list[int]) -> Callable[[Any], np.ndarray]:
    def encode(obs: Any) -> np.ndarray:
        values = np.asarray(obs).reshape(-1)
        return np.concatenate([np.eye(n, dtype=np.float32)[v] for n, v in zip(nvec, values, strict=True)])

    return encode


def compare(
    client: Any,
    environment: dict[str, Any],
    make: Callable[[], gymnasium.Env],
    seeds: list[int],
    actions: np.ndarray,
    encode: Callable[[Any], np.ndarray],
    to_env: Callable[[np.ndarray], Any],
) -> int:
    """Steps the server with `actions[t, env]` and checks every step against `reference`; returns the
    number of episodes that ended (so a test can insist some did)."""
    num_envs = len(seeds)
    client.hello(environment, num_envs)
    obs = client.reset(seeds)
    expected = [reference(make, seed, [to_env(a) for a in actions[:, e]], encode) for e, seed in enumerate(seeds)]
    for e in range(num_envs):
        np.testing.assert_array_equal(obs[e], expected[e][0])
    ended = 0
    for t in range(actions.shape[0]):
        stepped: Stepped = client.step(actions[t])
        for e in range(num_envs):
            want = expected[e][1][t]
            np.testing.assert_array_equal(stepped.observations[e], want.obs, err_msg=f"step {t}, env {e}")
            assert stepped.rewards[e] == np.float32(want.reward)
            assert bool(stepped.terminated[e]) == want.terminated
            assert bool(stepped.truncated[e]) == want.truncated
            if want.final is None:
                assert e not in stepped.final_observations
            else:
                ended += 1
                np.testing.assert_array_equal(stepped.final_observations[e][0], want.final)
        episodes = {ep.env: (ep.episode_return, ep.length) for ep in stepped.episodes}
        assert len(episodes) == len(stepped.episodes)
        want_episodes = {e: expected[e][1][t].episode for e in range(num_envs) if expected[e][1][t].episode}
        assert episodes.keys() == want_episodes.keys()
        for e, (ret, length) in episodes.items():
            assert ret == np.float32(want_episodes[e][0])
            assert length == want_episodes[e][1]
    return ended


def test_cartpole_spaces(serve: Callable) -> None:
    spaces = serve().hello({"gymnasium": "CartPole-v1"}, num_envs=4).raw
    assert spaces["protocol"] == 1
    assert spaces["numEnvs"] == 4
    assert spaces["agents"] == 1
    assert spaces["agentIds"] == ["agent"]
    assert spaces["actionSpace"] == {"type": "discrete", "n": 2, "start": 0}
    assert spaces["observationShape"] == [4]
    obs_space = spaces["observationSpace"]
    assert obs_space["type"] == "box" and obs_space["shape"] == [4]
    # Velocities are unbounded: null, not a number.
    assert obs_space["low"][1] is None and obs_space["high"][1] is None
    assert abs(obs_space["high"][0] - 4.8) < 1e-6
    assert spaces["maxEpisodeSteps"] == 500
    assert spaces["server"].startswith("drlaas-envserver ")


def test_cartpole_matches_gymnasium_across_auto_resets(serve: Callable) -> None:
    actions = np.random.default_rng(0).integers(0, 2, size=(80, 3)).astype(np.int32)
    ended = compare(
        serve(),
        {"gymnasium": "CartPole-v1"},
        lambda: gymnasium.make("CartPole-v1"),
        [11, 12, 13],
        actions,
        box,
        int,
    )
    # A random policy drops the pole within ~20 steps: several auto-resets were checked.
    assert ended >= 6


def test_same_seeds_and_actions_give_the_same_episodes(serve: Callable) -> None:
    actions = np.random.default_rng(1).integers(0, 2, size=(40, 2)).astype(np.int32)

    def run(seeds: list[int]) -> list[bytes]:
        client = serve()
        client.hello({"gymnasium": "CartPole-v1"}, num_envs=2)
        out = [client.reset(seeds).tobytes()]
        for a in actions:
            s = client.step(a)
            out.append(s.observations.tobytes() + s.rewards.tobytes() + s.terminated.tobytes())
        return out

    first = run([7, 2**64 - 1])
    assert run([7, 2**64 - 1]) == first
    assert run([8, 2**64 - 1])[0] != first[0]


def test_truncation_is_kept_apart_from_termination(serve: Callable) -> None:
    client = serve()
    spaces = client.hello({"gymnasium": "CartPole-v1", "kwargs": {"max_episode_steps": 5}}, num_envs=1)
    assert spaces.raw["maxEpisodeSteps"] == 5
    client.reset([3])
    plain = gymnasium.make("CartPole-v1", max_episode_steps=5)
    plain.reset(seed=3)
    for t, action in enumerate([0, 1, 0, 1, 0]):
        stepped = client.step(np.array([action], dtype=np.int32))
        obs, _, terminated, truncated, _ = plain.step(action)
        assert not terminated  # Balanced actions: the pole stays up, only the time limit ends it.
        if t < 4:
            assert not stepped.truncated[0] and not stepped.terminated[0] and not stepped.episodes
            np.testing.assert_array_equal(stepped.observations[0], box(obs))
    assert truncated
    assert stepped.truncated[0] == 1 and stepped.terminated[0] == 0
    np.testing.assert_array_equal(stepped.final_observations[0][0], box(obs))
    (episode,) = stepped.episodes
    assert (episode.env, episode.episode_return, episode.length) == (0, 5.0, 5)
    # The row already holds the next episode's first observation, not the final one.
    assert not np.array_equal(stepped.observations[0], box(obs))
    np.testing.assert_array_equal(stepped.observations[0], box(plain.reset()[0]))


def test_pendulum_box_actions_match_gymnasium(serve: Callable) -> None:
    actions = np.random.default_rng(2).uniform(-2, 2, size=(205, 2, 1)).astype(np.float32)
    client = serve()
    spaces = client.hello({"gymnasium": "Pendulum-v1"}, num_envs=2)
    assert spaces.raw["actionSpace"] == {"type": "box", "shape": [1], "low": [-2.0], "high": [2.0]}
    client.close()
    # Pendulum's episodes are cut at 200 steps: the comparison crosses a truncation.
    ended = compare(
        serve(),
        {"gymnasium": "Pendulum-v1"},
        lambda: gymnasium.make("Pendulum-v1"),
        [21, 22],
        actions,
        box,
        lambda a: np.asarray(a, dtype=np.float32),
    )
    assert ended == 2


def test_discrete_observations_are_one_hot(serve: Callable) -> None:
    client = serve()
    spaces = client.hello({"gymnasium": "FrozenLake-v1", "kwargs": {"is_slippery": False}}, num_envs=1)
    assert spaces.raw["observationSpace"] == {"type": "discrete", "n": 16, "start": 0}
    assert spaces.raw["observationShape"] == [16]
    obs = client.reset([0])
    np.testing.assert_array_equal(obs[0], np.eye(16, dtype=np.float32)[0])
    # Down, down, right, down, right, right: from S to G on the 4x4 map, around the holes.
    path = [1, 1, 2, 1, 2, 2]
    plain = gymnasium.make("FrozenLake-v1", is_slippery=False)
    plain.reset(seed=0)
    for action in path[:-1]:
        stepped = client.step(np.array([action], dtype=np.int32))
        state = plain.step(action)[0]
        np.testing.assert_array_equal(stepped.observations[0], np.eye(16, dtype=np.float32)[state])
    stepped = client.step(np.array([path[-1]], dtype=np.int32))
    assert stepped.terminated[0] == 1 and stepped.rewards[0] == 1.0
    np.testing.assert_array_equal(stepped.final_observations[0][0], np.eye(16, dtype=np.float32)[15])
    np.testing.assert_array_equal(stepped.observations[0], np.eye(16, dtype=np.float32)[0])
    assert [(e.episode_return, e.length) for e in stepped.episodes] == [(1.0, 6)]


def test_multi_discrete_actions_and_observations(serve: Callable) -> None:
    client = serve()
    spaces = client.hello({"class": "envs_for_tests:GridEnv"}, num_envs=2)
    assert spaces.raw["actionSpace"] == {"type": "multiDiscrete", "nvec": [3, 4]}
    assert spaces.raw["observationSpace"] == {"type": "multiDiscrete", "nvec": [3, 4, 5]}
    assert spaces.raw["observationShape"] == [12]
    client.close()
    rng = np.random.default_rng(3)
    actions = np.stack([rng.integers(0, 3, size=(9, 2)), rng.integers(0, 4, size=(9, 2))], axis=-1).astype(np.int32)
    ended = compare(serve(), {"class": "envs_for_tests:GridEnv"}, GridEnv, [1, 2], actions, one_hot([3, 4, 5]), list)
    assert ended == 4  # Episodes of 4 steps: both environments truncate at steps 4 and 8.


def test_requesters_class_with_kwargs_and_a_discrete_start(serve: Callable) -> None:
    client = serve()
    spaces = client.hello({"class": "envs_for_tests:CountingEnv", "kwargs": {"length": 2}}, num_envs=2)
    assert spaces.raw["actionSpace"] == {"type": "discrete", "n": 3, "start": 1}
    assert spaces.raw["maxEpisodeSteps"] is None
    client.close()
    actions = np.array([[1, 3], [3, 2], [2, 2]], dtype=np.int32)
    ended = compare(
        serve(),
        {"class": "envs_for_tests:CountingEnv", "kwargs": {"length": 2}},
        lambda: CountingEnv(length=2),
        [4, 5],
        actions,
        box,
        int,
    )
    assert ended == 2


def test_reset_restarts_the_episode_counters(serve: Callable) -> None:
    client = serve()
    client.hello({"class": "envs_for_tests:CountingEnv", "kwargs": {"length": 3}}, num_envs=1)
    client.reset([1])
    client.step(np.array([3], dtype=np.int32))
    client.reset([1])
    client.step(np.array([1], dtype=np.int32))
    client.step(np.array([1], dtype=np.int32))
    stepped = client.step(np.array([2], dtype=np.int32))
    # The step before the second RESET does not count: 3 steps, return 1 + 1 + 2.
    assert [(e.episode_return, e.length) for e in stepped.episodes] == [(4.0, 3)]


def test_an_episode_both_terminated_and_truncated_is_terminated(serve: Callable) -> None:
    client = serve()
    client.hello({"class": "envs_for_tests:CountingEnv", "kwargs": {"length": 1, "both": True}}, num_envs=1)
    client.reset([1])
    stepped = client.step(np.array([2], dtype=np.int32))
    assert stepped.terminated[0] == 1 and stepped.truncated[0] == 0
    assert [(e.episode_return, e.length) for e in stepped.episodes] == [(2.0, 1)]
