"""One reader per file format; `napari_wbe.volumes` is the public entry point.

Each reader returns a `RawVolume`: lazy arrays plus whatever the file says about axes,
voxel size and kind. `volumes.open_volume` then applies the user's choices on top.
"""
