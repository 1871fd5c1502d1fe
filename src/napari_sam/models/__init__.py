"""SAM-family networks in plain PyTorch, their registry and checkpoint loading."""
