"""SAM-family networks in plain PyTorch, their registry and checkpoint loading."""

# The registry name of the model used when none is given (CLI, widgets, Segmenter, batch). Defined here,
# where importing it loads no torch (the command line builds its parser without torch).
DEFAULT_MODEL = "lite_medsam"
