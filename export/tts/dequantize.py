"""A dynamically quantised ONNX graph back to float: int8 weights times their scales.

onnxruntime's ``quantize_dynamic`` (how Kokoro's int8 graph was made) replaces each
float operator by an integer one fed by ``DynamicQuantizeLinear`` of its input and
followed by a rescale::

    x -> DynamicQuantizeLinear -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast -> Mul(x_s * W_s)
    x -> DynamicQuantizeLinear -> ConvInteger(...) [-> Add(round(b / (x_s * W_s)))] -> Cast -> Mul
    x -> DynamicQuantizeLSTM(x, W_q, R_q, ..., W_s, W_zp, R_s, R_zp)   (W, R transposed)

Each becomes its float operator on ``x`` with ``(W_q - W_zp) * W_s`` as weights (and the
float bias the rescale was computed from): the same weights, activations no longer
rounded to 8 bits. Why: ``ConvInteger`` has no fast CPU kernel (1.7x the float
convolutions' time in Kokoro's decoder, measured here) and none of the three runs on
onnxruntime's CUDA provider, so the float graph is both the faster CPU graph and one
the GPU profile can place on the GPU. The cost is size (Kokoro: 92 MB -> 325 MB).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

QUANTISED = ("MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM")


class _Graph:
    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.to_array = numpy_helper.to_array
        self.from_array = numpy_helper.from_array
        self.initializers = {i.name: i for i in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.new_weights: dict[tuple, str] = {}

    def array(self, name: str) -> np.ndarray:
        return self.to_array(self.initializers[name])

    def only_consumer(self, name: str, op_type: str) -> Any:
        found = self.consumers.get(name, [])
        if len(found) != 1 or found[0].op_type != op_type:
            raise ValueError(f"{name}: expected one {op_type} after it, found "
                             f"{[n.op_type for n in found]}")
        return found[0]

    def weight(self, key: tuple, name: str, make: Any) -> str:
        """A float initializer made once per quantised source (ALBERT shares its layers)."""
        if key not in self.new_weights:
            self.new_weights[key] = f"{name}_dequantized"
            self.graph.initializer.append(self.from_array(
                np.ascontiguousarray(make(), dtype=np.float32), self.new_weights[key]))
        return self.new_weights[key]

    def weight_scale(self, rescale: Any, quantised_output: str) -> np.ndarray:
        """W_s: the initializer inside the ``x_s * W_s`` product the rescale multiplies by."""
        product = rescale.input[1] if rescale.input[0] == quantised_output else rescale.input[0]
        scales = [i for i in self.producer[product].input if i in self.initializers]
        if len(scales) != 1:
            raise ValueError(f"{rescale.name}: cannot find the weight scale")
        return self.array(scales[0]).astype(np.float32)


def dequantize(model: Any) -> Any:
    """``model`` (an ``onnx.ModelProto``) with every dynamically quantised operator in
    float, rewritten in place and returned; raises ValueError on a pattern it does not know."""
    from onnx import helper

    g = _Graph(model.graph)
    replaced: dict[int, Any] = {}
    removed: set[int] = set()
    for node in list(model.graph.node):
        if node.op_type == "DynamicQuantizeLSTM":
            replaced[id(node)] = _lstm(g, node, helper)
        elif node.op_type in ("MatMulInteger", "ConvInteger"):
            new, chain = _integer_op(g, node, helper)
            replaced[id(node)] = new
            removed.update(id(n) for n in chain)
    nodes = [replaced.get(id(n), n) for n in model.graph.node if id(n) not in removed]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _prune(model.graph)
    return model


def _integer_op(g: _Graph, node: Any, helper: Any) -> tuple[Any, list[Any]]:
    quantise = g.producer.get(node.input[0])
    if quantise is None or quantise.op_type != "DynamicQuantizeLinear":
        raise ValueError(f"{node.name}: input is not dynamically quantised")
    weights = g.array(node.input[1]).astype(np.float32)
    zero = g.array(node.input[3]).astype(np.float32) if len(node.input) > 3 and node.input[3] \
        else np.zeros((), np.float32)
    chain, bias = [], None
    following = g.consumers[node.output[0]]
    if len(following) == 1 and following[0].op_type == "Add":  # ConvInteger's int32 bias
        add = following[0]
        chain.append(add)
        bias = _float_bias(g, add.input[1] if add.input[0] == node.output[0] else add.input[0])
        last = add.output[0]
    else:
        last = node.output[0]
    cast = g.only_consumer(last, "Cast")
    rescale = g.only_consumer(cast.output[0], "Mul")
    chain += [cast, rescale]
    scale = g.weight_scale(rescale, cast.output[0])
    key = (node.input[1], node.input[3] if len(node.input) > 3 else "", scale.tobytes())
    if node.op_type == "MatMulInteger":  # W [K, N]; zero point and scale per column
        name = g.weight(key, node.input[1], lambda: (weights - zero) * scale)
        return helper.make_node("MatMul", [quantise.input[0], name], [rescale.output[0]],
                                name=f"{node.name or node.output[0]}_float"), chain
    per_channel = (-1,) + (1,) * (weights.ndim - 1)  # W [out, in, k]; per output channel
    name = g.weight(key, node.input[1], lambda: (weights - np.reshape(zero, per_channel if
                                                                      zero.ndim else ()))
                    * np.reshape(scale, per_channel if scale.ndim else ()))
    conv = helper.make_node("Conv", [quantise.input[0], name] + ([bias] if bias else []),
                            [rescale.output[0]], name=f"{node.name or node.output[0]}_float")
    conv.attribute.extend(node.attribute)
    return conv, chain


def _float_bias(g: _Graph, quantised_bias: str) -> str:
    """The float bias ``round(b / (x_s * W_s))`` was computed from (Reshape <- Cast <-
    Floor <- Div(b, scale))."""
    node = g.producer.get(quantised_bias)
    for _ in range(6):
        if node is None:
            break
        if node.op_type == "Div" and node.input[0] in g.initializers:
            return node.input[0]
        node = g.producer.get(node.input[0])
    raise ValueError(f"{quantised_bias}: cannot trace the quantised bias to its float value")


def _lstm(g: _Graph, node: Any, helper: Any) -> Any:
    """DynamicQuantizeLSTM -> LSTM: its W [dirs, in, 4h] and R [dirs, h, 4h] are ONNX's
    [dirs, 4h, in] / [dirs, 4h, h] transposed, with a scale and zero point per direction."""
    inputs = list(node.input)

    def weights(index: int, scale_index: int) -> str:
        def make() -> np.ndarray:
            quantised = g.array(inputs[index]).astype(np.float32)
            scale = g.array(inputs[scale_index]).astype(np.float32)[:, None, None]
            zero = g.array(inputs[scale_index + 1]).astype(np.float32)[:, None, None]
            return ((quantised - zero) * scale).transpose(0, 2, 1)
        return g.weight((inputs[index], inputs[scale_index]), inputs[index], make)

    # inputs: X, W, R, B, sequence_lens, initial_h, initial_c, P, W_s, W_zp, R_s, R_zp
    lstm = helper.make_node("LSTM", [inputs[0], weights(1, 8), weights(2, 10), *inputs[3:8]],
                            list(node.output), name=f"{node.name or node.output[0]}_float")
    lstm.attribute.extend(node.attribute)
    return lstm


def _prune(graph: Any) -> None:
    """Drop nodes and initializers nothing reads any more (the quantisers, old weights)."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        kept = [n for n in graph.node if any(o in used for o in n.output)]
        if len(kept) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input}
    kept_weights = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_weights)


def operator_counts(model: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for node in model.graph.node:
        counts[node.op_type] += 1
    return dict(counts)
