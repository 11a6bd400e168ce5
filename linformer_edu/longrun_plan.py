"""The paper's Fig. 3 experiments at small scale, as a plan of runs; reading them against the paper's claims.

    plan = make_plan(n=1024, ks=(32, 64, 128), k=64, ns=(256, 512, 1024, 2048), causal_ns=(1024, 2048))
    results = run_plan(plan, Recipe(), load_data())         # trains every run (linformer_edu.longrun)
    for key, exp in results["experiments"].items():
        for panel in exp["panels"]:
            print(verdicts(panel, noise=seed_noise(results)))

Experiments (the paper: Wang et al. 2020, arXiv 2006.04768):
    a  full attention vs the Linformer at several k, one n               Fig. 3(a, b), Table 2
    b  the Linformer at one k, several n                                 Fig. 3(e)
    c  sharing: headwise vs key-value vs layerwise                       Fig. 3(c, d), Table 2
    d  causal full attention vs the causal Linformer, next characters    (no claim: the paper's model is not causal)

Runs shared by several experiments (the Linformer at k, n, headwise sharing appears in a, b and c) are trained
once. All masked-LM runs share one time budget, measured in steps of full attention at n; each causal n has its
own budget, in steps of causal full attention at that n (linformer_edu.longrun.run_group).
"""
from dataclasses import asdict

from tqdm.auto import tqdm

from .longrun import Recipe, Spec, compare, measure_step_times, run_group

PAPER = {
    "a": "Fig. 3(a,b): the Linformer improves as k grows; at k=128 for n=512 and k=256 for n=1024 its validation "
         "perplexity per update is nearly on par with the standard Transformer's. Table 2 (average dev accuracy): "
         "RoBERTa-base 92.25; Linformer n=512 k=128 91.75, k=256 92.08; n=1024 k=256 91.90.",
    "b": "Fig. 3(e): with k fixed (256), longer n starts at a higher perplexity, but the curves converge to about "
         "the same: quality is nearly flat in n at fixed k.",
    "c": "Fig. 3(c,d), Table 2: sharing projections across heads, between keys and values, even one projection "
         "for all layers, performs almost like no sharing; Table 2: n=512 k=256 shared kv + layerwise 92.30 "
         "against 92.08.",
    "d": "No claim: the paper's Linformer is bidirectional (masked LM) and leaks the future. The causal Linformer "
         "is this project's construction (linformer_edu.causal), against causal full attention on next "
         "characters at equal wall time.",
}

TITLES = {
    "a": "(a) full attention vs Linformer k = {ks} at n = {n}",
    "b": "(b) Linformer k = {k} at n = {ns}",
    "c": "(c) sharing: headwise vs key-value vs layerwise, k = {k}, n = {n}",
    "d": "(d) causal LM: causal full attention vs causal Linformer k = {k}, n = {causal_ns}",
}


def make_plan(*, n=1024, ks=(32, 64, 128), k=64, ns=(256, 512, 1024, 2048), causal_ns=(1024, 2048), seeds=(0, 1),
              mlm_budget=100, causal_budget=100):
    """Groups of runs (each with its reference and time budget) and the experiments that read them.

    seeds: every causal run, full attention at n and the Linformer at (k, n) get all of them (the headline
    comparisons, and an estimate of seed-to-seed spread); the other runs get the first.
    """
    full, base = Spec(n, "full"), Spec(n, k=k)
    by_k = [Spec(n, k=kk) for kk in ks]
    by_n = [Spec(nn, k=k) for nn in ns]
    shared = [Spec(n, k=k, sharing=s) for s in ("headwise", "kv", "layerwise")]
    mlm = list({s.label: s for s in [full, *by_k, *by_n, *shared]}.values())   # each spec once, in order
    twice = {full.label, base.label}
    groups = {"mlm": {"reference": full.label, "budget_steps": mlm_budget,
                      "runs": [(s, seeds if s.label in twice else seeds[:1]) for s in mlm]}}
    for cn in causal_ns:
        cfull, clin = Spec(cn, "full", causal=True), Spec(cn, k=k, causal=True)
        groups[f"causal n={cn}"] = {"reference": cfull.label, "budget_steps": causal_budget,
                                    "runs": [(cfull, seeds), (clin, seeds)]}
    b_ref = base if n in ns else by_n[0]
    panel = lambda group, specs, ref: {"group": group, "labels": [s.label for s in specs], "reference": ref.label}
    words = dict(n=n, k=k, ks=", ".join(map(str, ks)), ns=", ".join(map(str, ns)),
                 causal_ns=" and ".join(map(str, causal_ns)))
    panels = {"a": [panel("mlm", [full, *by_k], full)], "b": [panel("mlm", by_n, b_ref)],
              "c": [panel("mlm", shared, shared[0])],
              "d": [panel(f"causal n={cn}", [Spec(cn, "full", causal=True), Spec(cn, k=k, causal=True)],
                          Spec(cn, "full", causal=True)) for cn in causal_ns]}
    experiments = {key: {"title": TITLES[key].format(**words), "claim": PAPER[key], "panels": panels[key]}
                   for key in panels}
    return {"groups": groups, "experiments": experiments}


