"""Read CTranslate2 Whisper models (faster-whisper's format) back into openai-whisper weights.

``model.bin`` layout (little endian), as written by ctranslate2's ``ModelSpec.save``::

    u32 binary_version (>= 2: u16-length string spec name, u32 spec revision)
    u32 variable count, then per variable:
        string name, u8 rank, u32 dims[rank], u8 dtype id (version >= 4; else item size),
        u32 byte count, raw bytes
    u32 alias count (version >= 3), then (string alias, string variable name) pairs

Strings are a u16 length followed by that many bytes including a trailing NUL. A model
may be split into ``model.bin.part1``, ``model.bin.part2``, …: the parts concatenate.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from export.errors import SourceError

# ctranslate2 DataType ids
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BFLOAT16 = 5


def model_files(directory: Path, parts: Sequence[Path] = ()) -> list[Path]:
    """``model.bin``, or its parts in order (explicit ``parts`` win)."""
    if parts:
        return [Path(p) for p in parts]
    if (directory / "model.bin").is_file():
        return [directory / "model.bin"]
    found = sorted(directory.glob("model.bin.part*"), key=lambda p: int(p.suffix[5:] or 0))
    if not found:
        raise SourceError(f"{directory}: no model.bin (or model.bin.partN) in this directory")
    return found


def read_variables(files: Sequence[Path]) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, variables by name) from a model.bin given as one or more parts."""
    data = b"".join(Path(f).read_bytes() for f in files)
    stream = io.BytesIO(data)

    def take(fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        chunk = stream.read(size)
        if len(chunk) != size:
            raise SourceError(f"{files[0]}: truncated CTranslate2 model (missing a part?)")
        return struct.unpack("<" + fmt, chunk)

    def string() -> str:
        (length,) = take("H")
        return stream.read(length)[:-1].decode("utf-8")

    (version,) = take("I")
    if not 1 <= version <= 6:
        raise SourceError(f"{files[0]}: not a CTranslate2 model.bin (binary version {version})")
    spec = ""
    if version >= 2:
        spec = string()
        take("I")  # spec revision
    (count,) = take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        dims = take("I" * rank) if rank else ()
        if version >= 4:
            (type_id,) = take("B")
            (nbytes,) = take("I")
        else:
            (item_size,) = take("B")
            (nbytes,) = take("I")
            type_id = {4: 0, 2: 2, 1: 1}.get(item_size, 0)
        raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise SourceError(f"{files[0]}: truncated CTranslate2 model (missing a part?)")
        if type_id == _BFLOAT16:
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif type_id in _DTYPES:
            array = np.frombuffer(raw, _DTYPES[type_id])
        else:
            raise SourceError(f"{name}: unsupported CTranslate2 dtype id {type_id}")
        variables[name] = array.reshape(dims)
    if version >= 3:
        (aliases,) = take("I")
        for _ in range(aliases):
            alias, target = string(), string()
            variables[alias] = variables[target]
    return spec, variables


def _weight(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    array = variables[f"{name}/weight"]
    scale = variables.get(f"{name}/weight_scale")
    if scale is not None:  # int8/int16 quantized: stored as round(weight * scale)
        array = array.astype(np.float32) / scale.astype(np.float32).reshape(-1, 1)
    return np.asarray(array, np.float32)


def whisper_state_dict(variables: dict[str, np.ndarray]) -> tuple[dict[str, int],
                                                                   dict[str, np.ndarray]]:
    """openai-whisper ``ModelDimensions`` fields and state dict from CT2 WhisperSpec variables."""
    v = variables
    f32 = lambda name: np.asarray(v[name], np.float32)  # noqa: E731
    conv1 = _weight(v, "encoder/conv1")
    n_audio_layer = sum(1 for k in v if k.startswith("encoder/layer_")
                        and k.endswith("self_attention/linear_1/bias"))
    n_text_layer = sum(1 for k in v if k.startswith("decoder/layer_")
                       and k.endswith("self_attention/linear_1/bias"))
    dims = {
        "n_mels": conv1.shape[1],
        "n_audio_ctx": v["encoder/position_encodings/encodings"].shape[0],
        "n_audio_state": conv1.shape[0],
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": v["decoder/embeddings/weight"].shape[0],
        "n_text_ctx": v["decoder/position_encodings/encodings"].shape[0],
        "n_text_state": v["decoder/embeddings/weight"].shape[1],
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    sd: dict[str, np.ndarray] = {}

    def linear(target: str, source: str, bias: bool = True) -> None:
        sd[f"{target}.weight"] = _weight(v, source)
        if bias:
            sd[f"{target}.bias"] = f32(f"{source}/bias")

    def norm(target: str, source: str) -> None:
        sd[f"{target}.weight"] = f32(f"{source}/gamma")
        sd[f"{target}.bias"] = f32(f"{source}/beta")

    def fused(prefix: str, source: str, parts: Sequence[str]) -> None:
        weight = _weight(v, source)
        bias = f32(f"{source}/bias")
        n = weight.shape[0] // len(parts)
        for i, part in enumerate(parts):
            sd[f"{prefix}.{part}.weight"] = weight[i * n:(i + 1) * n]
            if part != "key":  # whisper's key projections have no bias (CT2 stores zeros)
                sd[f"{prefix}.{part}.bias"] = bias[i * n:(i + 1) * n]

    def block(target: str, source: str, cross: bool) -> None:
        norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        fused(f"{target}.attn", f"{source}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        if cross:
            norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
            linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
            fused(f"{target}.cross_attn", f"{source}/attention/linear_1", ("key", "value"))
            linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
        norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")
        linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = f32("encoder/position_encodings/encodings")
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = f32("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = f32("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    return dims, sd
