"""liveworld: real-time, interactive, general world models.

The data path, one folder each: data/ -> tokenizers/ -> model/ -> flow/ -> train/ -> engine/ ->
serve/ -> eval/; cli.py names each stage.
"""

__version__ = "0.1.0"
