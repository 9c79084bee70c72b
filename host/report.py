"""Reports of device evaluations: a table on the terminal, Markdown with PNG plots on disk,
and two runs side by side.

    python host/eval.py --json build/eval.json          # also writes build/eval.md + plots
    python host/eval.py report build/eval.json          # the report again (e.g. after --resume)
    python host/eval.py compare old.json new.json       # per-class deltas, clips that changed

Reads only the summary JSON that ``host/eval.py --json`` writes (its ``clips`` list holds
every clip), so a report can be made on another machine than the run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

Summary = dict[str, Any]


def load(path: Path) -> Summary:
    try:
        s = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable qsnn-eval --json report ({e})") from e
    if not isinstance(s, dict) or "clips" not in s or "confusion" not in s:
        raise ValueError(f"{path}: not a qsnn-eval --json report (no 'clips' and 'confusion')")
    return s


def class_names(s: Summary) -> list[str]:
    n = len(s["confusion"])
    names = s.get("classes") or []
    return list(names) if len(names) == n else [f"class {k}" for k in range(n)]


def per_class(s: Summary) -> list[dict[str, Any]]:
    """Per true class: clips, correct answers, accuracy (None for a class with no clips)."""
    m = np.asarray(s["confusion"], dtype=np.int64)
    rows = []
    for k, name in enumerate(class_names(s)):
        n = int(m[k].sum())
        rows.append({"class": name, "clips": n, "correct": int(m[k, k]), "accuracy": (m[k, k] / n) if n else None})
    return rows


def _time_unit(s: Summary) -> tuple[float | None, str]:
    """Seconds per counter tick when the board's clock is known (cycles/timer units)."""
    lat = s["latency"]
    hz = lat.get("counter_hz") or 0
    return (1.0 / hz if hz else None), lat["unit"]


def memory_rows(s: Summary) -> list[tuple[str, int]]:
    ram = s["ram_bytes"]
    rows = [("flash: whole firmware image", s["flash_bytes"])]
    if s.get("model_bytes"):
        rows.append(("flash: of which the model (packed weights and tables)", s["model_bytes"]))
    rows += [("RAM: static (.data + .bss)", ram["static"]),
             ("RAM: of which network state arena", ram["arena"]),
             ("RAM: stack, deepest use", ram["stack_peak"]),
             ("RAM: stack, reserved", ram["stack_reserved"]),
             ("RAM: static + stack peak", ram["static"] + ram["stack_peak"])]
    return rows


def text_table(s: Summary) -> str:
    """The report as plain text for the terminal."""
    events = s.get("input_kind") == "events"
    what, side, unit_name = ("samples", "binning", "step") if events else ("clips", "frontend", "hop")
    lines = [f"{s['samples']} {what} on {s['target']} ({s.get('split', '?')} split), model {s['model_hash']}",
             f"accuracy {s['accuracy']:.4f} (reference {s['reference_accuracy']:.4f}), agreement {s['agreement']:.4f}",
             "", f"{'class':>12} {'clips':>6} {'correct':>8} {'accuracy':>9}"]
    for r in per_class(s):
        acc = f"{r['accuracy']:.3f}" if r["accuracy"] is not None else "-"
        lines.append(f"{r['class']:>12} {r['clips']:>6} {r['correct']:>8} {acc:>9}")
    sec, unit = _time_unit(s)
    lat = s["latency"]
    lines.append("")
    for part in ("frontend", "network", "total"):
        med = lat[part]["median"]
        t = f" ({med * sec * 1e3:.1f} ms)" if sec else ""
        name = side if part == "frontend" else part
        lines.append(f"per {what[:-1]} {name:>8}: median {med:,.0f} {unit}{t}, p95 {lat[part]['p95']:,.0f}")
    window = f"{s['event_stream']['step_us'] / 1000:g} ms step" if events and "event_stream" in s else "20 ms hop"
    t = f" ({lat['worst_hop'] * sec * 1e3:.2f} ms of a {window})" if sec else ""
    lines.append(f"slowest {unit_name}: {lat['worst_hop']:,} {unit}{t}")
    lines.append("")
    lines += [f"{name:>52}: {v:,} B" for name, v in memory_rows(s)]
    return "\n".join(lines)


