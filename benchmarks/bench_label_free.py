"""Does the label-free sample-quality measure rank models as the classifier's does?

For each dataset, trains an AE and β-VAEs at several β (seed 0, a small budget), decodes prior
samples of each, and measures their Fréchet distance to the test images in two feature spaces:
the reference classifier's (needs labels) and the label-free network's (the same LeNet trained
to predict the pixels, labels hidden; vaelab.evaluate.classifier). Prints both per model and
their Spearman rank correlation, over all models and over the VAEs alone.

    PYTHONPATH=src python benchmarks/bench_label_free.py [--datasets mnist fashion-mnist]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from scipy.stats import spearmanr

from vaelab.config import TrainConfig
from vaelab.data.store import load_split
from vaelab.evaluate import classifier as clf
from vaelab.evaluate.features import frechet_distance_features
from vaelab.models import sample_prior
from vaelab.train.checkpoint import load_model
from vaelab.train.loop import train

BETAS = (0.25, 1.0, 2.0, 4.0, 8.0, 16.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--limit-train", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000, help="samples and test images per FD")
    ap.add_argument("--classifier", default="smoke", choices=list(clf.VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(2)
    for dataset in args.datasets:
        nets = {
            "classifier": clf.reference_classifier(dataset, variant=args.classifier)[0],
            "label-free": clf.reference_classifier(
                dataset, variant=args.classifier, label_free=True
            )[0],
        }
        x_test = torch.from_numpy(load_split(dataset, "test")[0][: args.n]).float() / 255.0
        real = {k: clf.classify(net, x_test)[0] for k, net in nets.items()}
        fds: dict[str, dict[str, float]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, model, beta in [("AE", "ae", 1.0)] + [(f"β={b:g}", "vae", b) for b in BETAS]:
                cfg = TrainConfig(
                    dataset=dataset,  # type: ignore[arg-type]
                    model=model,  # type: ignore[arg-type]
                    beta=beta,
                    latent_dim=16,
                    epochs=args.epochs,
                    limit_train=args.limit_train,
                    device="cpu",
                    seed=0,
                )
                train(cfg, Path(tmp) / name, tensorboard=False)
                net, _ = load_model(Path(tmp) / name, "last", torch.device("cpu"))
                samples = sample_prior(net, args.n, seed=0)
                fds[name] = {
                    k: frechet_distance_features(clf.classify(f, samples)[0], real[k])
                    for k, f in nets.items()
                }
                print(dataset, name, {k: round(v, 2) for k, v in fds[name].items()}, flush=True)
        names = list(fds)
        for who, keep in (("all models", names), ("VAEs only", names[1:])):
            rho = spearmanr(
                [fds[n]["classifier"] for n in keep], [fds[n]["label-free"] for n in keep]
            )
            print(f"{dataset}: Spearman ρ ({who}, n={len(keep)}) = {rho.statistic:.3f}")


if __name__ == "__main__":
    main()
