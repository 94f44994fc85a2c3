"""The resizing the FD-DINOv2 and CMMD references do, done by the library they do it with.

dgm-eval resizes every image with PIL's bicubic filter to 224x224 (torchvision's
``Resize`` on a PIL image), and EDM2's "pil" mode is that same call; CMMD's
reference (google-research/cmmd ``io_util.py``) crops the centre square with
PIL and resizes it with PIL's bicubic filter to 336x336. PIL filters a uint8
image in two passes, rounding and clipping to uint8 in between and at the end,
and ``torch.nn.functional.interpolate`` does neither: on noise images the two
differ by up to 49 grey levels (measured; tests/test_modern_extractors.py). So
the images go through PIL itself, one by one, which is what makes the features
those of the references. A thread pool overlaps the images (PIL releases the GIL
while it filters).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..errors import FeatureExtractorError

THREADS = min(8, os.cpu_count() or 1)


def pil_bicubic(batch: torch.Tensor, size: int, centre_crop: bool = False) -> torch.Tensor:
    """uint8 (N, 1|3, H, W) → uint8 (N, 3, size, size) on the CPU, resized by PIL's bicubic filter.

    ``centre_crop``: first the centred square of side min(H, W), its corner at
    ((W - side) // 2, (H - side) // 2), as CMMD's reference crops it.
    """
    from PIL import Image

    if batch.dim() != 4 or batch.shape[1] not in (1, 3) or batch.dtype != torch.uint8:
        raise FeatureExtractorError(f"expected uint8 images shaped (N, 1 or 3, H, W), got {batch.dtype} "
                                    f"{tuple(batch.shape)}")
    arrays = batch.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).cpu().numpy()

    def one(a: np.ndarray) -> np.ndarray:
        im = Image.fromarray(np.ascontiguousarray(a), "RGB")
        if centre_crop:
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.crop((left, top, left + side, top + side))
        return np.asarray(im.resize((size, size), Image.Resampling.BICUBIC))

    if len(arrays) > 1 and THREADS > 1:
        with ThreadPoolExecutor(THREADS) as pool:
            out = list(pool.map(one, arrays))
    else:
        out = [one(a) for a in arrays]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


def normalised(batch_uint8: torch.Tensor, mean, std, device) -> torch.Tensor:
    """uint8 → float32 in [0, 1] → (x - mean) / std per channel, on ``device``."""
    x = batch_uint8.to(device, non_blocking=True).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s
