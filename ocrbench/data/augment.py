"""Training-time augmentation, the same for every model: horizontal stretch and ink contrast.

Kept mild on purpose: the synthetic generator already varies slant, spacing, stroke width, distortion and
noise; this adds writer-speed (width) and pen-pressure (contrast) variation to any dataset, real ones too.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

STRETCH = (0.8, 1.25)  # horizontal scale factor range
CONTRAST = (0.6, 1.0)  # ink intensity scale range


def augment_line(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly stretched, contrast-scaled copy of a uint8 (H, W) ink-bright line image."""
    h, w = image.shape
    new_w = max(1, round(w * rng.uniform(*STRETCH)))
    out = np.asarray(Image.fromarray(image).resize((new_w, h), Image.BILINEAR), dtype=np.float32)
    out *= rng.uniform(*CONTRAST)
    return out.clip(0, 255).astype(np.uint8)
