"""Riemannian tangent-space features with a linear head (Barachant, Bonnet, Congedo and Jutten,
"Multiclass brain-computer interface classification by Riemannian geometry", IEEE TBME 2012, and
"Classification of covariance matrices using a Riemannian-based kernel for BCI applications",
Neurocomputing 2013): each window is summarized by the spatial covariance of its rows, mapped to
the tangent space of the manifold of SPD matrices at the training windows' Riemannian mean, where
a linear classifier works.

Input  (B, C, F, T): the C x F rows are the channels; any T >= 2 (a covariance over time).
Output (B, K) logits.

The transform:
  covariance  per window, over its T frames with each row's mean removed, divided by T; shrunk
              toward (trace / R) I by the Oracle Approximating Shrinkage of Chen, Wiesel, Eldar and
              Hero (2010, "Shrinkage algorithms for MMSE covariance estimation"), closed form, one
              shrinkage per window: rho = min(1, (tr(S^2) + tr(S)^2) / ((T + 1)(tr(S^2) - tr(S)^2 / R)))
              (their eq. 23 without the 2/R terms, as scikit-learn, hence pyriemann, computes it);
              option estimator=none keeps the sample covariance (full rank only when T > R)
  reference   P, the Riemannian (affine-invariant) mean of the training covariances, the point that
              minimizes the summed squared distances delta(P, C_i) = ||logm(P^-1/2 C_i P^-1/2)||_F,
              by the fixed-point iteration P <- P^1/2 expm(mean_i logm(P^-1/2 C_i P^-1/2)) P^1/2
              from the arithmetic mean, in float64, until the mean log's norm is below 1e-10 (or
              `iterations` steps); P and P^-1/2 are buffers
  features    the tangent vector at P, S_i = logm(P^-1/2 C_i P^-1/2) (R, R), as its upper triangle
              row by row with the off-diagonal entries times sqrt(2) (so the Euclidean norm of the
              vector is the Riemannian distance to P): R(R + 1) / 2 of them, standardized by the
              training windows' mean and std (buffers)
Every matrix function (sqrt, inverse sqrt, log, exp) is one eigendecomposition of a symmetric
matrix (torch.linalg.eigh), eigenvalues floored far below any real one (a window with a silent
row still maps to finite features). fit_data() fits P and the standardization from up to the
run's FIT_WINDOWS training windows, P itself from MEAN_WINDOWS of them drawn by the run's seed
(each of its steps is an eigendecomposition of every window's whitened covariance: at 128 rows,
3 steps over 1,024 windows took 14 s, and 256 windows place the mean as well for the features'
purpose); the run then solves the head.

The head, solved before the first epoch from the standardized features of every training window
(head_windows / head_features / fit_head) and left as it is by the epochs, which only score it
(fixed_parameters). Option `head`:
  auto      for classification (the task's one-vs-rest +-1 targets), the logistic regression of
            Barachant et al.: multinomial, L2 penalty C = LOGISTIC_C on the summed losses, class
            weights honoured (models/logistic.py); for any other target (regression), MiniRocket's
            ridge, its penalty by exact leave-one-out (models/ridge.py); closed form up to
            HEAD_WINDOWS training windows, AdamW beyond
  logistic  the logistic head (classification only); ridge: the ridge head; adamw: gradient steps
The logistic head is fitted on the tangent vectors as they are (features x std), as Barachant
et al. and pyriemann do, so its penalty treats every tangent direction alike; the ridge on the
standardized features, as MiniRocket's. The buffer `solver` records which head was solved
(0 none, 1 ridge, 2 logistic), `penalty` its penalty (ridge's lambda, or 1 / C).
C = 1 kept by 5-fold x 2 cross-validation of the training splits only (mean accuracy at
C = 0.1 / 1 / 10; ridge; logistic on standardized features at C = 1):
  BasicMotions 1.000 / 1.000 / 1.000; 0.887; 0.912     EyesOpenShut 0.705 / 0.748 / 0.730; 0.680; 0.698
  FingerMovements 0.570 / 0.582 / 0.582; 0.541; 0.559  HandMovementDirection 0.359 / 0.303 / 0.287; 0.366; 0.269
  SelfRegulationSCP2 0.457 / 0.450 / 0.470; 0.450; 0.512
(means over the sets 0.618 / 0.617 / 0.614: no C clearly better).

Suits EEG where the class lives in the spatial covariance (motor imagery, eyes open/shut, mental
state): few parameters, no random draws, seconds to fit. The features grow as R^2: a few dozen rows.
"""
import math

import torch
from torch import nn

from ..errors import UserError, one_of, positive_int
from ..declare import Option
from .base import Model
from .common import shape_problem
from .logistic import fit_logistic
from .ridge import fit_ridge

HEAD_WINDOWS = 20_000       # head=auto solves in closed form up to this many training windows
LOGISTIC_C = 1.0            # the logistic head's inverse penalty (scikit-learn's C): see the docstring
SOLVERS = ("none", "ridge", "logistic")     # the `solver` buffer's codes
MEAN_TOL = 1e-10            # the Riemannian mean stops when the mean tangent vector's norm is below
FLOOR = 1e-12               # eigenvalues floor, relative to the matrix's largest
MEAN_WINDOWS = 256          # the Riemannian mean is fitted on at most this many training windows (seeded)


