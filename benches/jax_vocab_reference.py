"""Reference values and gradients of tenferro's everyday vocabulary, computed with JAX.

Writes tests/data/jax_vocab.txt, which tests/integration/jax_vocab.rs reads. Each case is a scalar
loss L(x) = sum(w * f(x)) of one input vector x; the file holds x, f(x) and dL/dx.
Run from the repository root:  python3 benches/jax_vocab_reference.py
"""
import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

X = jnp.array([-2.5, -1.3, -0.5, 0.0, 0.4, 1.1, 2.7])
U = jnp.array([-0.9, -0.6, -0.2, 0.0, 0.3, 0.55, 0.85])  # inside (-1, 1)
P = jnp.array([0.2, 0.5, 1.0, 1.7, 2.4, 3.3, 5.0])  # positive
A = jnp.array([1.1, 1.3, 1.7, 2.0, 2.6, 3.5, 6.0])  # above 1
H = jnp.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.7])  # round's ties
W = jnp.array([0.3, -1.1, 0.7, 1.9, -0.4, 0.8, 1.3])  # loss weights
M = jnp.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])  # 2x3 (row-major here)

CASES = [
    # name, input, function of a 1-D vector
    ("erf", X, jax.lax.erf),
    ("erfc", X, jax.lax.erfc),
    ("tan", U, jnp.tan),
    ("asin", U, jnp.arcsin),
    ("acos", U, jnp.arccos),
    ("atan", X, jnp.arctan),
    ("sinh", X, jnp.sinh),
    ("cosh", X, jnp.cosh),
    ("asinh", X, jnp.arcsinh),
    ("acosh", A, jnp.arccosh),
    ("atanh", U, jnp.arctanh),
    ("logistic", X, jax.nn.sigmoid),
    ("cbrt", P, jnp.cbrt),
    ("floor", X, jnp.floor),
    ("ceil", X, jnp.ceil),
    ("round", H, jnp.round),
    ("relu", X, jax.nn.relu),
    ("gelu_exact", X, lambda x: jax.nn.gelu(x, approximate=False)),
    ("gelu_tanh", X, lambda x: jax.nn.gelu(x, approximate=True)),
    ("silu", X, jax.nn.silu),
    ("softplus", X, jax.nn.softplus),
    ("log_sigmoid", X, jax.nn.log_sigmoid),
    ("clip", X, lambda x: jnp.clip(x, -1.0, 1.5)),
    ("square", X, jnp.square),
    ("reciprocal", P, jnp.reciprocal),
    ("softmax", X, jax.nn.softmax),
    ("log_softmax", X, jax.nn.log_softmax),
    ("logsumexp", X, lambda x: jax.nn.logsumexp(x, keepdims=True)),
    ("mean", X, lambda x: jnp.mean(x, keepdims=True)),
    ("var", X, lambda x: jnp.var(x, keepdims=True)),
    ("var_ddof1", X, lambda x: jnp.var(x, ddof=1, keepdims=True)),
    ("std", X, lambda x: jnp.std(x, keepdims=True)),
    ("cumsum", X, jnp.cumsum),
    ("cumprod", X, jnp.cumprod),
    ("cummax", X, jax.lax.cummax),
    ("sort", X[::-1], jnp.sort),
    ("atan2_with_p", X, lambda x: jnp.arctan2(x, P)),
    ("rem_by_p", X, lambda x: jnp.fmod(x, P)),
    ("stop_gradient_times_x", X, lambda x: jax.lax.stop_gradient(x) * x),
    ("reverse", X, lambda x: x[::-1]),
    ("tril_2x3_col_sum", X[:6], lambda x: jnp.tril(x.reshape(3, 2).T).reshape(-1, order="F")),
]


def fmt(v):
    return " ".join(repr(float(a)) for a in jnp.ravel(v))


lines = ["# tenferro vocabulary reference, from JAX " + jax.__version__ + " (x64)"]
for name, x, f in CASES:
    w = W[: f(x).shape[0]]
    y = f(x)
    g = jax.grad(lambda x: jnp.sum(w * f(x)))(x)
    lines.append(f"case {name}")
    lines.append("x " + fmt(x))
    lines.append("w " + fmt(w))
    lines.append("y " + fmt(y))
    lines.append("g " + fmt(g))
open("tests/data/jax_vocab.txt", "w").write("\n".join(lines) + "\n")
print(f"wrote {len(CASES)} cases to tests/data/jax_vocab.txt")
