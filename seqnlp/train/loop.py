"""One training loop for every task model.

A task model follows one contract: ``loss(batch) -> (loss, n_items)`` where ``loss`` is the
mean over the ``n_items`` items (tokens, sentences) of the batch. The recipe hands the
loop a :class:`~seqnlp.data.batching.BatchIterator`, an ``evaluate(model) -> dict`` callback
and what the checkpoint needs besides the weights; the loop does the rest: AdamW/SGD, warm-up
and decay or reduce-on-plateau, clipping, an exponential moving average of the weights (OpenNMT-py's
``average_decay``), evaluation every N steps, early stopping, step / wall-time / CPU-time budgets, progress
bars with named throughput, a JSON-lines log, mixed precision on CUDA, checkpoints with exact
resume, Ctrl-C handling and non-finite-loss checks.
"""

from __future__ import annotations

import errno
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..config import ConfigError
from ..data.batching import BatchIterator
from . import checkpoint as ck
from .device import (
    autocast,
    keep_freed_memory,
    pick_device,
    pick_dtype,
    rng_state,
    seed_everything,
    set_rng_state,
    set_threads,
)
from .optim import WeightAverage, build_optimizer, build_scheduler


@dataclass
class TrainConfig:
    """Options of the training loop (``train.*`` in every recipe config)."""

    epochs: int = 10  # passes over the training data
    max_steps: int = 0  # stop after this many updates (0: no cap)
    max_minutes: float = 0.0  # stop after this much training wall time (0: no cap)
    optimizer: str = "adamw"  # adamw | adam | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    scheduler: str = "constant"  # constant | linear | cosine | plateau | inverse_sqrt
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # floor of decaying schedules, as a fraction of lr
    decay_steps: int = 0  # horizon of linear/cosine decay (0: derived from epochs/max_steps)
    decay_over: str = "steps"  # steps | time: linear/cosine decay over train.max_minutes of training time
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    clip_grad_norm: float = 5.0  # 0: off
    ema_decay: float = 0.0  # > 0 (e.g. 0.999): evaluate and save an exponential moving average of the weights
    ema_start: int = 0  # the average starts as a copy of the weights after this many updates
    ema_eval_raw: bool = False  # also evaluate the raw weights (logged as raw_<metric>; the average decides)
    eval_every: int = 0  # evaluate every N steps (0: at the end of each epoch)
    eval_metric: str = "loss"  # key of evaluate()'s dict used for best/early stopping/plateau
    eval_mode: str = "min"  # min | max
    patience: int = 0  # stop after this many evaluations without improvement (0: off)
    save_every: int = 0  # also save `latest` every N steps (0: at each evaluation only)
    keep_checkpoints: int = 2  # step checkpoints kept besides best
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps
    precision: str = "auto"  # auto (bf16 on CUDA) | fp32 | bf16 | fp16
    threads: int = 0  # torch intra-op threads (0: torch default)
    keep_freed_memory: bool = True  # CPU, glibc: no mmap/munmap per large tensor (1.05-1.33x; see device.py)
    log_every: int = 50
    nan_policy: str = "stop"  # stop | skip (skip the batch, count it)
    resume: bool = True  # continue from output_dir/checkpoints/latest when present (same data and model only)
    restart: bool = False  # start afresh although output_dir holds a run (it is moved to output_dir.previous-TIME)
    progress: bool = True  # tqdm progress bars


def say(msg: str) -> None:
    """A message for the user on stderr that does not break the progress bar."""
    tqdm.write(msg, file=sys.stderr)


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss under ``nan_policy=stop``)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the checkpoint is saved; the command exits 130 and writes no final metrics."""


class RunMismatch(ConfigError):
    """The run directory holds a run of other data or another model than this config's (resume refused)."""


# what must match for a run directory's latest checkpoint to be continued: (where in config.json, what it is)
RESUME_KEYS = (("model", "the model config"), ("data", "the data facts (labels, tags, ...)"),
               ("files", "the tokenizer / vocabulary files (sha256)"))
RESUME_CONFIG_BLOCKS = ("data", "tokenizer")  # blocks of the run config that fingerprint the training data


