"""LRP rules: how one linear step ``z = sum_k W_k a_k + b`` hands its relevance to its inputs.

A rule is called at trace time on a :class:`Linear` (the step's map as a function, its inputs,
its bias) and returns the relevance of each input plus what the bias and the stabiliser absorbed,
each computed from its own term. The transposes ``W^T s`` come from one gradient of the forward
map (the gradient trick), so no transpose is written by hand. :data:`RULES` is the rule table;
:func:`get_rule` turns a mistyped name into a ValueError naming the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TINY = 1e-9
ALL, POS, NEG = 0, 1, -1


def part(w, sign: int):
    """``w`` (sign 0), its positive part (1) or its negative part (-1)."""
    import tensorflow as tf

    if sign == POS:
        return tf.nn.relu(w)
    if sign == NEG:
        return tf.minimum(w, 0.0)
    return w


def rowsum(t):
    """Sum over every axis but the batch axis, (B,)."""
    import tensorflow as tf

    return tf.reduce_sum(t, axis=list(range(1, len(t.shape))))


@dataclass
class Linear:
    """One linear map ``z = sum_k W_k a_k + b`` at trace time, as a rule sees it.

    Attributes:
        apply: ``apply(xs, sign) -> sum_k W_k^sign x_k`` (no bias) where ``sign`` restricts the
            weights to their positive (1) or negative (-1) part, or not (0).
        inputs: The activations ``a_k`` the layer read.
        bias: ``b`` (broadcastable to z) or None.
        nonneg: Every weight is >= 0 (sums, average pooling): the negative part is empty.
        bounds: (low, high) of the input for the z^B rule (first layer only), else None.
    """

    apply: Callable
    inputs: list
    bias: object = None
    nonneg: bool = False
    bounds: tuple | None = None

    def z(self):
        """The output of the step, ``sum_k W_k a_k + b``."""
        z = self.apply(self.inputs, ALL)
        return z if self.bias is None else z + self.bias


def _contributions(lin: Linear, combos):
    """``z = sum_(f, sign) W^sign f(a)`` and ``back(s) = [sum_(f, sign) f(a_k) (W^sign)^T s]``.

    ``f`` picks part of the activations (all, positive, negative); the transposes come from one
    gradient of ``z`` (the gradient trick).
    """
    import tensorflow as tf

    xs_list = [[f(a) for a in lin.inputs] for f, _ in combos]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for xs in xs_list:
            for x in xs:
                tape.watch(x)
        z = tf.add_n([lin.apply(xs, sign) for xs, (_, sign) in zip(xs_list, combos)])

    def back(s):
        flat = [x for xs in xs_list for x in xs]
        grads = tape.gradient(z, flat, output_gradients=s,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        n = len(lin.inputs)
        out = [None] * n
        for i, (x, g) in enumerate(zip(flat, grads)):
            out[i % n] = x * g if out[i % n] is None else out[i % n] + x * g
        return out

    return z, back


def _all(a):
    import tensorflow as tf

    return tf.identity(a)  # a fresh tensor per use, so an input read twice is counted twice


def _pos(a):
    import tensorflow as tf

    return tf.nn.relu(a)


def _neg(a):
    import tensorflow as tf

    return tf.minimum(a, 0.0)


def _safe_div(r, z):
    """(r / z where z != 0 else 0, r where z == 0): the ratio and the relevance dropped."""
    import tensorflow as tf

    nz = tf.abs(z) > TINY
    return tf.where(nz, r / tf.where(nz, z, tf.ones_like(z)), 0.0), tf.where(nz, 0.0, r)


class Rule:
    """A relevance rule for one linear step.

    ``rule(lin, r, eps) -> (relevance of each input, bias part (B,), stabiliser part (B,))``: the
    relevance the bias and the stabiliser (epsilon, or units with a zero denominator) absorbed,
    each computed from its own term.
    """

    name = ""

    def __call__(self, lin: Linear, r, eps):  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Epsilon(Rule):
    """LRP-epsilon (LRP-0 as epsilon -> 0): ``R_i = a_i sum_j w_ij R_j / (z_j + eps sign z_j)``."""

    name: str = "epsilon"

    def __call__(self, lin, r, eps):
        import tensorflow as tf

        z, back = _contributions(lin, [(_all, ALL)])
        if lin.bias is not None:
            z = z + lin.bias
        d = (eps + TINY) * tf.where(z >= 0, 1.0, -1.0)
        s = r / (z + d)
        bias = rowsum(lin.bias * s) if lin.bias is not None else tf.zeros_like(rowsum(r))
        return back(s), bias, rowsum(d * s)


@dataclass(frozen=True)
class AlphaBeta(Rule):
    """LRP-alpha-beta: positive contributions (``a_i w_ij > 0``) get ``alpha`` times the
    relevance in proportion, negative ones ``beta`` times against; ``alpha=1, beta=0`` without
    biases is the z+ rule."""

    alpha: float = 1.0
    beta: float = 0.0
    bias: bool = True
    name: str = "ab"

    def _side(self, lin, r, sign: int):
        if lin.nonneg:
            combos = [(_pos, ALL)] if sign > 0 else [(_neg, ALL)]
        else:
            combos = [(_pos, POS), (_neg, NEG)] if sign > 0 else [(_pos, NEG), (_neg, POS)]
        z, back = _contributions(lin, combos)
        b = part(lin.bias, sign) if self.bias and lin.bias is not None else None
        if b is not None:
            z = z + b
        s, lost = _safe_div(r, z)
        bias = rowsum(b * s) if b is not None else 0.0 * rowsum(r)
        return back(s), bias, rowsum(lost)

    def __call__(self, lin, r, eps):
        rel, bias, lost = self._side(lin, r, 1)
        if self.alpha != 1.0:
            rel, bias, lost = [self.alpha * t for t in rel], self.alpha * bias, self.alpha * lost
        if self.beta:
            rn, bn, ln = self._side(lin, r, -1)
            rel = [p - self.beta * n for p, n in zip(rel, rn)]
            bias, lost = bias - self.beta * bn, lost - self.beta * ln
        return rel, bias, lost


@dataclass(frozen=True)
class ZBox(Rule):
    """z^B for a bounded input ``l <= a <= h``: contributions ``a_i w_ij - l_i w+_ij - h_i
    w-_ij`` (all >= 0; biases ignored). Falls back to z+ when the bounds are unknown."""

    name: str = "zb"

    def __call__(self, lin, r, eps):
        import tensorflow as tf

        if lin.bounds is None or len(lin.inputs) != 1:
            return RULES["zplus"](lin, r, eps)
        (a,) = lin.inputs
        lo, hi = (tf.identity(b * tf.ones_like(a)) for b in lin.bounds)
        a = tf.identity(a)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([a, lo, hi])
            z = lin.apply([a], ALL) - lin.apply([lo], POS) - lin.apply([hi], NEG)
        s, lost = _safe_div(r, z)
        ga, gl, gh = tape.gradient(z, [a, lo, hi], output_gradients=s,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [a * ga + lo * gl + hi * gh], 0.0 * rowsum(r), rowsum(lost)


#: The rules by name.
RULES: dict[str, Rule] = {
    "epsilon": Epsilon(),
    "zplus": AlphaBeta(1.0, 0.0, False, "zplus"),
    "ab10": AlphaBeta(1.0, 0.0, True, "ab10"),
    "ab21": AlphaBeta(2.0, 1.0, True, "ab21"),
    "zb": ZBox(),
}


def named(table: dict, name: str, what: str):
    """``table[name]``, or a ValueError naming ``what`` and listing the valid names."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown LRP {what} {name!r}; choose one of {sorted(table)}") from None


def get_rule(name: str) -> Rule:
    """The rule called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    return named(RULES, name, "rule")
