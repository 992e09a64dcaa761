"""Dock widgets: thin Qt/magicgui views over the core functions of napari_wbe."""
