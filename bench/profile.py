"""A TensorFlow profiler trace of a few training steps, summarised by op and by kind of op."""

from pathlib import Path

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from bench.common import random_batches
from ddnmf_tf.reporting.machine import load_average
from ddnmf_tf.training.step import DDNMFTrainer


def _category(name):
    """Coarse kind of a trace event: XLA dots, XLA fusions, the caller's wait, the XLA runtime, other."""
    if name == "BlockUntilReady":
        return "caller waits for the XLA executable"
    if name.startswith(("MatMul", "dot")):
        return "XLA dots (matmuls)"
    if "fusion" in name or name.startswith(("copy", "reduce", "transpose")):
        return "XLA fusions (elementwise, losses, Adam)"
    if "Thunk" in name or "Execut" in name:
        return "XLA runtime"
    return "other (Python, eager, tf.function dispatch)"


def summarize_trace(logdir, top=15):
    """Top ops by total self time from the newest `*.xplane.pb` under `logdir` (TF's XSpace proto)."""
    paths = sorted(Path(logdir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not paths:
        return {"error": f"no .xplane.pb under {logdir}"}
    space = xplane_pb2.XSpace()
    space.ParseFromString(paths[-1].read_bytes())
    totals, counts = {}, {}
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            events = sorted(
                ((event.offset_ps, event.offset_ps + event.duration_ps, plane.event_metadata[event.metadata_id].name)
                 for event in line.events),
                key=lambda e: (e[0], -e[1]),
            )
            # Self time: an event's duration minus its children's (events nested on the same thread line).
            stack = []
            for start, end, name in events:
                while stack and stack[-1][1] <= start:
                    stack.pop()
                if stack:
                    parent = stack[-1]
                    totals[parent[2]] = totals.get(parent[2], 0) - (end - start)
                totals[name] = totals.get(name, 0) + (end - start)
                counts[name] = counts.get(name, 0) + 1
                stack.append((start, end, name))
    busy = sum(value for value in totals.values() if value > 0)
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    categories = {}
    for name, ps in totals.items():
        if ps > 0:
            categories[_category(name)] = categories.get(_category(name), 0) + ps
    return {
        "trace_file": str(paths[-1]),
        "self_time_by_category_pct": {name: round(100 * ps / busy, 1)
                                      for name, ps in sorted(categories.items(), key=lambda item: -item[1])},
        "top_self_time": [
            {"name": name[:120], "self_ms": round(ps / 1e9, 3), "pct": round(100 * ps / busy, 2),
             "count": counts[name]}
            for name, ps in ranked
        ],
    }


def bench_profile(sizes, logdir):
    config = sizes.config_for(sizes.loop_batch, True)
    trainer = DDNMFTrainer(config)
    data = random_batches(config.batch_size, config.input_dim)
    for pair in data:
        trainer.train_step(*pair)["total"].numpy()
    load = load_average()
    tf.profiler.experimental.start(str(logdir))
    for i in range(sizes.profile_steps):
        with tf.profiler.experimental.Trace("train", step_num=i, _r=1):
            values = {name: float(value) for name, value in trainer.train_step(*data[i % 2]).items()}
    tf.profiler.experimental.stop()
    del values
    summary = summarize_trace(logdir)
    summary.update(steps=sizes.profile_steps, batch=config.batch_size, jit=config.jit_compile, load=load,
                   logdir=str(logdir), view=f"tensorboard --logdir {logdir}  (Profile tab; needs tensorboard-plugin-profile)")
    return summary
