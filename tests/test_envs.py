import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env

import liveworld  # noqa: F401  (registers liveworld/World-v0)


def test_world_model_is_a_gymnasium_env(tiny_run):
    env = gymnasium.make("liveworld/World-v0", checkpoint=str(tiny_run), render_mode="rgb_array", threads=1)
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.shape == (24, 32, 3) and obs.dtype == np.uint8
    assert isinstance(env.action_space, gymnasium.spaces.MultiBinary) and env.action_space.n == 8
    obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert info["audio"].shape == (1260, 2) and not terminated
    assert env.render().shape == obs2.shape


def test_env_samples_with_the_worlds_own_steps(tiny_run, tmp_path):
    from liveworld.train.export import export_world

    world = export_world(tiny_run, tmp_path / "world", steps=3)
    env = gymnasium.make("liveworld/World-v0", checkpoint=str(world), threads=1)
    assert env.unwrapped.engine.steps == 3  # as `play` samples it, unless steps= is given
    env2 = gymnasium.make("liveworld/World-v0", checkpoint=str(world), threads=1, steps=1)
    assert env2.unwrapped.engine.steps == 1
