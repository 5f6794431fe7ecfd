"""liveworld: real-time, interactive, general world models.

The data path, one folder each: data/ -> tokenizers/ -> model/ -> flow/ -> train/ -> engine/ ->
serve/ -> eval/; cli.py names each stage.
"""

__version__ = "0.1.0"


def _register_gymnasium_env() -> None:
    """Makes `gymnasium.make("liveworld/World-v0", checkpoint=...)` work after `import liveworld`."""
    try:
        from liveworld.envs import register
    except ImportError:  # gymnasium is a dependency; this only guards broken installs
        return
    register()


_register_gymnasium_env()
