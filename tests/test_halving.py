"""The β search rule (successive halving) on synthetic metric curves, and its equivalence with
the selection criterion and with Optuna's SuccessiveHalvingPruner promotion rule."""

from __future__ import annotations

import math
import random

import pytest

from vaelab.tune import halving
from vaelab.tune.halving import select_beta

ACC, ENT = 0.9, 2.0


def metrics(fd: float, acc: float = 0.95, ent: float = 2.25) -> dict[str, float]:
    return {"samples/fd": fd, "recon/classifier_accuracy": acc, "samples/class_entropy": ent}


def test_selection_loss_ranks_like_the_criterion() -> None:
    """argmin of the selection loss is select_beta's choice, eligible or not (random cases)."""
    rng = random.Random(0)
    for _ in range(300):
        trials = {
            b: metrics(rng.uniform(5, 2000), rng.uniform(0.5, 1.0), rng.uniform(1.0, 2.3))
            for b in rng.sample([0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0], k=rng.randint(1, 7))
        }
        loss = {b: halving.selection_loss(m, ACC, ENT) for b, m in trials.items()}
        choice = select_beta(trials, ACC, ENT)
        assert min(loss, key=lambda b: (loss[b], b)) == choice.beta
        assert sorted(b for b, v in loss.items() if v < halving.INELIGIBLE_PENALTY) == (
            choice.eligible
        )


def test_selection_loss_puts_ineligible_after_eligible() -> None:
    good = halving.selection_loss(metrics(900.0), ACC, ENT)
    blurry = halving.selection_loss(metrics(50.0, acc=0.5), ACC, ENT)
    few_modes = halving.selection_loss(metrics(50.0, ent=1.0), ACC, ENT)
    assert good < blurry and good < few_modes
    assert halving.selection_loss(metrics(math.nan), ACC, ENT) == math.inf


@pytest.mark.parametrize("n", range(1, 12))
@pytest.mark.parametrize("eta", [2, 3, 4])
def test_promotion_equals_optunas_rule(n: int, eta: int) -> None:
    """Each trial promoted by `promote` is one Optuna's successive-halving pruner would promote
    given the same rung values, and vice versa (distinct values, minimisation)."""
    # a private module: if Optuna renames it, this test must fail, not skip, to be re-pointed
    from optuna.pruners import _successive_halving as sh
    from optuna.study import StudyDirection

    rng = random.Random(n * 10 + eta)
    values = rng.sample(range(10, 10_000), n)
    losses = {float(i): float(v) for i, v in enumerate(values)}
    promoted = set(halving.promote(losses, eta))
    competing = list(losses.values())
    for b, v in losses.items():
        optuna_says = sh._is_trial_promotable_to_next_rung(
            v, competing, eta, StudyDirection.MINIMIZE
        )
        assert (b in promoted) == optuna_says, (b, v, sorted(competing))


def batched(trial, calls: list[tuple[float, int]], batches: list[tuple[list[float], int]]):
    """run_search's batch callable from a one-trial function; records every trial and batch.
    The losses come back in reverse order, as parallel workers may finish them."""

    def evaluate(betas: list[float], rung: int) -> dict[float, float]:
        batches.append((list(betas), rung))
        calls.extend((b, rung) for b in betas)
        return {b: trial(b, rung) for b in reversed(betas)}

    return evaluate


def _curves(final_fd: dict[float, float], early_fd: dict[float, float]):
    """A synthetic trial: FD moves from its early value to its final value as budget grows."""
    calls: list[tuple[float, int]] = []
    batches: list[tuple[list[float], int]] = []

    def trial(beta: float, rung: int) -> float:
        w = min(1.0, rung / 1.0)
        fd = (1 - w) * early_fd.get(beta, 2000.0) + w * final_fd.get(beta, 2000.0)
        eligible = 0.05 <= beta <= 5  # tiny β: samples fail; huge β: reconstructions fail
        return halving.selection_loss(metrics(fd, acc=0.95 if eligible else 0.3), ACC, ENT)

    return batched(trial, calls, batches), calls, batches


def test_search_promotes_and_the_later_rung_decides() -> None:
    """β = 1 looks best early, β = 0.316 wins with more budget: the longer rung decides."""
    early = {0.01: 900, 0.1: 500, 1.0: 300, 10.0: 1500, 0.316: 320, 3.16: 700}
    final = {0.01: 800, 0.1: 300, 1.0: 200, 10.0: 1400, 0.316: 150, 3.16: 600}
    trial, calls, batches = _curves(final, early)
    out = halving.run_search(
        [0.01, 0.1, 1.0, 10.0], trial, eta=3, n_rungs=3, max_extensions=2, refine=True
    )
    assert out.best_decade == 1.0
    assert sorted(out.rungs[0].losses) == [0.01, 0.1, 0.316, 1.0, 3.16, 10.0]
    assert out.rungs[0].promoted == [1.0, 0.316]  # ⌊6/3⌋ = 2 go on, best first
    assert sorted(out.rungs[1].losses) == [0.316, 1.0]
    assert out.chosen == 0.316
    # every rung-0 trial once, then only the promoted ones at rung 1; the final run is the
    # caller's (it is not a search trial)
    assert sorted(calls) == sorted([(b, 0) for b in out.rungs[0].losses] + [(1.0, 1), (0.316, 1)])
    # all β known at one point go together: the decades, the refinement pair, the promoted set
    assert batches == [([0.01, 0.1, 1.0, 10.0], 0), ([0.316, 3.16], 0), ([1.0, 0.316], 1)]
    assert list(out.rungs[0].losses) == [0.01, 0.1, 1.0, 10.0, 0.316, 3.16]  # batch order


