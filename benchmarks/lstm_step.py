"""How close does an LSTM training step come to the machine's matrix-multiply speed?

Times one training step (forward + backward) of a 2-layer ``torch.nn.LSTM`` (hidden 256 and 512,
batch 64, 30 steps, input size = hidden), converts it to achieved GFLOP/s, and prints it next to the
GFLOP/s of ``torch.mm`` measured in the same run on
  * the input projection's shape   (B*T, H) x (H, 4H)  -- what one big matmul over all steps reaches,
  * the recurrent step's shape     (B, H) x (H, 4H)     -- what each sequential step can reach,
  * a big square                   (1024, 1024) x (1024, 1024).
It also times seqnlp's explicit-gates ``seqnlp.nn.LSTM`` on the same step and prints fused / explicit.

FLOP count (multiply-add = 2 FLOPs; elementwise gate math, biases and the loss are ignored):
  forward, per layer:  2 * B * T * 4H * (I_layer + H)   (x_t @ W_ih^T and h_{t-1} @ W_hh^T for 4 gates)
  backward            ~ 2 * forward                       (grad w.r.t. inputs/states + grad w.r.t. weights)
  training step       = 3 * sum over layers of the forward count.

    python benchmarks/lstm_step.py --threads 2 --json results/lstm_step_cpu.json
    python benchmarks/lstm_step.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch

import seqnlp.nn


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int, inner: int = 1) -> float:
    """Median time of one ``fn`` call: ``repeats`` samples of ``inner`` calls, after ``warmup`` samples."""
    for _ in range(warmup * inner):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def lstm_train_flops(batch: int, steps: int, input_size: int, hidden: int, layers: int) -> float:
    """3 x forward matmul FLOPs, forward = sum over layers of 2 * B * T * 4H * (I_layer + H)."""
    forward = sum(2 * batch * steps * 4 * hidden * ((input_size if k == 0 else hidden) + hidden) for k in range(layers))
    return 3.0 * forward


def mm_gflops(m: int, k: int, n: int, device: torch.device, warmup: int, repeats: int) -> float:
    """GFLOP/s of ``torch.mm`` on (m, k) x (k, n): samples of >= ~20 ms, after >= ~0.3 s of warm-up."""
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    once = median_seconds(lambda: torch.mm(a, b), device, warmup=3, repeats=3)
    inner = max(1, math.ceil(0.02 / once))
    seconds = median_seconds(lambda: torch.mm(a, b), device, max(warmup, 15), max(repeats, 7), inner)
    return 2.0 * m * k * n / seconds / 1e9


def lstm_step_seconds(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device, warmup: int, repeats: int
) -> float:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        output, _ = model(x)
        output.sum().backward()

    return median_seconds(step, device, warmup, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-explicit", action="store_true", help="skip seqnlp.nn.LSTM")
    parser.add_argument("--json", default=None, help="write the results to this path")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"torch {torch.__version__} | device {device} ({device_name or 'cpu'}) | "
        f"threads {torch.get_num_threads()} | B={args.batch} T={args.steps} layers={args.layers} | "
        f"median of {args.repeats} after {args.warmup} warm-up"
    )

    big = mm_gflops(1024, 1024, 1024, device, args.warmup, args.repeats)
    print(f"torch.mm 1024 x 1024 x 1024: {big:9.1f} GFLOP/s")
    results = {
        "args": vars(args),
        "torch": torch.__version__,
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "mm_square_1024_gflops": big,
        "configs": [],
    }

    header = (
        f"{'H':>5} {'GFLOP/step':>10} {'mm(BT,H,4H)':>12} {'mm(B,H,4H)':>11} {'fused ms':>9}"
        f" {'fused GF/s':>10} {'fused/mm':>8} {'fused/sq':>8}"
        f" {'expl ms':>9} {'expl GF/s':>9} {'fused/expl':>10}"
    )
    print(header)
    for hidden in args.hidden:
        flops = lstm_train_flops(args.batch, args.steps, hidden, hidden, args.layers)
        mm_proj = mm_gflops(args.batch * args.steps, hidden, 4 * hidden, device, args.warmup, args.repeats)
        mm_step = mm_gflops(args.batch, hidden, 4 * hidden, device, args.warmup, args.repeats)
        x = torch.randn(args.steps, args.batch, hidden, device=device, requires_grad=True)
        fused = torch.nn.LSTM(hidden, hidden, args.layers).to(device)
        fused_s = lstm_step_seconds(fused, x, device, args.warmup, args.repeats)
        row = {
            "hidden": hidden,
            "train_gflop_per_step": flops / 1e9,
            "mm_proj_gflops": mm_proj,
            "mm_step_gflops": mm_step,
            "fused_ms": fused_s * 1e3,
            "fused_gflops": flops / fused_s / 1e9,
        }
        row["fused_over_mm_proj"] = row["fused_gflops"] / mm_proj
        row["fused_over_mm_square"] = row["fused_gflops"] / big
        line = (
            f"{hidden:>5} {flops / 1e9:>10.2f} {mm_proj:>12.1f} {mm_step:>11.1f} {row['fused_ms']:>9.1f}"
            f" {row['fused_gflops']:>10.1f} {row['fused_over_mm_proj']:>8.2f}"
            f" {row['fused_over_mm_square']:>8.2f}"
        )
        if not args.no_explicit:
            explicit = seqnlp.nn.LSTM(hidden, hidden, args.layers).to(device)
            explicit.load_state_dict(fused.state_dict())
            explicit_s = lstm_step_seconds(explicit, x, device, args.warmup, args.repeats)
            row["explicit_ms"] = explicit_s * 1e3
            row["explicit_gflops"] = flops / explicit_s / 1e9
            row["fused_over_explicit_speed"] = explicit_s / fused_s
            line += (
                f" {row['explicit_ms']:>9.1f} {row['explicit_gflops']:>9.1f} {row['fused_over_explicit_speed']:>10.2f}"
            )
        print(line)
        results["configs"].append(row)

    print(
        "GF/s = achieved training GFLOP/s (3 x forward matmul FLOPs / median step time); fused/mm and "
        "fused/sq = that over torch.mm GFLOP/s at (B*T,H)x(H,4H) and 1024^3; fused/expl = "
        "explicit time / fused time"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
