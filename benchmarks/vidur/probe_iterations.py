"""Ask Vidur's execution-time predictor for the time of given batches; run by the Vidur venv.

    .venv-vidur/bin/python benchmarks/vidur/probe_iterations.py --batches B.json --out P.json \
        -- <the same vidur flags as the simulation>

B.json is a list of ``{"name": str, "q": [int, ...], "kv": [int, ...]}``: per request in the batch,
the query tokens of this iteration (1 for a decode, the chunk length for a prefill chunk) and the
KV tokens *including* this iteration's, exactly as Vidur's schedulers build ``Batch`` objects
(``num_kv_tokens = processed + q``). P.json gets, per batch, Vidur's iteration time in ms and its
per-operator breakdown for one layer, so that a disagreement can be traced to an operator.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    def take(flag: str) -> str:
        i = argv.index(flag)
        value = argv[i + 1]
        del argv[i : i + 2]
        return value

    batches_path, out_path = take("--batches"), take("--out")
    if argv and argv[0] == "--":
        argv = argv[1:]

    from vidur.config import SimulationConfig
    from vidur.entities import Batch
    from vidur.execution_time_predictor import ExecutionTimePredictorRegistry
    from vidur.types import ReplicaId

    sys.argv = ["vidur.main", *argv]
    config = SimulationConfig.create_from_cli_args()
    predictor = ExecutionTimePredictorRegistry.get(
        config.execution_time_predictor_config.get_type(),
        predictor_config=config.execution_time_predictor_config,
        replica_config=config.cluster_config.replica_config,
        cache_config=config.cluster_config.cache_config,
    )
    with open(batches_path) as f:
        specs = json.load(f)
    ops = (
        "attention_layer_pre_proj_execution_time",
        "attention_layer_post_proj_execution_time",
        "attention_rope_execution_time",
        "attention_decode_execution_time",
        "attention_prefill_execution_time",
        "mlp_layer_up_proj_execution_time",
        "mlp_layer_down_proj_execution_time",
        "mlp_layer_act_execution_time",
        "attn_norm_time",
        "mlp_norm_time",
        "add_time",
        "tensor_parallel_communication_time",
    )
    results = []
    for spec in specs:
        q, kv = list(spec["q"]), list(spec["kv"])
        batch = Batch(ReplicaId(0), [None] * len(q), q, kv)
        et = predictor.get_execution_time(batch, 0)
        results.append(
            {
                "name": spec.get("name", ""),
                "total_ms": float(et.total_time) * 1e3,
                "model_ms": float(et.model_time) * 1e3,
                "num_layers": int(et.num_layers),
                "per_layer_ms": {op: float(getattr(et, op)) for op in ops},
            }
        )
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
