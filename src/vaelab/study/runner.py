"""`vaelab study`: the course study as separate resumable runs inside STUDY_DIR.

Layout: STUDY_DIR/runs/<name>/ (one training run each: ae, vae_beta0, vae_beta10, beta_<β>),
STUDY_DIR/figures/ (study-level figures), study.json, report.md, report.html, study.log.
A finished run is reused, an unfinished one resumed; an evaluation is reused when its options
match. Re-running the command after a crash finishes the study without redoing finished work.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab import figures
from vaelab.config import TrainConfig
from vaelab.data import info as data_info
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.errors import ConfigError
from vaelab.evaluation import EvalConfig, evaluate_run
from vaelab.evaluation import classifier as clf
from vaelab.evaluation.run import _data, interpolation_paths, pick_pairs
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.runtime import environment, resolve_device
from vaelab.study.presets import StudyConfig
from vaelab.study.selection import next_decades, refinement, select_beta
from vaelab.training import train

STAGES = ("data", "ae", "extremes", "search", "tuned", "interpolation", "representation")


def beta_name(beta: float) -> str:
    return f"beta_{beta:g}"


class Study:
    def __init__(self, cfg: StudyConfig) -> None:
        self.cfg = cfg
        self.root = Path(cfg.out)
        self.runs: dict[str, dict[str, Any]] = {}
        self.stage_time: dict[str, float] = {}
        self.ips = 2000.0  # training images/s, updated from finished runs
        self.eval_s = 30.0  # seconds per evaluation, updated likewise
        self.log = logging.getLogger(f"vaelab.study.{self.root.resolve()}")
        self.n_train = 0

    # ------------------------------------------------------------------ bookkeeping
    def say(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
        self.log.info(msg)

    def train_config(self, model: str, beta: float, epochs: int) -> TrainConfig:
        c = self.cfg
        return TrainConfig(
            model=model,
            beta=beta,
            epochs=epochs,
            dataset=c.dataset,
            data_dir=c.data_dir,
            latent_dim=c.latent_dim,
            channels=list(c.channels),
            batch_size=c.batch_size,
            lr=c.lr,
            seed=c.seed,
            device=c.device,
            limit_train=c.limit_train,
            limit_val=c.limit_val,
            log_every=10,
        ).validate()

    def eval_config(self) -> EvalConfig:
        c = self.cfg
        return EvalConfig(
            limit=c.eval_limit,
            iw_samples=c.iw_samples,
            iw_limit=c.iw_limit,
            n_samples=c.n_samples,
            probe_train=c.probe_train,
            classifier=c.classifier,
            seed=c.seed,
            device=c.device,
            log=lambda m: self.say(f"    {m}"),
        )

    def remaining_s(self, pending: list[tuple[str, int]]) -> float:
        """Estimated seconds for pending (name, epochs) runs, from measured throughput."""
        todo = [(n, e) for n, e in pending if n not in self.runs]
        train_s = sum(e * self.n_train / self.ips for _, e in todo)
        return train_s + len(todo) * self.eval_s

    def ensure_run(self, name: str, tcfg: TrainConfig, stage: str) -> dict[str, Any]:
        """Train (or reuse, or resume) and evaluate one run; returns its merged metrics.

        A run whose config equals one already done in this study (in `quick`, the β = 10 trial
        and the β = 10 experiment) is not trained twice: the earlier run stands for both."""
        for other in self.runs.values():
            if other["config"] == tcfg.to_dict():
                self.say(f"  {name} is identical to {other['name']}: reusing it")
                return other
        run_dir = self.root / "runs" / name
        resume = (run_dir / "config.json").exists()
        done_before = (run_dir / "DONE").exists()
        what = "reusing" if done_before else ("resuming" if resume else "training")
        self.say(f"  {what} {name} ({tcfg.model}, β={tcfg.beta:g}, {tcfg.epochs} epochs)")
        try:
            result = train(tcfg, run_dir, resume=resume)
        except ConfigError as e:
            raise ConfigError(
                f"{run_dir} holds a run with another configuration ({e}); use a new --out for "
                "this preset or delete that run directory"
            ) from None
        if not done_before:
            self.ips = float(result.summary.get("images_per_s_mean", self.ips)) or self.ips
        ecfg = self.eval_config()
        eval_key = {k: v for k, v in vars(ecfg).items() if k != "log"}
        eval_key["pairs"] = [list(p) for p in eval_key["pairs"]]
        key_path = run_dir / "eval_config.json"
        fresh = (
            (run_dir / "eval.json").exists()
            and key_path.exists()
            and json.loads(key_path.read_text()) == eval_key
            and (run_dir / "eval.json").stat().st_mtime >= (run_dir / "DONE").stat().st_mtime
        )
        if fresh:
            metrics = json.loads((run_dir / "eval.json").read_text())
        else:
            metrics = evaluate_run(run_dir, ecfg)
            atomic_write_json(key_path, eval_key)
            self.eval_s = metrics["eval/time_s"]
        entry = {
            "name": name,
            "stage": stage,
            "model": tcfg.model,
            "beta": tcfg.beta,
            "epochs": tcfg.epochs,
            "dir": f"runs/{name}",
            "train": result.summary,
            "eval": metrics,
            "reused": done_before and fresh,
            "config": tcfg.to_dict(),
        }
        self.runs[name] = entry
        return entry

    # ------------------------------------------------------------------ stages
    def stage(self, i: int, name: str, title: str, pending: list[tuple[str, int]]) -> float:
        left = self.remaining_s(pending)
        self.say(f"[{i}/{len(STAGES)}] {title} · about {left / 60:.1f} min of work left")
        return time.perf_counter()

    def run(self) -> dict[str, Any]:
        c = self.cfg
        t_study = time.perf_counter()
        device = resolve_device(c.device)
        fig_dir = self.root / "figures"
        arrays = load_arrays(c.dataset, c.data_dir)
        x_tr, _ = split_arrays(arrays, "train")
        self.n_train = min(len(x_tr), c.limit_train or len(x_tr))
        pending = (
            [("ae", c.ae_epochs), ("vae_beta0", c.extreme_epochs), ("vae_beta10", c.extreme_epochs)]
            + [(beta_name(b), c.trial_epochs) for b in c.decades]
            + [("refine_a", c.trial_epochs), ("refine_b", c.trial_epochs)]
        )

        # 1. data overview
        t0 = self.stage(1, "data", "data overview", pending)
        data = data_info(c.dataset, c.data_dir)
        strip = torch.from_numpy(x_tr[:16]).float() / 255.0
        figures.image_grid(
            fig_dir / "data_strip.png", strip, f"{c.dataset}: the first 16 training images", nrow=16
        )
        x_te, _ = split_arrays(arrays, "test")
        x_te = torch.from_numpy(x_te[: c.eval_limit]).double() / 255.0
        mean_img = torch.from_numpy(x_tr[: self.n_train]).double().mean(0) / 255.0
        mean_image_sse = float((x_te - mean_img).pow(2).flatten(1).sum(1).mean())
        self.stage_time["data"] = time.perf_counter() - t0

        # 2. auto-encoder
        t0 = self.stage(2, "ae", "auto-encoder", pending)
        ae = self.ensure_run("ae", self.train_config("ae", 0.0, c.ae_epochs), "ae")
        self.stage_time["ae"] = time.perf_counter() - t0

        # 3. β = 0 and β = 10
        t0 = self.stage(3, "extremes", "VAE at β = 0 and β = 10", pending)
        for b, name in ((0.0, "vae_beta0"), (10.0, "vae_beta10")):
            self.ensure_run(name, self.train_config("vae", b, c.extreme_epochs), "extremes")
        self.stage_time["extremes"] = time.perf_counter() - t0

        # 4. β search
        t0 = self.stage(4, "search", "β search (decades, then refinement)", pending)
        trials: dict[float, dict[str, float]] = {}

        trial_runs: dict[float, str] = {}

        def trial(beta: float) -> None:
            if beta not in trials:
                tcfg = self.train_config("vae", beta, c.trial_epochs)
                e = self.ensure_run(beta_name(beta), tcfg, "search")
                trials[beta], trial_runs[beta] = e["eval"], e["name"]

        grid = list(c.decades)
        for b in grid:
            trial(b)
        search_log = [f"decades {', '.join(f'{b:g}' for b in grid)}"]
        for _ in range(c.max_extensions):
            best = select_beta(trials, c.min_recon_accuracy, c.min_class_entropy).beta
            more = next_decades(sorted(trials), best)
            if not more:
                break
            search_log.append(f"best β {best:g} on the edge: extended with {more[0]:g}")
            for b in more:
                trial(b)
        best_decade = select_beta(trials, c.min_recon_accuracy, c.min_class_entropy).beta
        if c.refine:
            refined = refinement(best_decade)
            search_log.append(
                f"best decade β {best_decade:g}: refined with "
                f"{', '.join(f'{b:g}' for b in refined)}"
            )
            for b in refined:
                trial(b)
        choice = select_beta(trials, c.min_recon_accuracy, c.min_class_entropy)
        self._tradeoff_figures(trials, choice.beta, ae["eval"], fig_dir)
        self.stage_time["search"] = time.perf_counter() - t0

        # 5. the tuned VAE (the chosen trial: its figures are in its run directory)
        t0 = self.stage(5, "tuned", f"tuned VAE (β = {choice.beta:g})", [])
        tuned = self.runs[trial_runs[choice.beta]]
        code_stats = self._code_stats(["ae", tuned["name"]], device)
        self.stage_time["tuned"] = time.perf_counter() - t0

        # 6. interpolation AE vs tuned VAE
        t0 = self.stage(6, "interpolation", "interpolations AE vs tuned VAE", [])
        interp = self._interpolations(tuned["name"], device, fig_dir)
        self.stage_time["interpolation"] = time.perf_counter() - t0

        # 7. representation
        t0 = self.stage(7, "representation", "representation usefulness", [])
        representation = {
            name: {k: r["eval"][k] for k in ("probe/linear_acc", "probe/knn_acc")}
            for name, r in self.runs.items()
        }
        self.stage_time["representation"] = time.perf_counter() - t0

        classifier_meta = clf.reference_classifier(
            c.dataset, c.data_dir, variant=c.classifier, device=device
        )[1]
        return {
            "config": c.to_dict(),
            "env": environment(device),
            "data": data,
            "baselines": {"mean_image_sse": mean_image_sse, "prior_norm": math.sqrt(c.latent_dim)},
            "runs": self.runs,
            "search": {
                "trials": sorted(trials),
                "trial_runs": {f"{b:g}": n for b, n in sorted(trial_runs.items())},
                "log": search_log,
                "chosen_beta": choice.beta,
                "eligible": choice.eligible,
                "reason": choice.reason,
                "fallback": choice.fallback,
                "best_decade": best_decade,
            },
            "tuned": tuned["name"],
            "code_stats": code_stats,
            "interpolation": interp,
            "representation": representation,
            "classifier": {
                k: classifier_meta[k]
                for k in ("variant", "test_accuracy", "epochs", "train_images")
            },
            "stage_time_s": self.stage_time,
            "stage_order": [k for k in STAGES if k in self.stage_time],
            "run_order": list(self.runs),
            "wall_time_s": time.perf_counter() - t_study,
            "compute_time_s": sum(
                r["train"].get("train_time_s", 0) + r["eval"]["eval/time_s"]
                for r in self.runs.values()
            ),
        }

    # ------------------------------------------------------------------ helpers
    def _tradeoff_figures(
        self,
        trials: dict[float, dict[str, float]],
        chosen: float,
        ae: dict[str, float],
        fig_dir: Path,
    ) -> None:
        betas = sorted(trials)
        col = {k: [trials[b][k] for b in betas] for k in trials[betas[0]]}
        figures.scatter_labelled(
            fig_dir / "rate_distortion.png",
            col["test/kl"],
            col["test/sse"],
            [f"β={b:g}" for b in betas],
            "Rate–distortion across β (test set)",
            "rate: KL per image (nats)",
            "distortion: SSE per image",
        )
        figures.xy_lines(
            fig_dir / "beta_fd.png",
            betas,
            {"prior samples": col["samples/fd"], "reconstructions": col["recon/fd"]},
            "Fréchet distance to the test set vs β",
            "β",
            "Fréchet distance (classifier features)",
            logy=True,
            hline=(ae["floor/fd_train_vs_test"], "floor: real train vs test"),
            mark=chosen,
        )
        figures.xy_lines(
            fig_dir / "beta_entropy.png",
            betas,
            {
                "class entropy of samples": col["samples/class_entropy"],
                "mean confidence on samples": col["samples/confidence"],
            },
            "Diversity and clarity of prior samples vs β",
            "β",
            "nats / probability",
            hline=(math.log(10), "ln 10 (uniform over classes)"),
            mark=chosen,
        )
        figures.xy_lines(
            fig_dir / "beta_active_units.png",
            betas,
            {"active units": col["test/active_units"]},
            "Active latent units vs β (Burda et al. criterion)",
            "β",
            f"active units (of {self.cfg.latent_dim})",
            mark=chosen,
        )
        figures.xy_lines(
            fig_dir / "beta_probe.png",
            betas,
            {"linear probe": col["probe/linear_acc"], "5-NN": col["probe/knn_acc"]},
            "Downstream accuracy of μ vs β",
            "β",
            "test accuracy",
            hline=(ae["probe/linear_acc"], "AE linear probe"),
            mark=chosen,
        )

    @torch.no_grad()
    def _code_stats(self, names: list[str], device: torch.device) -> dict[str, dict[str, float]]:
        """Where each model's test codes live, compared with the N(0, I) prior."""
        from vaelab.checkpoint import load_model

        out = {}
        for name in names:
            model, tcfg = load_model(self.root / "runs" / name, "best", device)
            x, _, _ = _data(tcfg, "test", self.cfg.eval_limit, self.cfg.seed, device)
            mu = torch.cat([model.embed(x[i : i + 1000]) for i in range(0, len(x), 1000)])
            seen = mu  # the codes the decoder was trained on: μ for the AE, z ~ q(z|x) for a VAE
            if model.is_vae:
                post = [model.posterior(x[i : i + 1000]) for i in range(0, len(x), 1000)]
                seen = torch.cat([m + s.exp() * torch.randn_like(m) for m, s in post])
            std = mu.double().std(0)
            # Off-manifold test: distance from a prior sample to its nearest test code, relative
            # to the distance from a held-out test code to its nearest other test code.
            g = torch.Generator().manual_seed(self.cfg.seed + 3)
            codes = seen[: len(seen) // 2].double().cpu()
            held = seen[len(seen) // 2 :].double().cpu()
            prior = torch.randn(len(held), mu.shape[1], generator=g, dtype=torch.float64)
            nn_prior = torch.cdist(prior, codes).min(1).values.mean()
            nn_real = torch.cdist(held, codes).min(1).values.mean()
            out[name] = {
                "prior_nn_ratio": float(nn_prior / nn_real),
                "norm_mean": float(mu.double().norm(dim=1).mean()),
                "dim_std_min": float(std.min()),
                "dim_std_max": float(std.max()),
                "dim_mean_abs_max": float(mu.double().mean(0).abs().max()),
            }
        return out

    def _interpolations(
        self, tuned: str, device: torch.device, fig_dir: Path
    ) -> dict[str, dict[str, float]]:
        from vaelab.checkpoint import load_model

        models = {
            "AE": load_model(self.root / "runs" / "ae", "best", device)[0],
            f"VAE β={self.runs[tuned]['beta']:g}": load_model(
                self.root / "runs" / tuned, "best", device
            )[0],
        }
        tcfg = self.train_config("ae", 0.0, 1)  # same data and split as every run
        x, _, y = _data(tcfg, "test", self.cfg.eval_limit, self.cfg.seed, device)
        classifier, _ = clf.reference_classifier(
            self.cfg.dataset, self.cfg.data_dir, variant=self.cfg.classifier, device=device
        )
        curves: dict[str, list[np.ndarray]] = {}
        summary: dict[str, dict[str, float]] = {}
        for a, b in EvalConfig().pairs:
            pairs = pick_pairs(y, a, b, 3, self.cfg.seed)
            rows, labels = [], []
            for mode in ("lerp", "slerp"):
                for mname, model in models.items():
                    paths = interpolation_paths(model, x, pairs, 5, mode)
                    for j, p in enumerate(paths):
                        rows.append(p)
                        labels.append(f"{mname} {mode} #{j + 1}")
                        probs = clf.classify(classifier, p)[1]
                        curves.setdefault(f"{mname} {mode}", []).append(probs.max(1))
            figures.interpolation_strips(
                fig_dir / f"interp_compare_{a}to{b}.png",
                rows,
                labels,
                f"{a}→{b}: AE vs tuned VAE, lerp and slerp (start, 5 decoded codes, end)",
            )
        stacked = {k: np.stack(v) for k, v in curves.items()}
        figures.confidence_curves(
            fig_dir / "interp_confidence_compare.png",
            stacked,
            "Classifier confidence along paths: AE vs tuned VAE",
        )
        for k, v in stacked.items():
            inner = v[:, 1:-1]
            summary[k] = {"mean_conf": float(inner.mean()), "min_conf": float(inner.min(1).mean())}
        return summary


def run_study(cfg: StudyConfig) -> dict[str, Any]:
    """Run (or finish) the study in cfg.out and write study.json, report.md and report.html."""
    from vaelab.study.report import write_report

    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".lock", blocking=False):
        study = Study(cfg)
        handler = logging.FileHandler(root / "study.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        study.log.addHandler(handler)
        study.log.setLevel(logging.INFO)
        study.log.propagate = False
        try:
            t0 = time.perf_counter()
            result = study.run()
            result["wall_time_s"] = time.perf_counter() - t0
            atomic_write_json(root / "study.json", result)  # the report cites this file
            write_report(root, json.loads((root / "study.json").read_text()))
            study.say(f"study done in {result['wall_time_s'] / 60:.1f} min: {root / 'report.html'}")
        finally:
            study.log.removeHandler(handler)
            handler.close()
    return result
