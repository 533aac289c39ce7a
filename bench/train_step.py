"""Lightning training step vs a plain PyTorch loop: same model, same batch, same optimizer.

Prints ms/step for each and the ratio (goal <= 1.10). Both run the same number of steps after
the same warm-up, interleaved in rounds so machine noise hits both alike.
Usage: python bench/train_step.py [--steps 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from mrseq.nets import build_net
from mrseq.training import SequenceClassifier

SHAPE = (64, 64, 20)
BATCH = 16


class Repeat(Dataset):
    def __init__(self, x, y, n):
        self.x, self.y, self.n = x, y, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.x[i % len(self.x)], self.y[i % len(self.y)]


def plain(model: SequenceClassifier, loader: DataLoader) -> float:
    opt = model.configure_optimizers()["optimizer"]
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        loss = model.loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def lightning(model: SequenceClassifier, loader: DataLoader) -> float:
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    x, y = torch.rand(BATCH, 1, *SHAPE), torch.randint(0, 5, (BATCH,))
    loader = DataLoader(Repeat(list(x), list(y), BATCH * args.steps), batch_size=BATCH)
    model = SequenceClassifier(build_net(), lr=1e-3, weight_decay=1e-4, epochs=1)
    plain(model, DataLoader(Repeat(list(x), list(y), BATCH * 3), batch_size=BATCH))  # warm-up
    times = {"plain": [], "lightning": []}
    for _ in range(args.rounds):
        times["plain"].append(plain(model, loader))
        times["lightning"].append(lightning(model, loader))
    best = {k: min(v) / args.steps * 1000 for k, v in times.items()}
    print(
        f"input {SHAPE}, batch {BATCH}, {args.steps} steps x {args.rounds} rounds, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"plain PyTorch loop: {best['plain']:.1f} ms/step")
    print(f"Lightning:          {best['lightning']:.1f} ms/step")
    print(f"ratio Lightning / plain: {best['lightning'] / best['plain']:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
