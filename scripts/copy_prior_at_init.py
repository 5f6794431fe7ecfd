"""What an untrained world model returns one frame ahead, with the velocity head and with the
copy-prior (delta) head: teacher-forced PSNR of 128 frames of held-out episodes, 1 step.

    .venv/bin/python scripts/copy_prior_at_init.py [DATASET]   # default datasets/doom-heldout
"""
import sys

import dataclasses, json, torch
torch.set_num_threads(1)
import numpy as np
from liveworld.bundled import bundled_checkpoint
from liveworld.world import load_world_model, load_world_tokenizers
from liveworld.model.omni import OmniWorldModel, PRESETS
from liveworld.data.shards import Dataset
from liveworld.eval.evaluate import encode_episode, teacher_forced, Sampling
_, meta = load_world_model(bundled_checkpoint())
tok = load_world_tokenizers(meta)
ds = Dataset.open(sys.argv[1] if len(sys.argv) > 1 else "datasets/doom-heldout")
eps = [encode_episode(ds.load(i), tok, 24) for i in ds.ids()[:6]]
rng = np.random.default_rng(0)
pos = [(e, t) for e, ep in enumerate(eps) for t in range(1, len(ep.video))]
pick = sorted(rng.choice(len(pos), 128, replace=False))
for out in ("velocity", "delta"):
    torch.manual_seed(0)
    m = OmniWorldModel(dataclasses.replace(PRESETS["cpu"], output=out)).eval()
    r = teacher_forced(m, tok, eps, 5, Sampling(1), [pos[i] for i in pick], torch.Generator().manual_seed(0))
    print(out, json.dumps({k: round(v, 2) for k, v in r.items()}))