def covariances(x, estimator="oas"):
    """x (B, R, T) -> (B, R, R) float64: each window's covariance over T (row means removed,
    divided by T), OAS-shrunk toward (trace / R) I when estimator is "oas"."""
    x = x.double()
    x = x - x.mean(-1, keepdim=True)
    frames, rows = x.shape[-1], x.shape[-2]
    s = x @ x.transpose(-1, -2) / frames
    if estimator == "none":
        return s
    trace = s.diagonal(dim1=-2, dim2=-1).sum(-1)                     # (B,)
    trace_sq = (s * s).sum((-2, -1))                                 # tr(S^2): S is symmetric
    num = trace_sq + trace ** 2
    den = (frames + 1) * (trace_sq - trace ** 2 / rows)
    rho = torch.where(den > 0, num / den.where(den > 0, torch.ones_like(den)), torch.ones_like(den)).clamp_max(1.0)
    eye = torch.eye(rows, dtype=s.dtype, device=s.device)
    return (1 - rho)[:, None, None] * s + (rho * trace / rows)[:, None, None] * eye


def spectral(m, fn, positive=True):
    """A function of symmetric matrices m (..., R, R) through their eigenvalues: U diag(fn(w)) U^T.
    positive: m is SPD, each matrix's eigenvalues are floored at FLOOR x its largest (so log and
    rsqrt are finite); exp takes positive=False."""
    w, u = torch.linalg.eigh(m)
    if positive:
        w = w.clamp_min(FLOOR * w[..., -1:].clamp_min(FLOOR))          # eigh's are ascending: [-1] is the largest
    return (u * fn(w).unsqueeze(-2)) @ u.transpose(-1, -2)


def riemann_mean(covs, iterations=50, tol=MEAN_TOL):
    """covs (N, R, R) SPD float64 -> (P (R, R), P^-1/2 (R, R), steps taken): the affine-invariant
    mean, by the fixed-point iteration from the arithmetic mean."""
    p = covs.mean(0)
    steps = 0
    for steps in range(1, iterations + 1):
        root, inv_root = spectral(p, torch.sqrt), spectral(p, torch.rsqrt)
        step = spectral(inv_root @ covs @ inv_root, torch.log).mean(0)      # the mean tangent vector
        p = root @ spectral(step, torch.exp, positive=False) @ root
        p = (p + p.T) / 2
        if torch.linalg.matrix_norm(step) < tol:
            break
    return p, spectral(p, torch.rsqrt), steps


def tangent_vectors(covs, inv_root):
    """covs (B, R, R), P^-1/2 (R, R) -> (B, R(R+1)/2): upper(logm(P^-1/2 C P^-1/2)), the upper
    triangle row by row, off-diagonal entries times sqrt(2)."""
    s = spectral(inv_root @ covs @ inv_root, torch.log)
    rows = s.shape[-1]
    i, j = torch.triu_indices(rows, rows, device=s.device)
    scale = torch.ones(len(i), dtype=s.dtype, device=s.device)
    scale[i != j] = math.sqrt(2)
    return s[:, i, j] * scale


def class_labels(targets):
    """The classes of one-vs-rest targets (N, K), K >= 2, each row +1 at its class and -1 elsewhere
    (Classification.least_squares) -> labels (N,) long; None for any other targets."""
    if targets.ndim != 2 or targets.shape[1] < 2:
        return None
    positive = targets == 1
    if not bool(((targets == -1) | positive).all()) or not bool((positive.sum(1) == 1).all()):
        return None
    return positive.long().argmax(1)


