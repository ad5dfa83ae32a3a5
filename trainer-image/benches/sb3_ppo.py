"""Stable-Baselines3 PPO with RL-Zoo's hyperparameters: the competitor of the `baselines` bench
(trainer-image/benches/baselines.rs), which runs it with the Python of tools/baselines-env.sh and
prints its figures beside the drlaas trainer's.

Prints one JSON line. With `--threshold`: seconds and environment steps until the mean return of the
last `--window` training episodes first reaches it (null if it never does within `--max-steps`). With
`--budget`: seconds to train all `--max-steps` steps, then the mean return of `--eval-episodes`
episodes of the policy's mean action (observations normalized with the training statistics, rewards
the environment's own). Times count from the first step (model construction, imports and the
environment's creation are not counted, as they are not for the drlaas trainer).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize


def linear(start: float):
    """RL-Zoo's `lin_X`: X times the fraction of training left."""
    return lambda progress_remaining: progress_remaining * start


# rl-baselines3-zoo, hyperparams/ppo.yml (the entries for these ids), as SB3's PPO takes them.
ZOO = {
    "CartPole-v1": {
        "n_envs": 8,
        "ppo": {
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "ent_coef": 0.0,
            "learning_rate": linear(0.001),
            "clip_range": linear(0.2),
        },
    },
    "Pendulum-v1": {
        "n_envs": 4,
        "ppo": {
            "n_steps": 1024,
            "gae_lambda": 0.95,
            "gamma": 0.9,
            "n_epochs": 10,
            "ent_coef": 0.0,
            "learning_rate": 1e-3,
            "clip_range": 0.2,
            "use_sde": True,
            "sde_sample_freq": 4,
        },
    },
    # The HalfCheetah entry (tuned for v3, the same task as v5), with its VecNormalize.
    "HalfCheetah-v5": {
        "n_envs": 1,
        "normalize": True,
        "ppo": {
            "batch_size": 64,
            "n_steps": 512,
            "gamma": 0.98,
            "learning_rate": 2.0633e-05,
            "ent_coef": 0.000401762,
            "clip_range": 0.1,
            "n_epochs": 20,
            "gae_lambda": 0.92,
            "max_grad_norm": 0.8,
            "vf_coef": 0.58096,
            "policy_kwargs": {
                "log_std_init": -2,
                "ortho_init": False,
                "activation_fn": torch.nn.ReLU,
                "net_arch": {"pi": [256, 256], "vf": [256, 256]},
            },
        },
    },
}


class Solved(BaseCallback):
    """Stops training when the mean return of the last `window` finished episodes reaches `threshold`."""

    def __init__(self, threshold: float, window: int) -> None:
        super().__init__()
        self.threshold = threshold
        self.window = window
        self.started = 0.0
        self.solved: tuple[float, int] | None = None

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()

    def _on_step(self) -> bool:
        episodes = self.model.ep_info_buffer
        if len(episodes) >= self.window:
            recent = list(episodes)[-self.window :]
            if sum(e["r"] for e in recent) / self.window >= self.threshold:
                self.solved = (time.perf_counter() - self.started, self.num_timesteps)
                return False
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", choices=sorted(ZOO), required=True)
    parser.add_argument("--seed", type=int, required=True)
    goal = parser.add_mutually_exclusive_group(required=True)
    goal.add_argument("--threshold", type=float, help="stop once the training window reaches this return")
    goal.add_argument("--budget", action="store_true", help="train all --max-steps, then evaluate")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=300_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    zoo = ZOO[args.env]
    env = make_vec_env(args.env, n_envs=zoo["n_envs"], seed=args.seed)
    if zoo.get("normalize"):
        env = VecNormalize(env, gamma=zoo["ppo"]["gamma"])
    # SB3's episode buffer keeps 100 episodes, the window of the solved criterion.
    model = PPO("MlpPolicy", env, seed=args.seed, device="cpu", stats_window_size=max(100, args.window), **zoo["ppo"])
    if args.budget:
        started = time.perf_counter()
        model.learn(total_timesteps=args.max_steps)
        seconds = time.perf_counter() - started
        evaluation = make_vec_env(args.env, n_envs=1, seed=args.seed + 1000)
        if isinstance(env, VecNormalize):
            evaluation = VecNormalize(evaluation, training=False, norm_reward=False)
            evaluation.obs_rms = env.obs_rms
        mean, std = evaluate_policy(model, evaluation, n_eval_episodes=args.eval_episodes, deterministic=True)
        print(
            json.dumps(
                {"seconds": seconds, "envSteps": model.num_timesteps, "evalMeanReturn": mean, "evalStdReturn": std}
                | {"seed": args.seed, "env": args.env}
            )
        )
        return
    solved = Solved(args.threshold, args.window)
    model.learn(total_timesteps=args.max_steps, callback=solved)
    seconds, steps = solved.solved if solved.solved else (None, None)
    print(json.dumps({"seconds": seconds, "envSteps": steps, "seed": args.seed, "env": args.env}))


if __name__ == "__main__":
    main()
