"""Run Vidur's simulator with CPU timing split into phases; executed by the Vidur venv's python.

Vidur is an external program here (never imported by gpuwise): ``vidur_compare.py`` calls

    .venv-vidur/bin/python benchmarks/vidur/run_vidur.py --timing-json T.json -- <vidur flags>

and everything after ``--`` goes to ``vidur.main``'s own parser unchanged. The script does what
``vidur.main`` does (``set_seeds``, ``Simulator(config).run()``) but wraps ``time.process_time``
around each phase, so the event loop's CPU time can be reported apart from imports, predictor
training or loading, request generation and output writing (the reference methodology,
/work/shared/reference/simulators.md, "Timing methodology"). It writes T.json with:

    import_cpu_s, init_cpu_s (predictor + requests), loop_cpu_s, write_cpu_s, wall_s per phase,
    output_dir (where request_metrics.csv and, if asked, batch_metrics.csv were written),
    simulated_end_s
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    timing_path = None
    if "--timing-json" in argv:
        i = argv.index("--timing-json")
        timing_path = argv[i + 1]
        del argv[i : i + 2]
    if argv and argv[0] == "--":
        argv = argv[1:]
    out: dict = {}

    c0, w0 = time.process_time(), time.perf_counter()
    from vidur.config import SimulationConfig
    from vidur.simulator import Simulator
    from vidur.utils.random import set_seeds

    c1, w1 = time.process_time(), time.perf_counter()
    out["import_cpu_s"], out["import_wall_s"] = c1 - c0, w1 - w0

    sys.argv = ["vidur.main", *argv]
    config = SimulationConfig.create_from_cli_args()
    set_seeds(config.seed)
    sim = Simulator(config)  # trains or loads the predictor, generates the requests
    c2, w2 = time.process_time(), time.perf_counter()
    out["init_cpu_s"], out["init_wall_s"] = c2 - c1, w2 - w1

    # Time the event loop alone: Simulator.run() ends by writing the outputs, so swap the
    # writer for a no-op during the loop and call it afterwards under its own clock.
    write_output = sim._write_output
    sim._write_output = lambda: None
    sim.run()
    c3, w3 = time.process_time(), time.perf_counter()
    out["loop_cpu_s"], out["loop_wall_s"] = c3 - c2, w3 - w2
    write_output()
    c4, w4 = time.process_time(), time.perf_counter()
    out["write_cpu_s"], out["write_wall_s"] = c4 - c3, w4 - w3

    out["output_dir"] = config.metrics_config.output_dir
    out["simulated_end_s"] = float(sim._time)
    if timing_path:
        with open(timing_path, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
