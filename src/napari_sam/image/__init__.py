"""Images in: any array, dtype/NaN/channel handling, one global intensity scaling, stacks as planes."""