class TangentSpace(Model):
    """Covariances (OAS), the tangent space at their Riemannian mean, a logistic or ridge head (Barachant et al.)."""
    name = "tangent"
    per_frame = False
    recipe = ("--epochs", "1")      # the head is solved before epoch 1, which only scores it
    fixed_frames = False            # a covariance over any T >= 2
    options = (
        Option("iterations", positive_int, 50, "fixed-point steps of the Riemannian mean at most"),
        Option("estimator", one_of("oas", "none"), "oas", "each window's covariance: oas (shrunk toward a scaled "
               "identity, Chen et al. 2010) or none (the sample covariance)"),
        Option("head", one_of("auto", "logistic", "ridge", "adamw"), "auto", "auto: up to 20,000 training windows "
               "solved, logistic for classes, ridge otherwise; adamw beyond; logistic: L2 logistic regression "
               "(C=1, classification); ridge: closed form, penalty by leave-one-out; adamw: gradient steps"),
    )

    def __init__(self, n_elec, n_bands, n_outputs, drop=0.1, estimator="oas", iterations=50, head="auto"):
        self.record(locals())
        super().__init__()
        rows = n_elec * n_bands
        n_features = rows * (rows + 1) // 2
        # filled by fit_data(): the reference point, its inverse square root, feature statistics
        self.register_buffer("reference", torch.eye(rows, dtype=torch.float64))
        self.register_buffer("inv_root", torch.eye(rows, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        # the head's solve: which (SOLVERS' index; 0: not solved, trained by gradient steps) and its penalty
        self.register_buffer("solver", torch.zeros((), dtype=torch.uint8))
        self.register_buffer("penalty", torch.zeros((), dtype=torch.float64))
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(n_features, n_outputs))

    def input_problem(self, n_elec, n_bands, n_times):
        problem = shape_problem(self.config, n_elec, n_bands, n_times, 1)
        if problem is None and n_times < 2:
            problem = f"T={n_times} frames is too short: --model {self.name} needs T >= 2 (a covariance over time)"
        return problem

    @torch.no_grad()
    def tangent(self, x):
        """(B, C, F, T) -> the tangent vectors at the reference, before standardization
        (B, R(R+1)/2) float64."""
        with torch.autocast(x.device.type, enabled=False):
            return tangent_vectors(covariances(x.flatten(1, 2), self.config["estimator"]), self.inv_root)

    @torch.no_grad()
    def fit_data(self, x, seed=0):
        """The reference point (the Riemannian mean of the covariances) and the features' mean/std
        from training windows x (N, C, F, T), preprocessed as training sees them; the mean from
        MEAN_WINDOWS of them at most, drawn by seed."""
        x = x.to(self.reference.device)
        covs = covariances(x.flatten(1, 2), self.config["estimator"])
        some = covs
        if len(covs) > MEAN_WINDOWS:
            pick = torch.randperm(len(covs), generator=torch.Generator().manual_seed(seed))[:MEAN_WINDOWS]
            some = covs[pick.sort().values.to(covs.device)]
        reference, inv_root, _ = riemann_mean(some, self.config["iterations"])
        self.reference.copy_(reference)
        self.inv_root.copy_(inv_root)
        feats = tangent_vectors(covs, inv_root)
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0, unbiased=False).clamp_min(1e-6))
        self.fitted.fill_(True)

    def head_windows(self, n):
        """Whether the head is solved in closed form from n training windows (option head)."""
        head = self.config["head"]
        return head in ("ridge", "logistic") or (head == "auto" and n <= HEAD_WINDOWS)

    def head_features(self, x):
        """(B, C, F, T) -> the standardized tangent vectors the head takes (B, R(R+1)/2) float32."""
        return ((self.tangent(x) - self.mean) / self.std).float()

    @torch.no_grad()
    def fit_head(self, features, targets, weights=None):
        """The head from every training window's standardized features (N, D), the task's
        least-squares targets (N, K) and window weights (N,) or None: the logistic regression
        (models/logistic.py) when the targets are one-vs-rest classes and the option allows, else
        the ridge (models/ridge.py). Returns the solve's record (weight (K, D), bias (K,),
        penalty, loo, solver)."""
        labels = class_labels(targets)
        if self.config["head"] == "logistic" and labels is None:
            raise UserError("--model tangent: head=logistic needs classes (a classification task); "
                            "use head=ridge for these targets")
        if labels is not None and self.config["head"] in ("auto", "logistic"):
            # on the tangent vectors as they are (the features times std; the mean only moves the
            # intercept): the penalty is then the same in every direction of the tangent space
            scale = self.std.to(features.device, torch.float64)
            solved = fit_logistic(features.double() * scale, labels, targets.shape[1], weights, c=LOGISTIC_C)
            solved["weight"] = solved["weight"] * scale               # back onto the standardized features
            solved["loo"] = torch.zeros(0, dtype=torch.float64)      # no penalty search: C is fixed
            solved["solver"] = "logistic"
        else:
            solved = fit_ridge(features, targets, weights)
            solved["solver"] = "ridge"
        linear = self.head[-1]
        linear.weight.copy_(solved["weight"].to(linear.weight))
        linear.bias.copy_(solved["bias"].to(linear.bias))
        self.penalty.fill_(solved["penalty"])
        self.solver.fill_(SOLVERS.index(solved["solver"]))
        return solved

    def fixed_parameters(self):
        """The head once solved in closed form: gradient steps leave it as it is."""
        return list(self.head.parameters()) if int(self.solver) > 0 else []

    @property
    def n_features(self):
        """D = R(R+1)/2, the width of the tangent vectors the head takes."""
        return self.head[-1].in_features

    def features(self, x):
        """(B, C, F, T) -> the standardized tangent vectors the head takes (B, n_features), once fit_data() ran."""
        if not bool(self.fitted):
            raise RuntimeError("TangentSpace.fit_data() was not called: its reference point is not fitted")
        return self.head_features(x)

    def forward(self, x):
        """(B, C, F, T) -> logits (B, K): the head (dropout, linear) on features(x)."""
        return self.head(self.features(x))

    def export_module(self):
        """An eval forward that torch.export can trace, with the same numbers (biosig.export): the
        model's own, without the `fitted` check (a buffer read as a bool)."""
        return ExportForward(self)


class ExportForward(nn.Module):
    """TangentSpace's eval forward, x (B, C, F, T) -> logits (B, K), without the `fitted` check."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.head(self.model.head_features(x))
