"""Targets and the small protocol of the shared characterisation runs (fixtures in conftest.py)."""

UNIT = "efficientnet_lite0:_blocks.2:5"  # the unit tests/conftest.py's fast evolution job reads
LAYER = "efficientnet_lite0:_blocks.2"  # 24 channels; its channel 5 is UNIT
SMALL = ["--set", "hues=[0, 60, 120, 180, 240, 300]", "--set", "orientations=[0, 45, 90, 135]",
         "--set", "phases=[0, 90, 180, 270]", "--set", "frequencies=[1, 2, 4]",
         "--set", "responder.input_size=64", "--size", "64", "--quiet"]
