"""Playing an emulation in place: frames per second on a big label volume, and the time from
Run to the first animated frame.

    xvfb-run -a python benchmarks/bench_animation.py [--size 512] [--neurons 10000] [--seconds 4]

A 512^3 volume of 10,000 neurons (Voronoi cells) is played through the Emulate widget's own
path (a uint16 neuron-index layer whose colour table changes per frame) and, as the
reference, by rebuilding a DirectLabelColormap of the original labels per frame. Frames are
driven by a zero-interval timer, as fast as they go, and counted where the canvas draws
them, in 2D and 3D. Under Xvfb the GL is software (Mesa llvmpipe) on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from napari_wbe.connectome import Connectome

BLOCK = 8  # the cells are drawn on a grid this much coarser, then upsampled


def voronoi_labels(size: int, neurons: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = size // BLOCK
    centres = rng.random((neurons, 3)) * coarse
    grid = np.stack(np.meshgrid(*[np.arange(coarse) + 0.5] * 3, indexing="ij"), -1).reshape(-1, 3)
    cells = (cKDTree(centres).query(grid)[1] + 1).astype(np.uint32).reshape((coarse,) * 3)
    return np.repeat(np.repeat(np.repeat(cells, BLOCK, 0), BLOCK, 1), BLOCK, 2)


def random_connectome(neurons: int, targets: int = 50, seed: int = 0) -> Connectome:
    rng = np.random.default_rng(seed)
    pre = np.repeat(np.arange(1, neurons + 1), targets)
    post = rng.integers(1, neurons + 1, len(pre))
    keep = pre != post
    sign = np.where(rng.random(neurons + 1) < 0.7, 1, -1)[pre[keep]]
    edges = pd.DataFrame({"pre": pre[keep], "post": post[keep], "syn_count": rng.integers(1, 12, keep.sum()),
                          "nt": np.where(sign > 0, "ACh", "GABA"), "sign": sign, "kind": "chemical"})
    return Connectome(neurons=pd.DataFrame(index=pd.Index(np.arange(1, neurons + 1), name="neuron_id")),
                      edges=edges)


def draws_per_second(viewer, step, seconds: float, start=None, stop=None) -> float:
    """Count the frames the canvas draws while step() runs from a zero-interval timer (or
    between start() and stop(), for a player with its own timer)."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    canvas = viewer.window._qt_viewer.canvas._scene_canvas  # private, for counting only
    draws = []
    count = lambda event: draws.append(1)  # noqa: E731
    canvas.events.draw.connect(count)
    timer = QTimer()
    timer.setInterval(0)
    if step is not None:
        timer.timeout.connect(step)
    settle = time.perf_counter() + 1.0
    while time.perf_counter() < settle:
        app.processEvents()
    draws.clear()
    (start or timer.start)()
    begin = time.perf_counter()
    while time.perf_counter() < begin + seconds:
        app.processEvents()
    (stop or timer.stop)()
    canvas.events.draw.disconnect(count)
    return len(draws) / (time.perf_counter() - begin)


def wait(app, condition, timeout=600.0):
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the widget did not finish")
        app.processEvents()
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()

    import napari
    from napari.utils.colormaps import DirectLabelColormap
    from qtpy.QtWidgets import QApplication

    from napari_wbe.emulation.activity import activity_colours
    from napari_wbe.layer_data import WBE_KEY
    from napari_wbe.phantom import mini_brain
    from napari_wbe.widgets.emulation import EmulationWidget

    t0 = time.perf_counter()
    labels = voronoi_labels(args.size, args.neurons)
    cx = random_connectome(args.neurons)
    print(f"{args.size}^3 labels, {args.neurons:,} neurons, {len(cx.edges):,} edges: made in "
          f"{time.perf_counter() - t0:.1f} s")

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    app = QApplication.instance()
    layer = viewer.add_labels(labels, name="cells", metadata={WBE_KEY: {"connectome": cx}})
    widget = EmulationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Emulate")
    widget.reset_choices()
    widget.neuron_layer.value = layer
    widget.picker.search.value = " ".join(str(i) for i in range(1, 21))
    widget.picker.add_searched()
    start = time.perf_counter()
    widget.run()
    wait(app, lambda: widget.result is not None and widget.run_button.enabled)
    widget.controls.pause()
    print(f"Run to first frame (1 s simulated, index volume built in the same job): "
          f"{time.perf_counter() - start:.1f} s; {len(widget.result.spikes):,} spikes")

    controls = widget.controls
    controls.frame_ms.value = 1.0
    frames, roles, paint = controls.frames, controls.roles, widget._painter()

    def play_flat_out():  # the Play button's own timer, without its 25 frames/s pacing
        controls.timer.setInterval(0)
        controls.play()

    def colours_only():
        controls.frame = (controls.frame + 1) % frames.n_frames
        paint(activity_colours(frames.values(controls.frame), roles))

    rng = np.random.default_rng(0)
    ids = np.arange(1, args.neurons + 1)

    def reference():  # what the issue measured: a new DirectLabelColormap each frame
        colours = rng.random((args.neurons, 4))
        colours[:, 3] = 1
        layer.colormap = DirectLabelColormap(color_dict=dict(zip(ids.tolist(), colours)) | {None: (0, 0, 0, 0)})

    for ndisplay in (2, 3):
        viewer.dims.ndisplay = ndisplay
        widget.shown.layer.visible, layer.visible = True, False
        played = draws_per_second(viewer, None, args.seconds, play_flat_out, controls.pause)
        bare = draws_per_second(viewer, colours_only, args.seconds)
        widget.shown.layer.visible, layer.visible = False, True
        slow = draws_per_second(viewer, reference, args.seconds)
        slow_text = f"{slow:.1f} frames/s" if slow > 0 else f"not one frame in {args.seconds:g} s"
        print(f"{ndisplay}D: {played:.1f} frames/s as played (colours; slider, time and raster cursor at 8 Hz), "
              f"{bare:.1f} colour table alone; rebuilding a DirectLabelColormap per frame: {slow_text}")
    viewer.close()

    # Run to first frame on the phantom, the README's sample
    mb = mini_brain()
    viewer = napari.Viewer(show=True)
    phantom = viewer.add_labels(mb.labels, name="phantom", metadata={WBE_KEY: {"connectome": mb.connectome}})
    widget = EmulationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Emulate")
    widget.reset_choices()
    widget.neuron_layer.value = phantom
    widget.picker.search.value = "T2"
    widget.picker.add_searched()
    for _ in range(3):
        start = time.perf_counter()
        widget.run()
        wait(app, lambda: widget.run_button.enabled and widget.controls.frames is not None)
        widget.controls.pause()
        print(f"phantom ({mb.labels.shape}, {len(mb.connectome.neurons)} neurons), 1 s simulated: Run to first "
              f"animated frame {1000 * (time.perf_counter() - start):.0f} ms")
    viewer.close()


if __name__ == "__main__":
    main()
