"""`manygil bench`: the same workloads on every execution model, side by side."""