def _si(v: float, _pos: object = None) -> str:
    return f"{v / 1e6:.2f}M" if abs(v) >= 1e6 else f"{v / 1e3:.0f}k" if abs(v) >= 1e3 else f"{v:.0f}"


def _plots(s: Summary, stem: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 - used through matplotlib.ticker

    names = class_names(s)
    m = np.asarray(s["confusion"], dtype=np.int64)
    out = []
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("device's answer")
    ax.set_ylabel("true class")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_title(f"confusion, {s['samples']} clips on {s['target']}", fontsize=9)
    fig.tight_layout()
    p = stem.parent / f"{stem.name}-confusion.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out.append(p)

    sec, unit = _time_unit(s)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    clips = s["clips"]
    for ax, key, title in ((axes[0], "total", "per clip (front end + network)"), (axes[1], "worst_hop", "slowest hop of each clip")):
        vals = np.asarray([c["frontend_ticks"] + c["network_ticks"] if key == "total" else c["worst_hop_ticks"]
                           for c in clips], dtype=np.float64)
        if sec:
            vals = vals * sec * 1e3
        ax.hist(vals, bins=30, color="tab:blue")
        if not sec:
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_si))
            ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel(f"{'ms at the board clock' if sec else unit}")
        ax.set_ylabel("clips")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    p = stem.parent / f"{stem.name}-latency.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out.append(p)
    return out


def markdown(s: Summary, plots: list[Path]) -> str:
    sec, unit = _time_unit(s)
    lat = s["latency"]
    md = [f"# Device evaluation: {s['samples']} clips on `{s['target']}`", "",
          f"Model `{s['model_hash']}`, firmware {s.get('firmware', '?')}, protocol {s.get('protocol_version', '?')}, "
          f"{s.get('split', '?')} split, port `{s.get('port', '?')}`.", "",
          "| | value |", "|---|---|",
          f"| accuracy (device) | {s['accuracy']:.4f} |",
          f"| accuracy (integer reference) | {s['reference_accuracy']:.4f} |",
          f"| agreement (outputs bit-exact) | {s['agreement']:.4f} |"]
    link = s.get("link") or {}
    if link.get("events") or any((link.get("injected") or {}).values()):
        ev = ", ".join(f"{k} {v}" for k, v in link.get("events", {}).items()) or "none"
        inj = ", ".join(f"{k} {v}" for k, v in (link.get("injected") or {}).items())
        md.append(f"| link events | {ev} |")
        if inj:
            md.append(f"| faults injected (rate {link.get('fault_rate')}) | {inj} |")
    md += ["", "## Per class", "", "| class | clips | correct | accuracy |", "|---|---:|---:|---:|"]
    for r in per_class(s):
        acc = f"{r['accuracy']:.3f}" if r["accuracy"] is not None else "-"
        md.append(f"| {r['class']} | {r['clips']} | {r['correct']} | {acc} |")
    md += ["", "## Latency", "", f"Device counter: {unit}" + (f" at {lat['counter_hz']:,} Hz" if sec else
           " (no clock: QEMU counts instructions)") + ".", "",
           "| per clip | median | p95 | mean |" + (" median ms |" if sec else ""),
           "|---|---:|---:|---:|" + ("---:|" if sec else "")]
    for part in ("frontend", "network", "total"):
        v = lat[part]
        md.append(f"| {part} | {v['median']:,.0f} | {v['p95']:,.0f} | {v['mean']:,.0f} |"
                  + (f" {v['median'] * sec * 1e3:.1f} |" if sec else ""))
    md.append(f"| slowest hop (any clip) | {lat['worst_hop']:,} | | |" + (f" {lat['worst_hop'] * sec * 1e3:.2f} |" if sec else ""))
    md += ["", "## Memory", "", "| | bytes |", "|---|---:|"]
    md += [f"| {name} | {v:,} |" for name, v in memory_rows(s)]
    mism = [c for c in s["clips"] if not c["agreement"]]
    md += ["", "## Disagreeing clips", ""]
    if not mism:
        md.append("None: on every clip the device's outputs equal the integer reference's.")
    else:
        md += [f"{len(mism)} clips; the first {min(10, len(mism))}:", "", "| clip | device outputs | reference outputs |",
               "|---|---|---|"]
        md += [f"| {c['id']} | {c['outputs']} | {c['reference_outputs']} |" for c in mism[:10]]
    if plots:
        md += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(md) + "\n"