class Trainer:
    """Runs ``fit()`` for a model, its training batches and an evaluation callback.

    Args:
        model: a task model with ``loss(batch) -> (loss, n_items)``.
        train_batches: the training :class:`BatchIterator` (its sampler state is checkpointed).
        cfg: the loop's options.
        output_dir: run directory (``log.jsonl``, ``checkpoints/``).
        evaluate: ``evaluate(model) -> dict`` of validation metrics (model in eval mode; with
            ``cfg.ema_decay`` it sees the averaged weights, and checkpoints hold them as the model's weights,
            the raw ones in the training state).
        checkpoint_config: plain data written as the checkpoint's ``config.json``.
        extra_files: files of the checkpoint besides weights (see :func:`save_checkpoint`).
        cpu_minutes: also stop after this much CPU time spent in training steps (0: no cap).
            ``time.process_time()`` (CPU seconds of this process, all threads) is summed around each step, kept
            in the training state (exact resume), logged with the end record and returned by :meth:`fit` as
            ``train_cpu_seconds``; unlike ``max_minutes`` (wall time) it does not shrink when other jobs share
            the machine's cores: with one torch thread a CPU minute is a minute of one core.
    """

    def __init__(self, model: torch.nn.Module, train_batches: BatchIterator, cfg: TrainConfig,
                 output_dir: str | Path, evaluate: Callable[[torch.nn.Module], dict[str, float]] | None,
                 checkpoint_config: dict, extra_files: dict[str, Any] | None = None, cpu_minutes: float = 0.0):
        self.cfg = cfg
        self.cpu_minutes = cpu_minutes
        set_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.device = pick_device(cfg.device)
        if self.device.type == "cpu" and cfg.keep_freed_memory:
            keep_freed_memory()
        self.amp_dtype = pick_dtype(cfg.precision, self.device)
        self.model = model.to(self.device)
        self.batches = train_batches
        self.evaluate_fn = evaluate
        self.ckpt_config = checkpoint_config
        self.extra_files = extra_files or {}
        self.out = Path(output_dir)
        self.ckpt_root = self.out / "checkpoints"
        self.out.mkdir(parents=True, exist_ok=True)
        for p in ck.clean_stale(self.ckpt_root):  # a save that crashed (full disk, kill) left these
            say(f"removed {p}, left by an interrupted save")
        self.opt = build_optimizer(model, cfg)
        steps_per_epoch = len(train_batches)
        total = cfg.max_steps or steps_per_epoch * cfg.epochs
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0
        self.sched = build_scheduler(self.opt, cfg, total, elapsed=lambda: self.train_seconds)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.best: float | None = None
        self.bad_evals = 0
        self.skipped = 0
        self._interrupted = False
        self.history: list[dict] = []
        self.ema = WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None

    # --- logging ------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        record = {"step": self.step, "epoch": self.batches.sampler.epoch, **record}
        self.history.append(record)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    # --- checkpoints --------------------------------------------------------------------
    def _train_state(self) -> dict:
        return {
            "step": self.step,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.batches.sampler.state_dict(),
            "rng": rng_state(),
            "best": self.best,
            "bad_evals": self.bad_evals,
            "skipped": self.skipped,
            "train_seconds": self.train_seconds,
            "train_cpu_seconds": self.train_cpu_seconds,
            # state a model keeps between batches (e.g. a recurrent state carried in truncated BPTT)
            "model_state": self.model.training_state() if hasattr(self.model, "training_state") else {},
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def _averaged(self) -> bool:
        return self.ema is not None and bool(self.ema.avg)

    def save(self, best: bool = False) -> Path:
        """A checkpoint; with weight averaging its weights are the average (the state keeps the raw ones)."""
        name = f"step_{self.step:08d}"
        if self._averaged():
            self.ema.swap()  # model <- average, ema.avg <- raw weights (saved in the training state)
        try:
            path = ck.save_checkpoint(self.ckpt_root, name, self.model, self.ckpt_config,
                                      self._train_state(), self.extra_files)
        except OSError as e:
            ck.clean_stale(self.ckpt_root)
            what = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
            raise ck.CheckpointError(f"cannot save checkpoint {self.ckpt_root / name}: {what}; the previous "
                                     f"checkpoint ({self.ckpt_root / ck.LATEST}) is kept") from None
        finally:
            if self._averaged():
                self.ema.swap()
        ck.point(self.ckpt_root, ck.LATEST, name)
        if best:
            ck.point(self.ckpt_root, ck.BEST, name)
        best_target = (self.ckpt_root / ck.BEST).resolve().name if (self.ckpt_root / ck.BEST).exists() else ""
        ck.prune(self.ckpt_root, self.cfg.keep_checkpoints, {name, best_target})
        return path

    def check_same_run(self, latest: Path) -> None:
        """Refuse to continue ``latest`` with other data or another model (:class:`RunMismatch`, naming what
        differs): a resumed run would mix the old weights with a new vocabulary. Format-1 checkpoints predate
        the record and are not compared."""
        old = ck.read_config(latest)
        if not isinstance(old, dict) or old.get("format_version") != ck.FORMAT_VERSION:
            return
        new = dict(self.ckpt_config)
        if self.extra_files:
            with tempfile.TemporaryDirectory() as tmp:
                for fname, what in self.extra_files.items():
                    what(Path(tmp) / fname) if callable(what) else (Path(tmp) / fname).write_text(
                        json.dumps(what, indent=2))
                new[ck.FILES] = ck.digests(Path(tmp), list(self.extra_files))
        diffs = [f"{what}: {_diff(old.get(key), new.get(key))}" for key, what in RESUME_KEYS
                 if _plain(old.get(key)) != _plain(new.get(key))]
        for block in RESUME_CONFIG_BLOCKS:
            a, b = (old.get("config") or {}).get(block), (new.get("config") or {}).get(block)
            if _plain(a) != _plain(b):
                diffs.append(f"config block {block!r}: {_diff(a, b)}")
        if diffs:
            raise RunMismatch(f"{self.out} holds a run of other data or another model than this config's, so it "
                              f"cannot be continued ({latest.resolve().name}): " + "; ".join(diffs)
                              + ". Use the original config, another output_dir, or train.restart=true to start "
                              f"afresh (the old run is kept as {self.out}.previous-TIME)")

    def maybe_resume(self) -> bool:
        latest = self.ckpt_root / ck.LATEST
        if not (self.cfg.resume and latest.exists()):
            return False
        self.check_same_run(latest)
        ck.load_weights(self.model, latest)
        st = ck.load_train_state(latest)
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.scaler.load_state_dict(st["scaler"])
        self.batches.sampler.load_state_dict(st["sampler"])
        set_rng_state(st["rng"])
        self.step = int(st["step"])
        self.best = st["best"]
        self.bad_evals = int(st["bad_evals"])
        self.skipped = int(st["skipped"])
        self.train_seconds = float(st["train_seconds"])
        self.train_cpu_seconds = float(st.get("train_cpu_seconds", 0.0))
        if self.ema is not None and st.get("ema"):
            self.ema.load_state_dict(st["ema"])  # saved swapped: its avg holds the raw weights
            if self._averaged():
                self.ema.swap()  # model <- raw weights, ema.avg <- the average (the checkpoint's weights)
        if hasattr(self.model, "load_training_state"):
            self.model.load_training_state(st.get("model_state", {}))
        self.log({"event": "resumed", "from": str(latest.resolve().name)})
        say(f"resumed from {latest.resolve()} at step {self.step}")
        return True

    # --- evaluation ---------------------------------------------------------------------
    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.cfg.eval_mode == "min" else value > self.best

    def run_evaluation(self) -> dict[str, float]:
        if self.evaluate_fn is None:
            self.save()
            return {}
        self.model.eval()
        if self._averaged():
            self.ema.swap()
        try:
            with torch.no_grad(), autocast(self.device, self.amp_dtype):
                metrics = self.evaluate_fn(self.model)
        finally:
            if self._averaged():
                self.ema.swap()
        if self._averaged() and self.cfg.ema_eval_raw:
            with torch.no_grad(), autocast(self.device, self.amp_dtype):
                metrics.update({f"raw_{k}": v for k, v in self.evaluate_fn(self.model).items()})
        self.model.train()
        value = metrics.get(self.cfg.eval_metric)
        if value is None:
            raise TrainingError(f"train.eval_metric={self.cfg.eval_metric!r} is not among the "
                                f"evaluation metrics {sorted(metrics)}")
        improved = self._better(value)
        if improved:
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.sched.step(value)
        self.log({"event": "eval", **metrics, "best": self.best, "lr": self.opt.param_groups[0]["lr"]})
        self.save(best=improved)
        say(f"step {self.step}: " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()
                                                    if isinstance(v, (int, float))) + (" *" if improved else ""))
        return metrics

    # --- the loop -----------------------------------------------------------------------
    def _on_sigint(self, signum, frame) -> None:
        if self._interrupted:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self._interrupted = True
        say("interrupt received: saving a checkpoint after this step (Ctrl-C again to abort)")

    def _train_step(self, batch) -> tuple[float, int] | None:
        batch = batch.to(self.device)
        with autocast(self.device, self.amp_dtype):
            loss, n_items = self.model.loss(batch)
        if not torch.isfinite(loss.detach()):
            if self.cfg.nan_policy == "skip":
                self.skipped += 1
                self.opt.zero_grad(set_to_none=True)
                self.log({"event": "skipped_nonfinite", "loss": float(loss.detach()), "skipped": self.skipped})
                return None
            raise TrainingError(
                f"non-finite loss ({float(loss.detach())}) at step {self.step + 1}; the last good "
                f"checkpoint is kept in {self.ckpt_root} (set train.nan_policy=skip to skip such batches)")
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.clip_grad_norm > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm)
        self.scaler.step(self.opt)
        self.scaler.update()
        if not isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.sched.step()
        self.step += 1
        if self.ema is not None and self.step > self.cfg.ema_start:
            self.ema.update()
        return float(loss.detach()), int(n_items)

    def _done(self) -> str | None:
        c = self.cfg
        if c.max_steps and self.step >= c.max_steps:
            return "max_steps"
        if c.max_minutes and self.train_seconds >= c.max_minutes * 60:
            return "max_minutes"
        if c.patience and self.bad_evals >= c.patience:
            return "early_stopping"
        if self._interrupted:
            return "interrupted"
        if self.cpu_minutes and self.train_cpu_seconds >= self.cpu_minutes * 60:
            return "cpu_minutes"
        return None

    def fit(self) -> dict:
        """Train until epochs, max_steps, max_minutes, early stopping or Ctrl-C; return a summary."""
        self.maybe_resume()
        self.model.train()
        old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        reason = None
        try:
            while reason is None and self.batches.sampler.epoch < self.cfg.epochs:
                reason = self._epoch()
                if reason is None and self.cfg.eval_every == 0:
                    self.run_evaluation()
                    reason = self._done()
            reason = reason or "epochs"
        finally:
            signal.signal(signal.SIGINT, old_handler)
        if reason == "interrupted":
            self.save()
            msg = (f"interrupted at step {self.step}; checkpoint saved to {self.ckpt_root / ck.LATEST}. "
                   f"Run the same command again to resume (train.resume=true).")
            say(msg)
            self.log({"event": "end", "reason": reason, "train_seconds": self.train_seconds,
                      "skipped": self.skipped, "train_cpu_seconds": self.train_cpu_seconds})
            raise TrainingInterrupted(msg)
        if not self.history or self.history[-1].get("event") != "eval":
            self.run_evaluation()
        self.log({"event": "end", "reason": reason, "train_seconds": self.train_seconds,
                  "skipped": self.skipped, "train_cpu_seconds": self.train_cpu_seconds})
        return {"reason": reason, "steps": self.step, "best": self.best, "train_seconds": self.train_seconds,
                "train_cpu_seconds": self.train_cpu_seconds, "skipped_batches": self.skipped}

    def _epoch(self) -> str | None:
        sampler = self.batches.sampler
        epoch = sampler.epoch
        bar = tqdm(total=len(self.batches), initial=sampler.position, desc=f"epoch {epoch + 1}",
                   disable=not self.cfg.progress, dynamic_ncols=True, leave=False)
        tok_counts: dict[str, int] = {}
        loss_sum, items, t_window = 0.0, 0, time.perf_counter()
        for batch in self.batches:
            t0, c0 = time.perf_counter(), time.process_time()
            out = self._train_step(batch)
            self.train_cpu_seconds += time.process_time() - c0
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.train_seconds += time.perf_counter() - t0
            bar.update(1)
            if out is not None:
                loss, n = out
                loss_sum += loss * n
                items += n
                for k, v in batch.n_tokens.items():
                    tok_counts[k] = tok_counts.get(k, 0) + v
            if out is not None and self.step % self.cfg.log_every == 0 and items:
                dt = time.perf_counter() - t_window
                rates = {f"{k}_tok_per_s": v / dt for k, v in tok_counts.items()}
                rec = {"event": "train", "loss": loss_sum / items, "lr": self.opt.param_groups[0]["lr"], **rates}
                self.log(rec)
                bar.set_postfix({"loss": f"{rec['loss']:.3f}",
                                 **{k.replace("_tok_per_s", " tok/s"): f"{v:.0f}" for k, v in rates.items()}})
                tok_counts, loss_sum, items, t_window = {}, 0.0, 0, time.perf_counter()
            if self.cfg.save_every and self.step % self.cfg.save_every == 0 and out is not None:
                self.save()
            if self.cfg.eval_every and self.step % self.cfg.eval_every == 0 and out is not None:
                self.run_evaluation()
            reason = self._done()
            if reason is not None:
                bar.close()
                return reason
        bar.close()
        if epoch == sampler.epoch:  # iterator was empty from a saved end-of-epoch position
            sampler.set_epoch(epoch + 1)
        return None


def _plain(x):
    return json.loads(json.dumps(x, sort_keys=True, default=str))


def _diff(a, b, limit: int = 4) -> str:
    """The keys where two config blocks differ, ``key: old -> new`` (at most ``limit``)."""
    a, b = _plain(a), _plain(b)
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return f"{str(a)[:60]} -> {str(b)[:60]}"
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                out.append(f"{k}.{_diff(a[k], b[k], 1)}")
            else:
                out.append(f"{k}: {str(a.get(k))[:40]} -> {str(b.get(k))[:40]}")
    return ", ".join(out[:limit]) + (f" (+{len(out) - limit} more)" if len(out) > limit else "")
