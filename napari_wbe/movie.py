"""Writing frames (RGB arrays) to an mp4 or a gif, one frame at a time: no Qt, no napari.

mp4 goes through imageio-ffmpeg (its wheel carries ffmpeg, so nothing is downloaded at run
time); gif through Pillow. The path is checked before the first frame is made, so a bad
path costs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FORMATS = (".mp4", ".gif")
GIF_MAX_WIDTH = 640  # a gif of a full-size canvas runs to tens of MB; mp4 keeps every pixel
GIF_COLOURS = 128


class MovieError(ValueError):
    """A movie cannot be written where or how it was asked; the message says why."""


def check_movie_path(path) -> Path:
    """The path as a Path, or a MovieError naming what is wrong with it."""
    text = os.fspath(path).strip() if path is not None else ""
    if not text or text == ".":
        raise MovieError("Choose a file to export the movie to (.mp4 or .gif).")
    path = Path(text).expanduser()
    if path.is_dir():
        raise MovieError(f"{path} is a folder; give a file name inside it, e.g. {path / 'activity.mp4'}.")
    if path.suffix.lower() not in FORMATS:
        raise MovieError(f"{path.name}: a movie is written as .mp4 or .gif; end the file name with one of them.")
    folder = path.parent
    if not folder.is_dir():
        raise MovieError(f"The folder {folder} does not exist; create it or choose another.")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise MovieError(f"Cannot write to {path}: permission denied. Choose a folder you can write to.")
    return path


def stamped(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of an RGB frame with `text` in white on a dark box in its top-left corner."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.ascontiguousarray(frame[..., :3], dtype=np.uint8))
    size = max(12, image.height // 28)
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((size // 2, size // 2), text, font=font)
    pad = max(2, size // 5)
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(0, 0, 0))
    draw.text((size // 2, size // 2), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


class MovieWriter:
    """`add(frame)` for each (h, w, 3|4) uint8 frame, then `close()` (or use `with`).

    Frames are cropped to even sides (H.264's yuv420p needs them) and must all match the first;
    gifs are scaled down to at most GIF_MAX_WIDTH pixels wide.
    """

    def __init__(self, path, fps: float = 20.0):
        self.path = check_movie_path(path)
        if not fps > 0:
            raise MovieError(f"fps = {fps}; frames per second must be positive.")
        self.fps, self.n_frames, self.size = float(fps), 0, None
        self._mp4 = None
        self._gif: list = []

    def add(self, frame: np.ndarray, stamp: str | None = None) -> None:
        """Append a frame; `stamp` (e.g. the model time) is written in its top-left corner."""
        frame = np.asarray(frame)[..., :3]
        if stamp:
            frame = stamped(frame, stamp)
        frame = np.ascontiguousarray(frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2], dtype=np.uint8)
        if self.size is None:
            self.size = frame.shape[:2]
            self._start()
        elif frame.shape[:2] != self.size:
            raise MovieError(f"Frame {self.n_frames} is {frame.shape[1]}x{frame.shape[0]}, the movie "
                             f"{self.size[1]}x{self.size[0]}; keep the window size fixed while exporting.")
        if self._mp4 is not None:
            self._mp4.send(frame)
        else:
            from PIL import Image

            image = Image.fromarray(frame)
            if image.width > GIF_MAX_WIDTH:
                image = image.resize((GIF_MAX_WIDTH, round(image.height * GIF_MAX_WIDTH / image.width)),
                                     Image.Resampling.LANCZOS)
            self._gif.append(image.quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT))
        self.n_frames += 1

    def _start(self) -> None:
        if self.path.suffix.lower() == ".mp4":
            import imageio_ffmpeg

            height, width = self.size
            self._mp4 = imageio_ffmpeg.write_frames(str(self.path), (width, height), fps=self.fps, quality=7,
                                                    macro_block_size=2)
            self._mp4.send(None)  # starts ffmpeg

    def close(self) -> None:
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
        elif self._gif:
            # written only now, in one go, so a cancelled export leaves no half gif behind
            self._gif[0].save(self.path, save_all=True, append_images=self._gif[1:],
                              duration=int(round(1000 / self.fps)), loop=0, optimize=True)
            self._gif = []

    def abort(self) -> None:
        """Stop without a movie: ffmpeg is stopped and its partial file removed."""
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
            self.path.unlink(missing_ok=True)
        self._gif = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
