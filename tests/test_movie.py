"""Movie export without a display: mp4 (imageio-ffmpeg) and gif (Pillow), and bad paths
caught before any frame is made."""

from __future__ import annotations

import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from napari_wbe.movie import GIF_MAX_WIDTH, MovieError, MovieWriter, check_movie_path, stamped


def frames(n, height=61, width=99):
    for k in range(n):
        frame = np.zeros((height, width, 4), np.uint8)
        frame[:, : (k + 1) * 5, 0] = 255
        yield frame


def test_mp4_has_every_frame_at_even_size(tmp_path):
    path = tmp_path / "a.mp4"
    with MovieWriter(path, fps=10) as movie:
        for frame in frames(12):
            movie.add(frame)
    assert movie.n_frames == 12 and movie.size == (60, 98)
    n, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert n == 12 and seconds == pytest.approx(1.2, abs=0.05)
    assert tuple(next(imageio_ffmpeg.read_frames(str(path)))["size"]) == (98, 60)


def test_gif_is_written_whole_and_scaled_down(tmp_path):
    path = tmp_path / "a.gif"
    movie = MovieWriter(path, fps=20)
    for frame in frames(5, height=300, width=2 * GIF_MAX_WIDTH):
        movie.add(frame)
    assert not path.exists()  # nothing half-written while frames come in
    movie.close()
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (GIF_MAX_WIDTH, 150)
        assert gif.info["duration"] == 50


def test_frames_must_keep_their_size(tmp_path):
    movie = MovieWriter(tmp_path / "a.mp4")
    movie.add(next(frames(1)))
    with pytest.raises(MovieError, match="window size"):
        movie.add(np.zeros((80, 80, 3), np.uint8))
    movie.close()


@pytest.mark.parametrize("path, words", [
    ("", "Choose a file"), ("movie.avi", ".mp4 or .gif"), ("missing/folder/a.mp4", "does not exist"),
])
def test_bad_paths_are_named(tmp_path, path, words):
    with pytest.raises(MovieError, match=words):
        check_movie_path(tmp_path / path if path else path)
    with pytest.raises(MovieError, match="folder"):
        check_movie_path(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(MovieError, match="permission"):
        check_movie_path(locked / "a.mp4")


def test_time_stamp_is_drawn_in_the_corner(tmp_path):
    frame = np.full((240, 320, 3), 90, np.uint8)
    out = stamped(frame, "t = 12.0 ms")
    corner, rest = out[:40, :160], out[60:, :]
    assert (corner == 255).any() and (corner == 0).any() and (rest == 90).all()
    assert (frame == 90).all()  # the frame itself is left alone
    with MovieWriter(tmp_path / "s.gif") as movie:
        movie.add(frame, stamp="t = 1.0 ms")
    assert movie.n_frames == 1


def test_abort_leaves_no_file(tmp_path):
    for name in ("a.mp4", "a.gif"):
        movie = MovieWriter(tmp_path / name)
        for frame in frames(3):
            movie.add(frame)
        movie.abort()
        assert not (tmp_path / name).exists()
