from types import SimpleNamespace

from napari_sam.finetune.report import phase_record, versions


def test_versions_name_the_libraries_a_model_was_trained_with():
    v = versions()
    assert {"napari_sam", "torch", "numpy", "python"} <= set(v)
    assert all(isinstance(x, str) and x for x in v.values())


def test_a_phase_record_keeps_its_steps_scores_and_stop():
    score = SimpleNamespace(to_dict=lambda: {"box": 0.8})
    best = SimpleNamespace(to_dict=lambda: {"box": 0.9})
    outcome = SimpleNamespace(
        steps=40, best_step=30, base_val=score, best_val=best, stopped_by="budget", history=[[10, 0.85]]
    )
    rec = phase_record(outcome)
    assert rec == {
        "steps": 40,
        "best_step": 30,
        "before": {"box": 0.8},
        "best": {"box": 0.9},
        "stopped_by": "budget",
        "history": [[10, 0.85]],
    }
