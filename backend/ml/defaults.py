"""Training defaults the command line, the API and training share (no torch import: `manage.py --help` stays fast).

The segmenter's encoder: EfficientNet-Lite0 from the ImageNet weights that come installed
(backend/ml/packaged_weights.py). Against a resnet18 from random weights, on the same data and the same 25-minute
CPU budget (benchmarks/bench_real.py, 30 held-out real photos): pre-fill box AP50 0.028 → 0.149, predicted tattoo
area inside the human boxes 39 → 53 %, procedural held-out IoU 0.758 → 0.931; the demo's two-minute model, trained
on procedural images only: AP50 0.000 → 0.052, area inside 25 → 41 % on the same real photos.
"""
SEGMENTER_ENCODER = "tu-tf_efficientnet_lite0"
CLASSIFIER_BACKBONE = "resnet18"