def write(s: Summary, json_path: Path) -> Path:
    """Markdown (same name, .md) and PNG plots beside the summary JSON; returns the .md path."""
    stem = json_path.with_suffix("")
    plots = _plots(s, stem)
    md = json_path.with_suffix(".md")
    md.write_text(markdown(s, plots))
    return md


def compare(a: Summary, b: Summary, name_a: str = "A", name_b: str = "B") -> tuple[str, list[dict[str, Any]]]:
    """Two runs side by side: the text, and the clips whose answer or outputs changed."""
    lines = [f"{'':>12} {name_a:>12} {name_b:>12} {'delta':>8}",
             f"{'samples':>12} {a['samples']:>12} {b['samples']:>12}",
             f"{'accuracy':>12} {a['accuracy']:>12.4f} {b['accuracy']:>12.4f} {b['accuracy'] - a['accuracy']:>+8.4f}",
             f"{'agreement':>12} {a['agreement']:>12.4f} {b['agreement']:>12.4f} {b['agreement'] - a['agreement']:>+8.4f}"]
    for part in ("frontend", "network"):
        va, vb = a["latency"][part]["median"], b["latency"][part]["median"]
        lines.append(f"{part + ' med':>12} {va:>12,.0f} {vb:>12,.0f} {(vb - va) / va if va else 0:>+8.1%}")
    lines += ["", f"{'class':>12} {name_a:>12} {name_b:>12} {'delta':>8}"]
    ca = {r["class"]: r for r in per_class(a)}
    for r in per_class(b):
        ra = ca.get(r["class"])
        if ra is None or ra["accuracy"] is None or r["accuracy"] is None:
            continue
        lines.append(f"{r['class']:>12} {ra['accuracy']:>12.3f} {r['accuracy']:>12.3f} {r['accuracy'] - ra['accuracy']:>+8.3f}")
    clips_a = {c["id"]: c for c in a["clips"]}
    clips_b = {c["id"]: c for c in b["clips"]}
    both = [k for k in clips_a if k in clips_b]
    changed = []
    for k in both:
        x, y = clips_a[k], clips_b[k]
        if x["predicted"] != y["predicted"] or x["outputs"] != y["outputs"]:
            changed.append({"id": k, "label": x["label"], "predicted": [x["predicted"], y["predicted"]],
                            "fixed": y["predicted"] == y["label"] != x["predicted"],
                            "broken": x["predicted"] == x["label"] != y["predicted"]})
    only = len(clips_a) - len(both), len(clips_b) - len(both)
    lines += ["", f"{len(both)} clips in both runs ({only[0]} only in {name_a}, {only[1]} only in {name_b}); "
              f"{len(changed)} changed: {sum(c['fixed'] for c in changed)} now right, "
              f"{sum(c['broken'] for c in changed)} now wrong"]
    names = class_names(b)
    for c in changed[:20]:
        pa, pb = c["predicted"]
        lines.append(f"  {c['id']}: {names[c['label']]}: {names[pa]} -> {names[pb]}")
    if len(changed) > 20:
        lines.append(f"  ... and {len(changed) - 20} more")
    return "\n".join(lines), changed
