"""PettingZoo parallel environments: one row per agent, agents that leave early, heterogeneous agents refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from envs_for_tests import TeamEnv
from helpers import assert_closed, expect_error

TEAM = {"pettingzoo": "envs_for_tests:team_parallel_env", "kwargs": {"length": 4, "c_steps": 2}}


def acts(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def test_spaces_have_one_row_per_agent(serve: Callable) -> None:
    spaces = serve().hello(TEAM, num_envs=2).raw
    assert spaces["agents"] == 3
    assert spaces["agentIds"] == ["a", "b", "c"]
    assert spaces["observationShape"] == [3]
    assert spaces["actionSpace"] == {"type": "discrete", "n": 3, "start": 0}
    assert spaces["maxEpisodeSteps"] is None


def test_rows_rewards_and_the_end_of_an_episode(serve: Callable) -> None:
    client = serve()
    client.hello(TEAM, num_envs=2)
    obs = client.reset([5, 6])
    assert obs.shape == (6, 3)
    # Rows are agent a, b, c of environment 0, then of environment 1; each seeded by its environment.
    plain = [TeamEnv(length=4, c_steps=2), TeamEnv(length=4, c_steps=2)]
    for e, seed in enumerate([5, 6]):
        first, _ = plain[e].reset(seed=seed)
        for i, agent in enumerate("abc"):
            np.testing.assert_array_equal(obs[e * 3 + i], first[agent])
    assert not np.array_equal(obs[0, 2], obs[3, 2])

    # Step 1: everyone acts.
    s = client.step(acts(1, 2, 0, 2, 1, 1))
    np.testing.assert_array_equal(s.rewards, [1, 2, 0, 2, 1, 1])
    for e in range(2):
        want, *_ = plain[e].step({"a": 1, "b": 2, "c": 0} if e == 0 else {"a": 2, "b": 1, "c": 1})
        for i, agent in enumerate("abc"):
            np.testing.assert_array_equal(s.observations[e * 3 + i], want[agent])
    assert not s.terminated.any() and not s.truncated.any() and not s.episodes

    # Step 2: agent c terminates; it is rewarded for this step, then its rows are zero.
    s = client.step(acts(1, 1, 2, 1, 1, 2))
    np.testing.assert_array_equal(s.rewards, [1, 1, 2, 1, 1, 2])
    np.testing.assert_array_equal(s.observations[2], np.zeros(3))
    np.testing.assert_array_equal(s.observations[5], np.zeros(3))
    assert s.observations[0, 0] == 2.0 and s.observations[1, 0] == 2.0
    assert not s.terminated.any() and not s.truncated.any() and not s.episodes

    # Step 3: c's action is ignored (TeamEnv raises if it is passed on), its reward is zero.
    s = client.step(acts(2, 2, 2, 0, 0, 2))
    np.testing.assert_array_equal(s.rewards, [2, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(s.observations[2], np.zeros(3))

    # Step 4: a and b are truncated, nobody is left: the episode ends, truncated (no agent terminated now).
    s = client.step(acts(1, 0, 1, 1, 1, 1))
    np.testing.assert_array_equal(s.truncated, [1, 1])
    np.testing.assert_array_equal(s.terminated, [0, 0])
    assert sorted(s.final_observations) == [0, 1]
    final = s.final_observations[0]
    assert final.shape == (3, 3)
    np.testing.assert_array_equal(final[:, :2], [[4, 0], [4, 1], [0, 0]])
    assert final[2, 2] == 0.0  # c was gone: a zero final observation.
    # Next episode: every agent is back, at step 0.
    np.testing.assert_array_equal(s.observations[:, :2], [[0, 0], [0, 1], [0, 2]] * 2)
    # Returns: the sum over the episode of every agent's rewards.
    returns = {ep.env: (ep.episode_return, ep.length) for ep in s.episodes}
    assert returns == {0: (1 + 2 + 0 + 1 + 1 + 2 + 2 + 2 + 1 + 0, 4), 1: (2 + 1 + 1 + 1 + 1 + 2 + 0 + 0 + 1 + 1, 4)}


def test_agents_that_are_gone_get_zero_whatever_the_environment_reports(serve: Callable) -> None:
    client = serve()
    client.hello({**TEAM, "kwargs": {"length": 3, "c_steps": 1, "report_all": True}}, num_envs=1)
    client.reset([1])
    s = client.step(acts(1, 1, 1))
    np.testing.assert_array_equal(s.rewards, [1, 1, 1])
    np.testing.assert_array_equal(s.observations[2], np.zeros(3))
    s = client.step(acts(1, 1, 1))
    np.testing.assert_array_equal(s.rewards, [1, 1, 0])  # Not the 100 TeamEnv reports for c.
    np.testing.assert_array_equal(s.observations[2], np.zeros(3))
    s = client.step(acts(1, 1, 1))
    assert s.truncated[0] == 1
    np.testing.assert_array_equal(s.final_observations[0][2], np.zeros(3))
    assert s.final_observations[0][0, 0] == 3.0
    assert [(ep.episode_return, ep.length) for ep in s.episodes] == [(7.0, 3)]


def test_an_episode_that_ends_by_termination_is_terminated(serve: Callable) -> None:
    client = serve()
    client.hello({**TEAM, "kwargs": {"length": 3, "c_steps": 1, "terminate_all": True}}, num_envs=1)
    client.reset([1])
    for _ in range(2):
        s = client.step(acts(0, 0, 0))
        assert not s.episodes
    s = client.step(acts(0, 0, 0))
    assert s.terminated[0] == 1 and s.truncated[0] == 0
    assert [(ep.env, ep.length) for ep in s.episodes] == [(0, 3)]


def test_same_seeds_give_the_same_rows(serve: Callable) -> None:
    def run(seed: int) -> bytes:
        client = serve()
        client.hello(TEAM, num_envs=1)
        out = client.reset([seed]).tobytes()
        for _ in range(6):
            out += client.step(acts(1, 1, 1)).observations.tobytes()
        return out

    assert run(9) == run(9)
    assert run(9) != run(10)


@pytest.mark.parametrize(
    ("factory", "field", "agent"),
    [("HeterogeneousEnv", "observationSpace", "'b'"), ("HeterogeneousActionsEnv", "actionSpace", "'c'")],
)
def test_heterogeneous_agents_are_refused_naming_the_agent(
    serve: Callable, factory: str, field: str, agent: str
) -> None:
    client = serve()
    expect_error(
        lambda: client.hello({"pettingzoo": f"envs_for_tests:{factory}"}, num_envs=1),
        field,
        f"agent {agent}",
        "heterogeneous",
    )
    assert_closed(client)


def test_an_aec_environment_is_refused(serve: Callable) -> None:
    client = serve()
    expect_error(
        lambda: client.hello({"pettingzoo": "envs_for_tests:team_aec_env"}, num_envs=1),
        "environment.pettingzoo",
        "AEC",
    )
