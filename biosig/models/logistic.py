"""Multinomial logistic regression with an L2 penalty, solved full batch: a closed-form-style head
(the tangent-space classifier of Barachant et al. is a logistic regression on the tangent vectors).

The model: logits z_i = W x_i + b (K classes), p_i = softmax(z_i). The objective, with window
weights w_i (class weights; 1 when none) and the penalty written as scikit-learn's C:
    J(W, b) = sum_i w_i CE_i + ||W||_F^2 / (2C),      CE_i = -log p_i[y_i] = logsumexp(z_i) - z_i[y_i]
the intercept b unpenalized. J is strictly convex in W; in b it is flat along b + c 1 (a softmax
ignores a constant added to every logit): started from zero, every gradient of b sums to zero over
the classes, so the solve stays on sum_k b_k = 0 (and sum_k W_k = 0, which the penalty's optimum
has anyway), the symmetric solution.

Two classes: the multinomial form with K = 2 is the binary logistic regression with logit
z = v x + c, v = W_1 - W_0; with W = [-v/2, v/2] its penalty ||W||^2 = ||v||^2 / 2, so the
multinomial at C/2 is the binary at C. K = 2 is solved at C/2, so that C means what it means for
the binary model (scikit-learn's LogisticRegression fits the binary model when K = 2).

The solve: torch.optim.LBFGS with the strong Wolfe line search on J / sum_i w_i (the same
minimizer, better scaled), in float64, from zero, until the largest gradient entry is below
GRAD_TOL (or MAX_STEPS iterations). No randomness: the same inputs give the same head.
"""
import torch

GRAD_TOL = 1e-9        # on the gradient of J / sum(w): the largest entry
MAX_STEPS = 2000       # LBFGS iterations at most


def fit_logistic(x, labels, n_classes, weights=None, c=1.0, max_steps=MAX_STEPS, tol=GRAD_TOL):
    """Weighted multinomial logistic regression with an L2 penalty on the weights.

    x (N, D) features, labels (N,) integer classes in [0, n_classes), weights (N,) positive or
    None, c > 0 the inverse penalty (scikit-learn's C) -> dict with
      weight (K, D), bias (K,): the logits are x @ weight.T + bias (K = n_classes)
      penalty: 1 / c, the L2 strength; steps: LBFGS iterations taken; grad: the final largest
      gradient entry of J / sum(w); loss: J / sum(w) at the solution.
    Computed in float64 on x's device (autocast off); returns float64 tensors."""
    if n_classes < 2:
        raise ValueError(f"logistic regression needs 2 classes or more, got {n_classes}")
    with torch.autocast(x.device.type, enabled=False):
        x = x.double()
        labels = labels.long().to(x.device)
        n, d = x.shape
        w = torch.ones(n, dtype=x.dtype, device=x.device) if weights is None else weights.double().to(x.device)
        total = w.sum()
        c_solve = c / 2 if n_classes == 2 else c                  # the binary model's C (module docstring)
        weight = torch.zeros(n_classes, d, dtype=x.dtype, device=x.device, requires_grad=True)
        bias = torch.zeros(n_classes, dtype=x.dtype, device=x.device, requires_grad=True)

        def objective():
            logits = x @ weight.T + bias                                          # (N, K)
            ce = torch.logsumexp(logits, 1) - logits.gather(1, labels[:, None]).squeeze(1)
            return ((w * ce).sum() + (weight * weight).sum() / (2 * c_solve)) / total

        solver = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_steps, max_eval=max_steps * 5 // 4,
                                   tolerance_grad=tol, tolerance_change=0.0, history_size=20,
                                   line_search_fn="strong_wolfe")

        def closure():
            solver.zero_grad()
            loss = objective()
            loss.backward()
            return loss

        with torch.enable_grad():
            solver.step(closure)
            loss = objective()
            gw, gb = torch.autograd.grad(loss, [weight, bias])
        steps = solver.state[solver._params[0]].get("n_iter", 0)
        grad = float(torch.cat([gw.flatten(), gb]).abs().max())
        return {"weight": weight.detach(), "bias": bias.detach(), "penalty": 1.0 / c, "steps": int(steps),
                "grad": grad, "loss": float(loss.detach())}
