"""`glirel-export CHECKPOINT OUT_DIR`: write a verified ONNX artifact for a glirel checkpoint."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="glirel-export", description=__doc__)
    parser.add_argument("checkpoint", help="directory or Hub id holding glirel_config.json + pytorch_model.bin/model.safetensors")
    parser.add_argument("out_dir", help="artifact directory to write (model.onnx, tokenizer.json, glirel_artifact.json)")
    parser.add_argument("--encoder", default=None, help="local encoder directory (config + tokenizer) instead of the config's model_name")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--fp16", action="store_true", help="store weights in fp16 (inputs/outputs stay fp32)")
    parser.add_argument("--quantize", choices=["int8"], default=None, help="dynamic int8 quantisation of MatMul/Gemm weights")
    parser.add_argument("--optimize", action="store_true", help="run onnxruntime's transformer optimizer (fusions)")
    parser.add_argument("--pair-head", choices=["blocked", "dense"], default="blocked",
                        help="all-pairs scorer as a loop over head entities (cache-sized blocks: faster on CPU) or one "
                             "dense pass (GPUs); OpenVINO turns a blocked head back into a dense one when it loads")
    parser.add_argument("--device", default="cpu", help="device for tracing and the PyTorch side of verification")
    parser.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript")
    parser.add_argument("--threshold", type=float, default=0.5, help="threshold stored as the artifact's default and used in verification")
    parser.add_argument("--triton", metavar="REPO_DIR", default=None,
                        help="also write a Triton model repository serving the artifact (see glirel_export.triton)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.triton and (Path(args.triton) / "glirel").exists() and not args.overwrite:
        print(f"glirel-export: refused: {Path(args.triton) / 'glirel'} exists; pass --overwrite to replace it", file=sys.stderr)
        return 1

    from .checkpoint import CheckpointError
    from .export import ExportOptions, ExportVerificationError, export_checkpoint, format_report
    from .modeling import UnsupportedCheckpointError

    options = ExportOptions(opset=args.opset, fp16=args.fp16, quantize=args.quantize, optimize=args.optimize,
                            device=args.device, exporter=args.exporter, encoder=args.encoder, threshold=args.threshold,
                            pair_head=args.pair_head)
    try:
        config = export_checkpoint(args.checkpoint, args.out_dir, options, overwrite=args.overwrite)
    except (CheckpointError, UnsupportedCheckpointError, ExportVerificationError, OSError, ValueError) as error:
        print(f"glirel-export: refused: {error}", file=sys.stderr)
        return 1
    print(format_report(config))
    print(f"wrote {args.out_dir}")
    if args.triton:
        from .triton import write_triton_repository

        try:
            target = write_triton_repository(args.out_dir, args.triton, overwrite=args.overwrite)
        except (FileNotFoundError, FileExistsError, ValueError) as error:
            print(f"glirel-export --triton: refused: {error}", file=sys.stderr)
            return 1
        print(f"wrote Triton model {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
