"""Moonshine's ``.ort`` graphs as plain ONNX with their weights dequantized once.

The graphs in the ``moonshine-cpp`` wheel store weights as int8 and rebuild them on every
run (``Cast`` -> ``Mul`` by the scale -> ``Add``, 81 chains in front of the decoder's
``If``): about 40 ms of every decoding step on this CPU, for 8 layers that compute in a
few. ONNX Runtime writes the model back as ONNX (``optimized_model_filepath`` with all
optimisations off, so nothing machine-specific is baked in); the chains whose inputs are
all constants are then evaluated once in numpy (the same float32 operations) and replaced
by their results. Parity (:mod:`.export`) runs the result against the untouched source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FOLDABLE = {"Cast", "Mul", "Add", "Sub", "DequantizeLinear"}


def ort_to_onnx(source: Path, target: Path) -> Path:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return target


def _evaluate(op: str, node, values: list[np.ndarray]) -> np.ndarray:  # type: ignore[no-untyped-def]
    from onnx import helper

    if op == "Cast":
        to = next(a.i for a in node.attribute if a.name == "to")
        return values[0].astype(helper.tensor_dtype_to_np_dtype(to))
    if op == "Mul":
        return np.multiply(values[0], values[1])
    if op == "Add":
        return np.add(values[0], values[1])
    if op == "Sub":
        return np.subtract(values[0], values[1])
    scale = values[1]
    zero = values[2] if len(values) > 2 else np.zeros((), values[0].dtype)
    return ((values[0].astype(np.int32) - zero.astype(np.int32)) * scale).astype(scale.dtype)


def fold_constants(path: Path) -> int:
    """Replace main-graph nodes that only read initializers by their results; returns
    how many were folded."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept, folded = [], 0
    for node in graph.node:
        if node.op_type in FOLDABLE and node.input and all(i in constants for i in node.input):
            constants[node.output[0]] = _evaluate(node.op_type, node,
                                                  [constants[i] for i in node.input])
            folded += 1
        else:
            kept.append(node)
    used = {i for node in kept for i in node.input} | {o.name for o in graph.output}
    for node in kept:  # names read inside subgraphs (the If branches) count as used
        for attribute in node.attribute:
            if attribute.g is not None:
                used |= {i for sub in attribute.g.node for i in sub.input}
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(np.asarray(value), name)
                             for name, value in constants.items() if name in used)
    graph.name = graph.name or path.stem
    _name_subgraphs(graph)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path))  # what `voicechat models validate` will check
    return folded


def _name_subgraphs(graph) -> None:  # type: ignore[no-untyped-def]
    """ONNX requires every graph to have a name; ONNX Runtime writes If branches without."""
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                if not attribute.g.name:
                    attribute.g.name = f"{node.name or node.op_type}_{attribute.name}"
                _name_subgraphs(attribute.g)


def dequantized(source: Path, target: Path) -> tuple[Path, int]:
    """``source`` (.ort or .onnx) as ``target`` (.onnx) with constant weight chains folded."""
    ort_to_onnx(source, target)
    return target, fold_constants(target)
