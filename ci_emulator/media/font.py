"""A built-in 3x5 pixel font, so text watermarks need neither drawtext nor a font file.

PyAV's bundled FFmpeg has no drawtext filter (no libfreetype) and the emulator may not assume
a system font. Each glyph is five rows of three pixels; letters are upper case (lower case is
drawn as upper case), and a character the table lacks is drawn as a filled box, so a message
never silently loses characters. `render` scales glyphs to `size` pixels high (nearest
neighbour) with one blank column between glyphs and a one-pixel border.
"""

from __future__ import annotations

from typing import Any, Final

import av

_GLYPHS: Final[dict[str, str]] = {
    "0": "###/#.#/#.#/#.#/###", "1": ".#./##./.#./.#./###", "2": "###/..#/###/#../###",
    "3": "###/..#/.##/..#/###", "4": "#.#/#.#/###/..#/..#", "5": "###/#../###/..#/###",
    "6": "###/#../###/#.#/###", "7": "###/..#/.#./.#./.#.", "8": "###/#.#/###/#.#/###",
    "9": "###/#.#/###/..#/###", "A": ".#./#.#/###/#.#/#.#", "B": "##./#.#/##./#.#/##.",
    "C": ".##/#../#../#../.##", "D": "##./#.#/#.#/#.#/##.", "E": "###/#../##./#../###",
    "F": "###/#../##./#../#..", "G": ".##/#../#.#/#.#/.##", "H": "#.#/#.#/###/#.#/#.#",
    "I": "###/.#./.#./.#./###", "J": "..#/..#/..#/#.#/.#.", "K": "#.#/#.#/##./#.#/#.#",
    "L": "#../#../#../#../###", "M": "#.#/###/###/#.#/#.#", "N": "##./#.#/#.#/#.#/#.#",
    "O": ".#./#.#/#.#/#.#/.#.", "P": "##./#.#/##./#../#..", "Q": ".#./#.#/#.#/##./.##",
    "R": "##./#.#/##./#.#/#.#", "S": ".##/#../.#./..#/##.", "T": "###/.#./.#./.#./.#.",
    "U": "#.#/#.#/#.#/#.#/###", "V": "#.#/#.#/#.#/#.#/.#.", "W": "#.#/#.#/###/###/#.#",
    "X": "#.#/#.#/.#./#.#/#.#", "Y": "#.#/#.#/.#./.#./.#.", "Z": "###/..#/.#./#../###",
    " ": ".../.../.../.../...", ".": ".../.../.../.../.#.", ",": ".../.../.../.#./#..",
    ":": ".../.#./.../.#./...", "-": ".../.../###/.../...", "_": ".../.../.../.../###",
    "!": ".#./.#./.#./.../.#.", "?": "##./..#/.#./.../.#.", "/": "..#/..#/.#./#../#..",
    "+": ".../.#./###/.#./...", "=": ".../###/.../###/...", "(": ".#./#../#../#../.#.",
    ")": ".#./..#/..#/..#/.#.", "'": ".#./.#./.../.../...", "*": "#.#/.#./#.#/.../...",
    "@": "###/#.#/###/#../###", "#": "#.#/###/#.#/###/#.#", "&": ".#./#.#/.#./#.#/.##",
}  # fmt: skip
_BOX: Final = "###/###/###/###/###"
ROWS: Final = 5
COLUMNS: Final = 3


def glyph(char: str) -> list[str]:
    return _GLYPHS.get(char.upper(), _BOX).split("/")


def render(text: str, size: int, color: str) -> Any:
    """`text` as an RGBA frame, glyphs `size` pixels high (at least 5), in `color` (0xRRGGBB)."""
    scale = max(1, size // ROWS)
    rgb = bytes.fromhex(color.removeprefix("0x").removeprefix("#"))
    on, off = rgb + b"\xff", b"\x00\x00\x00\x00"
    cells = [glyph(char) for char in text] or [glyph(" ")]
    columns = len(cells) * (COLUMNS + 1) + 1  # one blank column between glyphs and at each end
    width, height = columns * scale, (ROWS + 2) * scale
    width += width % 2  # even sides: every planar format the overlay converts to accepts them
    height += height % 2
    frame = av.VideoFrame(width, height, "rgba")
    stride = int(frame.planes[0].line_size)
    data = bytearray(stride * height)
    for row in range(ROWS):
        line = bytearray()
        line += off * scale
        for cell in cells:
            for bit in cell[row]:
                line += (on if bit == "#" else off) * scale
            line += off * scale
        for repeat in range(scale):
            start = ((row + 1) * scale + repeat) * stride
            data[start : start + len(line)] = line
    frame.planes[0].update(bytes(data))
    return frame
