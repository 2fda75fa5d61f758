"""gpuwise: plan, simulate, autoscale, diagnose and price GPU-backed LLM serving fleets."""

__version__ = "0.1.0"
