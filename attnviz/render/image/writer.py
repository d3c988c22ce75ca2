"""Files from a drawn figure: our own PNG writer, and SVG/PDF through matplotlib without metadata."""

from __future__ import annotations

import io

import numpy as np

# No metadata that changes between runs or versions: the date, and the software name+version.
_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}


def figure_bytes(fig, fmt: str, dpi: float, transparent: bool) -> bytes:
    """The figure as a PNG, SVG or PDF file. The figure's background must already be set (the scene
    sets it for every image, see engine.Scene.apply); `transparent` only picks RGBA for a PNG."""
    if fmt == "png":
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())  # [height, width, 4] uint8
        return png_bytes(rgba if transparent else rgba[..., :3], dpi)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=_METADATA[fmt], transparent=transparent)
    return buffer.getvalue()


# zlib level 1 with the "Up" filter on every row: heatmap cells and the white background repeat row
# after row, so most filtered bytes are zero. A third the time of Pillow's adaptive filtering at
# the same file size, and the bytes depend only on the pixels (and zlib).
PNG_COMPRESS_LEVEL = 1


def png_bytes(pixels: np.ndarray, dpi: float) -> bytes:
    """A PNG of `pixels` ([height, width, 3] RGB or [height, width, 4] RGBA, uint8)."""
    import zlib

    height, width, channels = pixels.shape
    if not pixels.flags.c_contiguous:  # RGB taken from Agg's RGBA: one channel at a time is 5x faster
        packed = np.empty(pixels.shape, np.uint8)
        for c in range(channels):
            packed[..., c] = pixels[..., c]
        pixels = packed
    flat = pixels.reshape(height, width * channels)  # [H, W*C]
    rows = np.empty((height, width * channels + 1), np.uint8)  # [H, 1 + W*C]: filter byte, pixels
    rows[:, 0] = 2  # filter type 2: Up
    rows[0, 1:] = flat[0]  # (the row above the first is zeros)
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])  # modulo 256, as PNG wants

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    color_type = 6 if channels == 4 else 2
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, color_type, 0, 0, 0])
    per_metre = round(dpi / 0.0254).to_bytes(4, "big")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"pHYs", per_metre + per_metre + b"\x01")
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL))
        + chunk(b"IEND", b"")
    )
