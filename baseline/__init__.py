"""The int8 DS-CNN baseline (TensorFlow, LiteRT, TensorFlow Lite Micro) that the Q-SNN is measured
against (benchmarks/side_by_side.py). Installed as ``qsnnkit.baseline`` with the ``[baseline]``
extra; nothing outside this package and that benchmark imports TensorFlow."""
