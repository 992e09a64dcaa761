"""`napari-wbe`: open napari with the mini-brain sample (or your files) and the widgets docked."""

from __future__ import annotations

import argparse

WIDGETS = ("Load volume", "Project", "Decode barcodes", "Proofread", "Connectivity", "Emulate")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="napari-wbe", description=__doc__)
    parser.add_argument("paths", nargs="*", help="volumes or project folders to open instead of the sample")
    parser.add_argument("--no-sample", action="store_true", help="start without the mini-brain sample")
    return parser.parse_args(argv)


def open_viewer(paths=(), sample: bool = True, show: bool = True):
    """A new viewer with the plugin's widgets docked and the sample (or `paths`) loaded."""
    import napari

    return set_up_viewer(napari.Viewer(title="napari-wbe", show=show), paths, sample)


def set_up_viewer(viewer, paths=(), sample: bool = True):
    docks = [viewer.window.add_plugin_dock_widget("napari-wbe", widget, tabify=index > 0)[0]
             for index, widget in enumerate(WIDGETS)]  # one dock area, a tab per stage
    from qtpy.QtCore import QTimer

    # start where a session starts, loading a volume; deferred: napari raises each new dock
    # once the event loop runs, which would leave the last tab in front
    QTimer.singleShot(0, docks[0].raise_)
    if paths:
        viewer.open(list(paths), plugin="napari-wbe")
    elif sample:
        viewer.open_sample("napari-wbe", "mini-brain")
        viewer.dims.axis_labels = ("z", "y", "x")
    return viewer


def main(argv=None) -> None:
    args = parse_args(argv)
    import napari

    open_viewer(args.paths, sample=not args.no_sample)
    napari.run()


if __name__ == "__main__":
    main()
