"""The cross-validated choice of the checker's on-question cut (`evals.topic`), on made score rows.

The full run over PubMedQA and ScholarQA-Multi is `python -m evals.topic` (2 minutes, not a test)."""

import numpy as np

from evals import topic


def rows(own, split="calib", seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"dataset": "pubmedqa", "split": split, "fold": i % 5, "own": float(o), "random": float(r), "nearest": float(n)}
        for i, (o, r, n) in enumerate(
            zip(own, rng.uniform(-0.1, 0.2, len(own)), rng.uniform(0.2, 0.5, len(own)), strict=True)
        )
    ]


def test_sentences_of_strips_markers_and_keeps_the_one_before():
    pairs = topic.sentences_of(
        "Vitamin D lowered fracture risk in women [0]. It did so by 20% in a large trial [1, 2]."
    )
    assert pairs == [
        ("", "Vitamin D lowered fracture risk in women."),
        ("Vitamin D lowered fracture risk in women.", "It did so by 20% in a large trial."),
    ]


def test_cut_lets_the_pass_share_through():
    own = np.linspace(0.0, 1.0, 401)  # 2.5% of them below 0.025
    cut = topic.choose(rows(own))
    assert np.mean(own >= cut) >= topic.PASS
    assert np.mean(own >= cut + 0.01) < topic.PASS, "the highest such cut on the grid"


def test_run_chooses_on_calibration_and_reports_held_out_once():
    calib = rows(np.linspace(0.0, 1.0, 400))
    held = rows(np.full(100, -0.05), split="held")  # all below any sensible cut: all set aside
    report = topic.run(calib + held)
    assert report["cut"] == round(topic.choose(calib), 2)
    assert report["held_out"]["kept"] == 0.0 and report["held_out"]["n"] == 100
    assert 0.9 < report["calibration_cv"]["kept"] <= 1.0
    assert report["calibration_cv"]["nearest_set_aside"] == 0.0  # nearest scores all above the cut
