"""The end-to-end demo flow: demo corpus -> refresh -> selection + report -> training -> video.

Everything runs in Prefect's embedded mode on one CPU, from media that packages
ship (see :mod:`pipeline.demo_corpus`), through the same flows the deployments
run: :func:`flows.refresh.refresh`, :func:`flows.selection_flow.selection` and
:func:`flows.training_flow.training`, as subflows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.refresh import refresh
from flows.selection_flow import selection
from flows.training_flow import training


@dataclass(frozen=True)
class DemoResult:
    """What the demo made, and where."""

    warehouse: str
    clips_with_histograms: int
    selection_id: str
    selected: int
    report: str  # HTML report
    figure: str  # histogram PNG
    run_dir: str
    step: int
    video: str  # the generated talking-face video


@task(cache_policy=NO_CACHE)
def corpus_task(folder: Path, clips: int | None) -> list[Path]:
    from pipeline.demo_corpus import build_demo_corpus

    return build_demo_corpus(folder, clips)


@task(cache_policy=NO_CACHE)
def face_task(path: Path) -> Path:
    from pipeline.demo_corpus import write_face_image

    return write_face_image(path)


@flow(name="demo")
def demo(out_dir: str = "talkface-demo", clips: int | None = None, steps: int = 10) -> DemoResult:
    """Build the demo corpus under ``out_dir`` and run the whole pipeline on it.

    Args:
        out_dir: holds corpus/, warehouse/, reports/, runs/.
        clips: how many demo clips (default all five LibriVox utterances).
        steps: training steps of the tiny config on the CPU.
    """
    out = Path(out_dir).resolve()
    videos = corpus_task(out / "corpus", clips)
    warehouse = str(out / "warehouse")
    summary = refresh(str(out / "corpus"), warehouse)
    chosen = selection(warehouse, str(out / "reports"), nmin=max(1, len(videos) // 2), nmax=len(videos),
                       k=10, method="paper")
    face = face_task(out / "face.png")
    trained = training(warehouse, str(out / "runs"), chosen["selection_id"], config="tiny", steps=steps,
                       device="cpu", sample_image=str(face), sample_audio=str(videos[0]))
    return DemoResult(warehouse, summary.histograms, chosen["selection_id"], int(chosen["n"]), chosen["report"],
                      chosen["figure"], trained.run_dir, trained.step, trained.video)
