"""Train the toy model in its own process (``python toy_run.py OUT_DIR MAX_STEPS``): the SIGKILL test's victim."""

import sys

import torch
from toy import make_trainer, toy_data

if __name__ == "__main__":
    torch.set_num_threads(1)
    make_trainer(sys.argv[1], toy_data(200), epochs=4, max_steps=int(sys.argv[2]), save_every=1,
                 eval_every=7).fit()
