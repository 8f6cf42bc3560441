"""How useful an embedding is downstream: a linear probe and k-nearest neighbours on codes."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp_min(1e-8)
    return (train - mean) / std, (test - mean) / std


def linear_probe_accuracy(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    l2: float = 1e-4,
    max_iter: int = 200,
) -> float:
    """Multinomial logistic regression on standardised codes, fit by full-batch L-BFGS
    (a convex problem: the result does not depend on a learning rate or seed)."""
    xtr, xte = _standardise(z_train.double(), z_test.double())
    classes = int(max(y_train.max(), y_test.max())) + 1
    w = torch.zeros(xtr.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, y_train) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((xte @ w + b).argmax(1) == y_test).double().mean())


@torch.no_grad()
def knn_accuracy(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    k: int = 5,
    chunk: int = 1024,
) -> float:
    """k-NN (Euclidean on standardised codes, majority vote) accuracy, in chunks of test rows."""
    xtr, xte = _standardise(z_train.float(), z_test.float())
    classes = int(max(y_train.max(), y_test.max())) + 1
    tr_sq = xtr.pow(2).sum(1)
    correct = 0
    for i in range(0, len(xte), chunk):
        q = xte[i : i + chunk]
        d = tr_sq[None, :] - 2 * q @ xtr.T  # ‖q‖² is constant per row: irrelevant to ranking
        idx = d.topk(k, dim=1, largest=False).indices
        votes = F.one_hot(y_train[idx], classes).sum(1)
        correct += int((votes.argmax(1) == y_test[i : i + chunk]).sum())
    return correct / len(xte)
