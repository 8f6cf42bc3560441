"""The report's "Units and FAQ" section and the definitions of the measures it cites.

The same answers are in the README ("Units and FAQ"); the derivations are short enough to check
by hand. D = pixels per image (784 for MNIST), M = latent dimensions, B = batch size.
"""

from __future__ import annotations

import math

from vaelab.report.render import Doc
from vaelab.study.schema import StudyResult

INTERPOLATION_MEASURES = (
    "What each measure means. **Realism**: for each decoded in-between image, the distance in "
    "the reference classifier's features to the nearest real test image (other than the "
    "path's two end images), divided by the median distance from a real test image to its "
    "nearest other real test image; a held-out real image scores about 1, higher is less "
    "realistic. It asks whether the image looks like data. **Confidence**: the classifier's "
    "top softmax probability; it asks whether the classifier can name a digit, and an overlay "
    "of two sharp digits is often named confidently, so it is a weak proxy for realism. "
    "**Smoothness**: the path's length in pixel space divided by the straight distance between "
    "its ends (1 = an even fade; large = the path jumps or detours). The pixel cross-fade row "
    "is the model-free baseline: a straight blend of the two end images."
)


def _faq(d: int, m: int, b: int) -> list[str]:
    """The FAQ's paragraphs, each opening with its question in bold."""
    const = d / 2 * math.log(math.pi)
    return [
        "**What are the units of the losses?** "
        "Reconstruction is a per-image *sum* over pixels: the sum of squared errors (SSE) "
        "for the Gaussian decoder, the binary cross-entropy (BCE, nats) for the Bernoulli "
        "one. KL(q(z|x) ‖ N(0, I)) is summed over the latent dimensions. Both are averaged "
        "over the images of a batch, and the training loss is reconstruction + β·KL. "
        "ELBO and IW-NLL are in nats per image with every constant kept.",
        "**What does β = 1 mean with SSE?** "
        "The Gaussian decoder with fixed variance σ² has −log p(x|z) = SSE/(2σ²) + "
        "(D/2)·log(2πσ²). At σ² = ½ this is SSE + (D/2)·log π, so SSE + KL is exactly the "
        f"negative ELBO minus {const:.1f} nats (D = {d}). More generally SSE + β·KL = "
        "β·(SSE/β + KL) has the same minimiser as a plain VAE with σ² = β/2: with a "
        "Gaussian decoder, β is the decoder's variance in disguise.",
        "**How do I compare β with a paper or notebook that uses means?** "
        "Write its loss per image as reconstruction/R + β_paper·KL/Q, where R and Q are "
        "what it divides the per-image sums by; multiplying by R gives reconstruction + "
        "β_paper·(R/Q)·KL, so β here = β_paper·R/Q. A mean-MSE loss (nn.MSELoss(), "
        f"averaged over pixels and batch) with KL summed over dims and averaged over the "
        f"batch has R = D, Q = 1: β = {d}·β_paper (β_paper = β/{d}). With KL averaged "
        f"over dims too, Q = M: β = (D/M)·β_paper = {d / m:g}·β_paper for M = {m}. With KL "
        f"summed over dims *and* the batch (torch.sum), Q = 1/B: β = D·B·β_paper = "
        f"{d * b:,}·β_paper at B = {b}. Reconstruction and KL both summed over the batch "
        "(R = Q = 1/B) need no conversion. Higgins et al.'s normalised β_norm = β·M/D "
        "gives β = β_norm·D/M.",
        "**And with papers that use BCE?** "
        "A Bernoulli run (`--likelihood bernoulli`) uses summed BCE like most VAE papers on "
        "binarised MNIST, so its β compares as is. Between a BCE and an SSE loss there is "
        "no exact conversion: BCE is not a multiple of SSE. Near mid-grey pixels BCE ≈ "
        "const + 2·(x − x̂)², like a Gaussian with σ² = ¼, so a BCE run at β behaves "
        "roughly like an SSE run at β/2; near 0 and 1 BCE is much steeper.",
        "**Why can't the Gaussian NLL be compared with published MNIST NLLs?** "
        "Published numbers (≈ 80–90 nats) are −log *probabilities* of binarised images, a "
        "different, discrete dataset. A Gaussian decoder gives a *density* over continuous "
        "pixel values: it depends on the units of the pixels and can be any real number. "
        "vaelab scores uniformly dequantised 8-bit data, so NLL + D·ln 256 bounds the "
        "discrete NLL of the 8-bit images (reported as bits per dim with +8); with the "
        "broad σ² = ½ of the course's loss the value is large. Compare runs with each "
        "other; for literature numbers train `--likelihood bernoulli --binarize dynamic` "
        "and evaluate with `--iw-samples 5000`.",
        "**What do FD, precision and recall say about samples?** **FD** (Fréchet distance) "
        "compares Gaussians fitted to the classifier features of samples and of test images: one "
        "number that mixes realism and diversity. **Precision** is the share of samples that fall "
        "inside the real images' k-nearest-neighbour manifold (fidelity: do samples look real?), "
        "**recall** the share of real images inside the samples' manifold (coverage: is every kind "
        "of digit produced?), Kynkäänniemi et al. 2019. Blurry but diverse samples have low "
        "precision and high recall; sharp samples of a few kinds high precision and low recall. "
        "Precision alone can be fooled: samples collapsed onto one typical-looking point score "
        "high, which recall and FD expose. Each is read against its floor: the same measure "
        "between real train and real test images.",
        "**Why classifier features and not Inception FID?** "
        "Inception was trained on colour photographs; a small classifier trained on the "
        "dataset itself (≥ 99 % test accuracy for the standard variant) sees digits. Its "
        "distances are comparable only with each other, which is why every table shows "
        "the real-train-vs-real-test floor.",
    ]


def units_section(doc: Doc, s: StudyResult) -> None:
    """The "Units and FAQ" section, with D, M and B of this study."""
    d = math.prod(s.data.splits["test"].shape)  # pixels per image: C·H·W
    doc.h(2, "Units and FAQ", "units")
    for paragraph in _faq(d, s.config.train.latent_dim, s.config.train.batch_size):
        doc.p(paragraph)
