"""Prompts to masks: the prediction record, click-to-box search, mask prompts, scores and propagation."""
