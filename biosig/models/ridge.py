"""Ridge regression in closed form, its penalty chosen by efficient leave-one-out: the head that
MiniRocket's paper fits (Dempster et al. 2021, after Rocket: a ridge classifier on the
standardized features, the penalty from a log-spaced grid by leave-one-out cross-validation).

The leave-one-out residuals come from one eigendecomposition, without refitting (Rifkin and
Lippert, "Notes on regularized least squares", 2007): for a linear smoother yhat = H y,
    y_i - yhat_{-i}(x_i) = (y_i - yhat_i) / (1 - H_ii).
With X (N, D) centred (the intercept is not penalized) and G = X X^T = U diag(s) U^T (or, when
N > D, X^T X = V diag(s) V^T and U diag(sqrt s) = X V), every penalty lam costs only
    H = 1 1^T / N + U diag(s / (s + lam)) U^T,
so the whole grid is one decomposition and a few matrix products. Window weights w (class
weights) scale the rows by sqrt(w) (weighted least squares); the identity holds unchanged.
"""
import torch

PENALTIES = tuple(10.0 ** (-3 + 6 * i / 9) for i in range(10))     # the paper's grid: logspace(-3, 3, 10)


def fit_ridge(x, y, weights=None, penalties=PENALTIES):
    """Weighted ridge regression with an unpenalized intercept, the penalty chosen by exact
    leave-one-out squared error.

    x (N, D), y (N, K) real targets, weights (N,) positive or None -> dict with
      weight (K, D), bias (K,): the fit at the chosen penalty (yhat = x @ weight.T + bias)
      penalty: the chosen one; loo (len(penalties),): each penalty's mean weighted leave-one-out
      squared error (summed over the K targets).
    Computed in float64 on x's device (autocast off); returns float64 tensors."""
    with torch.autocast(x.device.type, enabled=False):
        x, y = x.double(), y.double().reshape(len(y), -1)
        n, d = x.shape
        w = torch.ones(n, dtype=x.dtype, device=x.device) if weights is None else weights.double().to(x.device)
        total = w.sum()
        x_mean = (w[:, None] * x).sum(0) / total
        y_mean = (w[:, None] * y).sum(0) / total
        root = w.sqrt()[:, None]
        xc, yc = root * (x - x_mean), root * (y - y_mean)           # weighted and centred
        if n <= d:           # the Gram matrix: (N, N)
            s, u = torch.linalg.eigh(xc @ xc.T)
            s = s.clamp_min(0)
        else:                # the covariance: (D, D)
            s, v = torch.linalg.eigh(xc.T @ xc)
            s = s.clamp_min(0)
            u = xc @ v                                                # U diag(sqrt s), columns of norm sqrt(s)
            s_safe = torch.where(s > 0, s, torch.ones_like(s))
            u = torch.where(s > 0, u / s_safe.sqrt(), torch.zeros_like(u))
        uty = u.T @ yc                                                # (r, K)
        u2 = u * u
        lev_mean = w / total                                          # the intercept's leverage: sqrt(w) sqrt(w)^T / sum w
        loo = []
        for lam in penalties:
            shrink = s / (s + lam)
            fitted = u @ (shrink[:, None] * uty)                      # centred, weighted fit
            leverage = lev_mean + u2 @ shrink
            # residuals back in the targets' units: the weighted residual over sqrt(w)
            resid = (yc - fitted) / root / (1 - leverage)[:, None]
            loo.append(float((w[:, None] * resid ** 2).sum() / total))
        best = min(range(len(penalties)), key=lambda i: (loo[i], -i))   # ties: the larger penalty
        lam = penalties[best]
        if n <= d:           # dual: weight = X^T (G + lam I)^-1 Y
            coef = xc.T @ (u @ (uty / (s + lam)[:, None]))
        else:
            coef = v @ ((v.T @ (xc.T @ yc)) / (s + lam)[:, None])
        weight = coef.T                                               # (K, D)
        bias = y_mean - weight @ x_mean
        return {"weight": weight, "bias": bias, "penalty": lam,
                "loo": torch.tensor(loo, dtype=torch.float64)}


@torch.no_grad()
def solve_into(linear, penalty, features, targets, weights=None):
    """fit_ridge on (features (N, D), targets (N, K), weights (N,) or None), its fit copied into the
    nn.Linear `linear` (D -> K) and its penalty into the 0-d buffer `penalty` -> fit_ridge's record."""
    solved = fit_ridge(features, targets, weights)
    linear.weight.copy_(solved["weight"].to(linear.weight))
    linear.bias.copy_(solved["bias"].to(linear.bias))
    penalty.fill_(solved["penalty"])
    return solved
