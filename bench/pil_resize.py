#!/usr/bin/python3
"""Pillow side of bench/resize.sh: open, resize with LANCZOS, save JPEG Q95 4:4:4.
Usage: pil_resize.py IN OUT WIDTH HEIGHT"""
import sys

from PIL import Image

src, dst, w, h = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
im = Image.open(src)
im = im.resize((w, h), Image.LANCZOS)
im.save(dst, quality=95, subsampling=0)
