"""The DESIGN §7 suite in JAX, with the weights of the seeded torch models, for timing
jax.jit(jax.vmap(jax.grad(loss))) next to psg4j and torch.func (src/test/python/vmap_side_by_side.py).

Import this before jax is imported elsewhere if XLA must run on one thread: it sets XLA_FLAGS for
--threads 1 (no Eigen thread pool) unless XLA_FLAGS is already set.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_platforms", "cpu")


def _linear(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def _conv(p, name, x):
    y = jax.lax.conv_general_dilated(x, p[name + ".weight"], (1, 1), "VALID",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + p[name + ".bias"][None, :, None, None]


def _max_pool2(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def _layer_norm(p, name, x, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]


def forward(suite, p, x):
    """The suite's forward on a batch, parameters named as torch's state_dict names them."""
    if suite == "mlp":
        return _linear(p, "2", jax.nn.relu(_linear(p, "0", x)))
    if suite == "cnn":
        h = _max_pool2(jax.nn.relu(_conv(p, "0", x)))
        h = _max_pool2(jax.nn.relu(_conv(p, "3", h)))
        return _linear(p, "7", h.reshape(h.shape[0], -1))
    if suite == "seq":
        h = jax.nn.gelu(_layer_norm(p, "1", _linear(p, "0", x)), approximate=False)
        return _linear(p, "3", h)
    if suite == "emb":
        h = p["0.weight"][x]
        return _linear(p, "2", h.reshape(h.shape[0], -1))
    raise ValueError(suite)


def per_sample_gradients(suite):
    """jit(vmap(grad)) of the L1 sum loss of each one-sample batch: (params, x) -> {name: [B, ...]}."""
    def loss(p, xi):
        return jnp.abs(forward(suite, p, xi[None])).sum()
    return jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))


def from_torch(model, x):
    """The torch model's parameters and input as JAX arrays."""
    params = {k: jnp.asarray(v.detach().numpy()) for k, v in model.named_parameters()}
    return params, jnp.asarray(x.numpy())


def run(fn, params, x):
    out = fn(params, x)
    jax.block_until_ready(out)
    return out


def matches(jax_grads, torch_grads, rtol=1e-4, atol=1e-5):
    """Whether JAX's per-sample gradients equal torch.func's ({name: tensor})."""
    return all(np.allclose(np.asarray(jax_grads[k]), v.numpy(), rtol=rtol, atol=atol)
               for k, v in torch_grads.items())