def test_search_extends_the_grid_while_the_best_is_on_an_edge() -> None:
    early = {0.01: 100, 0.1: 200, 1.0: 300, 10.0: 400, 0.001: 90, 0.0001: 95}
    # all "eligible" so FD alone ranks them
    calls: list[tuple[float, int]] = []
    batches: list[tuple[list[float], int]] = []

    def trial(beta: float, rung: int) -> float:
        return halving.selection_loss(metrics(early.get(beta, 50.0)), ACC, ENT)

    evaluate = batched(trial, calls, batches)
    out = halving.run_search(
        [0.01, 0.1, 1.0, 10.0], evaluate, eta=3, n_rungs=1, max_extensions=2, refine=False
    )
    assert "extended with 0.001" in " ".join(out.log)
    assert out.chosen == 0.001 and out.best_decade == 0.001
    assert (0.0001, 0) in calls  # extended twice (0.001 was again on the edge)
    assert batches == [([0.01, 0.1, 1.0, 10.0], 0), ([0.001], 0), ([0.0001], 0)]


def test_grid_search_is_rung_zero_only() -> None:
    trial, calls, _ = _curves({}, {0.1: 300, 1.0: 200, 10.0: 900, 0.316: 250, 3.16: 400})
    out = halving.run_search(
        [0.1, 1.0, 10.0], trial, eta=3, n_rungs=1, max_extensions=0, refine=True
    )
    assert out.chosen == 1.0 and len(out.rungs) == 1
    assert all(r == 0 for _, r in calls)


def test_a_batch_missing_a_loss_is_an_error() -> None:
    with pytest.raises(ValueError, match="no loss for β 10"):
        halving.run_search(
            [0.1, 1.0, 10.0],
            lambda betas, rung: {b: 1.0 for b in betas[:-1]},
            eta=2,
            n_rungs=1,
            max_extensions=0,
            refine=False,
        )


def test_rung_budgets() -> None:
    plan = halving.rungs(1, 25_000, 3, 5, 3)
    assert [(r.epochs, r.limit_train) for r in plan] == [(1, 25_000), (3, 25_000), (5, None)]


def test_the_search_record_takes_the_choice_from_the_rung_that_decided(tmp_path) -> None:
    """Rung 0 finds β 0.1 and 1 eligible and promotes β 1; at rung 1 (more epochs) β 1 misses
    the reconstruction threshold, so the choice there fell back to the lowest FD. The record
    must say so: eligible and fallback of rung 1, the rung that chose β 1, not of rung 0."""
    from vaelab.study import make_config
    from vaelab.study.runs import RunBook
    from vaelab.study.schema import RunEntry
    from vaelab.study.search import BetaSearch

    cfg = make_config(
        "smoke", out=str(tmp_path), decades=[0.1, 1.0, 10.0], max_extensions=0, refine=False
    )
    at = {
        (0.1, 0): metrics(50.0),
        (1.0, 0): metrics(30.0),
        (10.0, 0): metrics(10.0, acc=0.1),  # ineligible: blurry reconstructions
        (1.0, 1): metrics(40.0, acc=0.1),  # ineligible with more training
    }
    book = RunBook(cfg)
    book.n_train = 1024
    names: dict[tuple[float, int], str] = {}

    def evaluate(betas: list[float], rung: int) -> dict[float, float]:
        for b in betas:
            names[b, rung] = name = f"beta_{b:g}_r{rung}"
            book.runs[name] = RunEntry(
                name, "search", "vae", b, 1, 1, "", "", "", "selection", {}, at[b, rung], False, {}
            )
        return {
            b: halving.selection_loss(at[b, rung], cfg.min_recon_accuracy, cfg.min_class_entropy)
            for b in betas
        }

    outcome = halving.run_search(
        cfg.decades, evaluate, eta=cfg.halving_eta, n_rungs=3, max_extensions=0, refine=False
    )
    assert outcome.rungs[0].promoted == [1.0] and [r.index for r in outcome.rungs] == [0, 1]
    record = BetaSearch(book).record(outcome, names, "sqlite:///x.db", "x")
    assert record.chosen_beta == 1.0
    assert record.eligible == [] and record.fallback  # rung 0 alone would say [0.1, 1.0], False
    assert "no β met both thresholds there" in record.reason
    assert [r.runs for r in record.rungs] == [
        {"0.1": "beta_0.1_r0", "1": "beta_1_r0", "10": "beta_10_r0"},
        {"1": "beta_1_r1"},
    ]
