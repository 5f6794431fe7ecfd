import os

# Spinning OpenMP threads make small ops slow on 2 cores; tests run single-threaded torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

torch.set_num_threads(1)
