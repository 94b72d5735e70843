"""llama.cpp's own HTTP server (the C++ ``llama-server``, from the ``xllamacpp`` wheel) on a GGUF file,
as a process of its own: ``python -m tests.llamacpp_server --model F --port P [--alias A]
[--parallel N] [--repeat-penalty R] [--min-p M] [--top-k K]``. It serves until it is killed.

The sampling flags set the server's defaults, as ``llama-server --repeat-penalty 1.1 --min-p 0.05``
does: what a request leaves out, the server fills in from them.
"""

from __future__ import annotations

import argparse
import signal
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.llamacpp_server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default="")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat-penalty", type=float)
    parser.add_argument("--min-p", type=float)
    parser.add_argument("--top-k", type=int)
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    if args.alias:
        params.model_alias = {args.alias}
    for flag, field in (("repeat_penalty", "penalty_repeat"), ("min_p", "min_p"), ("top_k", "top_k")):
        if getattr(args, flag) is not None:
            setattr(params.sampling, field, getattr(args, flag))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # sigwait below takes them
    server = xllamacpp.Server(params)
    print(f"listening on {server.listening_address}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    del server
    sys.exit(0)


if __name__ == "__main__":
    main()
