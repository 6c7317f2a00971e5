"""llama.cpp as the LLM benchmark's peer, run as a script in its own environment.

llama-cpp-python has no wheel for this platform and compiles llama.cpp from source
(15-20 minutes on 2 cores), so it lives in a separate virtual environment::

    python3 -m venv .venv-llamacpp
    .venv-llamacpp/bin/pip install llama-cpp-python==0.3.36

``voicechat bench llm`` runs this file with that environment's Python (``--llama-cpp``)
and reads one JSON line: per prompt, time to first token, total time and tokens.
Standard library only here: the peer's environment has nothing else.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    gguf, threads, max_tokens = argv[0], int(argv[1]), int(argv[2])
    prompts = json.loads(argv[3])
    import llama_cpp
    import llama_cpp.llama_cpp as bindings

    # On some CPUs llama_decode segfaults with the extra buffer types (repacked weights)
    # enabled; off, it runs (TOOLCHAIN.md). ``Llama`` reads the defaults from the bindings.
    default_params = bindings.llama_model_default_params

    def model_params():  # type: ignore[no-untyped-def]
        params = default_params()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = model_params
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=2048, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    runs = []
    for messages in prompts:
        llm.reset()  # no prompt cache between prompts: every TTFT is a full prefill
        start = time.perf_counter()
        first = None
        tokens = 0
        for chunk in llm.create_chat_completion(messages, max_tokens=max_tokens,
                                                temperature=0.0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                tokens += 1  # one token per streamed chunk
                if first is None:
                    first = time.perf_counter() - start
        total = time.perf_counter() - start
        runs.append({"ttft_s": first or total, "total_s": total, "tokens": tokens})
    print(json.dumps({"version": llama_cpp.__version__, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
