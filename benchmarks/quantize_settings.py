"""onnxruntime's dynamic-quantisation settings side by side on one fp32 export: speed and quality.

    seqnlp export --model runs/multi30k_de_en_45min --format onnx --output /tmp/exp/mt_fp32
    python benchmarks/quantize_settings.py --task translation --export /tmp/exp/mt_fp32 [--repeats 2]

Quantises every graph of the export three ways -- ``u8u8`` (unsigned 8-bit weights: what ``seqnlp export
--quantize int8`` writes), ``u8s8`` (signed weights, onnxruntime's fastest on CPUs with VNNI, which it warns can
saturate on AVX2 / AVX-512 CPUs without VNNI) and ``u8s8_pc`` (signed, per output channel) -- into copies next
to ``/tmp``, then predicts the whole test set with each (and the fp32 export) in a process of its own, through
``benchmarks/inference.py --side ours`` (beam 5 for translation), ``--repeats`` rounds alternating. Prints
sentences/s, BLEU or accuracy and peak RSS per setting and round. Run it with the 2 cores otherwise idle.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=["pos_tagging", "translation"])
    p.add_argument("--export", type=Path, required=True, help="an fp32 export directory (seqnlp export)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/seqnlp_quantize_settings"))
    args = p.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)
    settings = {"u8u8": dict(weight_type=QuantType.QUInt8), "u8s8": dict(weight_type=QuantType.QInt8),
                "u8s8_pc": dict(weight_type=QuantType.QInt8, per_channel=True)}
    dirs = {"fp32": args.export}
    for name, kw in settings.items():
        d = args.work / f"{args.task}_{name}"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(args.export, d)
        cfg = json.loads((d / "config.json").read_text())
        for g in cfg["export"]["graphs"].values():
            quantize_dynamic(str(args.export / g["file"]), str(d / g["file"]), **kw)
            g["sha256"] = hashlib.sha256((d / g["file"]).read_bytes()).hexdigest()
            g["bytes"] = (d / g["file"]).stat().st_size
        cfg["export"]["quantize"] = "int8"
        (d / "config.json").write_text(json.dumps(cfg, indent=2))
        dirs[name] = d
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(args.threads), "TQDM_DISABLE": "1",
           "PYTHONPATH": str(ROOT)}
    for r in range(args.repeats):
        for name, d in dirs.items():
            cmd = [sys.executable, str(ROOT / "benchmarks" / "inference.py"), "--side", "ours", "--task", args.task,
                   "--model", str(d), "--variant", "ort_int8", "--threads", str(args.threads), "--limit", "0",
                   "--peer-minutes", "0", "--beam", "5"]
            o = json.loads(subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True,
                                          check=True).stdout.strip().splitlines()[-1])
            quality = o.get("bleu", o.get("accuracy"))
            print(f"round {r} {name:8s} {o['sentences_per_s']:8.1f} sentences/s  quality {quality:.2f}  "
                  f"peak RSS {o['peak_rss_gib']:.2f} GiB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
