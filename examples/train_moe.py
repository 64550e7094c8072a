"""Trains a small MoE model on the CPU with moe_mlir.torch.MoELayer.

The task: regress a fixed random two-layer network (the "teacher") from
64-dimensional inputs. The model is a projection, an MoE layer (8 experts,
top-2, a small load-balancing loss) with a residual, and a head. Both the
forward and the backward of the MoE layer are MoE-MLIR artifacts, compiled
on the first step (cached afterwards). Prints the loss; it goes down.

    python examples/train_moe.py [--steps 60]
"""

import argparse
import time

import torch

from moe_mlir.torch import MoELayer


class Model(torch.nn.Module):
    def __init__(self, dim=64, hidden=32):
        super().__init__()
        self.inp = torch.nn.Linear(dim, hidden)
        self.norm = torch.nn.LayerNorm(hidden)
        self.moe = MoELayer(hidden=hidden, ffn=32, experts=8, top_k=2,
                            aux_loss=0.01)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        h = self.inp(x)
        moe, aux = self.moe(self.norm(h))
        return self.out(h + moe).squeeze(-1), aux


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    teacher = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(),
                                  torch.nn.Linear(64, 1))
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = 64
    losses = []
    start = time.time()
    for step in range(args.steps):
        x = torch.randn(batch, 64)
        with torch.no_grad():
            target = teacher(x).squeeze(-1)
        prediction, aux = model(x)
        loss = torch.nn.functional.mse_loss(prediction, target)
        optimizer.zero_grad()
        (loss + aux).backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == args.steps - 1:
            loads = model.moe.loads.tolist()
            print(f"step {step:3d}  loss {loss.item():.4f}  aux "
                  f"{aux.item():.4f}  expert loads {loads}")
    first = sum(losses[:5]) / 5
    last = sum(losses[-5:]) / 5
    print(f"mean loss of the first 5 steps {first:.4f}, of the last 5 "
          f"{last:.4f} ({time.time() - start:.1f} s)")
    if not last < 0.5 * first:
        raise SystemExit("the loss did not go down")


if __name__ == "__main__":
    main()
