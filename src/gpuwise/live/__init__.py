"""The real world: controller loop, actuators (local engine processes, Kubernetes), gateway."""