def run_plan(plan, recipe: Recipe, data, *, rounds=7, device="cpu", progress=True):
    """Run every group of `plan`, then compare each experiment's panels. Returns a JSON-ready dict."""
    total = sum(len(seeds) for group in plan["groups"].values() for _, seeds in group["runs"])
    groups = {}
    with tqdm(total=total, desc="runs", disable=not progress) as bar:      # one bar for the whole plan
        for name, group in plan["groups"].items():
            groups[name] = run_group(group["runs"], reference=group["reference"], budget_steps=group["budget_steps"],
                                     recipe=recipe, data=data, rounds=rounds, device=device, bar=bar)
            groups[name]["specs"] = [{**asdict(spec), "label": spec.label, "seeds": list(seeds)}
                                     for spec, seeds in group["runs"]]
    return {"recipe": asdict(recipe), "groups": groups, "experiments": read_experiments(plan["experiments"], groups)}


def read_experiments(experiments, groups):
    """Each experiment with every panel's comparison (linformer_edu.longrun.compare) filled in."""
    out = {}
    for key, exp in experiments.items():
        panels = [{**p, "comparison": compare(groups[p["group"]]["runs"], p["labels"], p["reference"])}
                  for p in exp["panels"]]
        out[key] = {**exp, "panels": panels}
    return out


def seed_noise(results):
    """The largest difference between seeds of one run seen anywhere in `results` (bits at equal time), or None."""
    spreads = [row["seed_spread"] for exp in results["experiments"].values() for p in exp["panels"]
               for row in p["comparison"]["rows"] if row["seed_spread"] is not None]
    return max(spreads) if spreads else None


def verdicts(panel, noise=None):
    """One plain sentence per model of a panel: its speed and its gap to the reference, at equal steps and time.

    noise: a gap no larger than this (the seeds' spread) is called level, not a win or a loss.
    """
    comparison = panel["comparison"]
    ref = comparison["reference"]
    lines = []
    for row in comparison["rows"]:
        if row["model"] == ref:
            continue
        gap = row["gap_equal_time"]
        if noise is not None and abs(gap) <= noise:
            word = f"level with {ref} (the gap is within the seeds' spread, {noise:.3f} bits)"
        else:
            word = f"{'lower (better)' if gap < 0 else 'higher (worse)'} than {ref}"
        lines.append(f"{row['model']}: {row['speed_vs_ref']:.2f}x the steps per second of {ref}; "
                     f"{row['gap_equal_steps']:+.3f} bits at equal steps ({comparison['equal_steps']}), "
                     f"{gap:+.3f} bits at equal time ({comparison['equal_seconds']:.3g} s): {word}")
    return lines


def speed_map(ns, ks, recipe: Recipe, data, *, rounds=5, device="cpu", progress=True):
    """Training-step speed of the Linformer relative to full attention, for every n in `ns` and k in `ks`.

    Returns {(n, k): full attention's step time / the Linformer's} (above 1: the Linformer steps faster),
    each from interleaved rounds against full attention at that n; k > n is skipped.
    """
    out = {}
    for n in tqdm(ns, desc="speed map", disable=not progress):
        full = Spec(n, "full")
        specs = [full] + [Spec(n, k=k) for k in ks if k <= n]
        timing = measure_step_times(specs, recipe, data, reference=full.label, rounds=rounds, device=device,
                                    progress=False)
        out.update({(n, s.k): 1 / timing["ratio"][s.label] for s in specs[1:]})
    return out
