"""LOLWUT's computer art (Redis's lolwut5.c and lolwut6.c), sans-IO: the same drawings,
drawn with this process's random numbers, so each call's picture is as different from
redis-server's as Redis's own calls are from each other; sizes, the deterministic parts
(the first two rows of Schotter's squares) and the captions are Redis's.

- version 5, Georg Nees's "Schotter" (1968): squares that rotate and drift more and more
  down the page, rendered with braille characters (2x4 pixels each);
- version 6, a skyline of 8-bit skyscrapers, rendered with four grey levels as terminal
  colour escapes.
"""

from __future__ import annotations

import math
import random

__all__ = ["schotter", "skyline"]

SQRT2 = 1.4142135623  # the constant Redis divides a square's side by


class Canvas:
    def __init__(self, width: int, height: int, color: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray([color]) * (width * height)

    def set(self, x: int, y: int, color: int) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:  # off the canvas: nothing
            self.pixels[x + y * self.width] = color

    def get(self, x: int, y: int) -> int:
        if 0 <= x < self.width and 0 <= y < self.height:
            return self.pixels[x + y * self.width]
        return 0

    def line(self, x1: int, y1: int, x2: int, y2: int, color: int) -> None:
        """Bresenham, both ends included."""
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        sx = 1 if x1 < x2 else -1
        sy = 1 if y1 < y2 else -1
        err = dx - dy
        while True:
            self.set(x1, y1, color)
            if x1 == x2 and y1 == y2:
                return
            e2 = err * 2
            if e2 > -dy:
                err -= dy
                x1 += sx
            if e2 < dx:
                err += dx
                y1 += sy

    def square(self, x: int, y: int, side: float, angle: float, color: int) -> None:
        """A square centred on x,y: its corners on the circle through them, from 45° plus
        the rotation, a quarter turn apart."""
        size = _c_round(side / SQRT2)
        k = math.pi / 4 + angle
        corners = []
        for _ in range(4):
            corners.append((_c_round(math.sin(k) * size + x), _c_round(math.cos(k) * size + y)))
            k += math.pi / 2
        for j in range(4):
            (x1, y1), (x2, y2) = corners[j], corners[(j + 1) % 4]
            self.line(x1, y1, x2, y2, color)


def _c_round(value: float) -> int:
    """C's round(): halves away from zero (Python's round() goes to even)."""
    return math.floor(value + 0.5) if value >= 0 else math.ceil(value - 0.5)


def _braille(canvas: Canvas) -> str:
    """Each 2x4 block of pixels as one braille character (U+2800 + its dots)."""
    rows = []
    get = canvas.get
    for y in range(0, canvas.height, 4):
        chars = []
        for x in range(0, canvas.width, 2):
            dots = (get(x, y) | get(x, y + 1) << 1 | get(x, y + 2) << 2 | get(x + 1, y) << 3
                    | get(x + 1, y + 1) << 4 | get(x + 1, y + 2) << 5 | get(x, y + 3) << 6 | get(x + 1, y + 3) << 7)
            chars.append(chr(0x2800 + dots))
        rows.append("".join(chars))
    text = "\n".join(rows)
    # Redis ends every band with a newline but one that starts on the last pixel row
    if canvas.height and ((canvas.height - 1) // 4) * 4 != canvas.height - 1:
        text += "\n"
    return text


def schotter(columns: int, per_row: int, per_column: int, rand: random.Random) -> str:
    """LOLWUT VERSION 5's picture (Redis's lwDrawSchotter), as text."""
    width = columns * 2
    padding = 2 if width > 4 else 0
    side = (width - padding * 2) / per_row
    canvas = Canvas(width, int(side * per_column + padding * 2), 0)
    for y in range(per_column):
        for x in range(per_row):
            sx = int(x * side + side / 2 + padding)
            sy = int(y * side + side / 2 + padding)
            angle = 0.0
            if y > 1:  # rotated and moved more and more as the rows go down
                r1, r2, r3 = (rand.random() / per_column * y for _ in range(3))
                r1, r2, r3 = (-r if rand.getrandbits(1) else r for r in (r1, r2, r3))
                angle = r1
                sx = int(sx + r2 * side / 3)
                sy = int(sy + r3 * side / 3)
            canvas.square(sx, sy, side, angle, 1)
    return _braille(canvas)


_GREYS = ("0;30;40m", "0;90;100m", "0;37;47m", "0;97;107m")  # black, grey 1, grey 2, white


def skyline(columns: int, rows: int, rand: random.Random) -> str:
    """LOLWUT VERSION 6's picture (Redis's generateSkyline), as terminal colour escapes."""
    canvas = Canvas(columns, rows, 3)
    for color in (2, 1):  # background skyscrapers first, the lighter ones furthest
        offset = -10
        while offset < canvas.width:
            offset += rand.randrange(8)
            width = 10 + rand.randrange(9)
            height = rows // 2 + rand.randrange(2**31) % rows // (2 if color == 2 else 3)
            _skyscraper(canvas, offset, width, height, color, False, rand)
            offset += width // 2 if color == 2 else width + 1
    offset = -10
    while offset < canvas.width:  # then the foreground, with windows
        offset += rand.randrange(8)
        width = 5 + rand.randrange(14)
        if width % 4:
            width += width % 3
        height = rows // 3 + rand.randrange(2**31) % rows // 2
        _skyscraper(canvas, offset, width, height, 0, True, rand)
        offset += width + 5
    lines = ["".join(f"\033[{_GREYS[canvas.get(x, y)]} \033[0m" for x in range(columns)) for y in range(rows)]
    return "\n".join(lines)


def _skyscraper(canvas: Canvas, xoff: int, width: int, height: int, color: int, windows: bool,
                rand: random.Random) -> None:
    start = canvas.height - 1
    end = start - height + 1
    for y in range(start, end - 1, -1):
        for x in range(xoff, xoff + width):
            if y == end and (x <= xoff + 1 or x >= xoff + width - 2):
                continue  # the roof is four pixels narrower
            pixel = color
            if windows and xoff + 1 < x < xoff + width - 2 and end + 1 < y < start - 1:
                relx, rely = x - (xoff + 1), y - (end + 1)
                if (relx // 2) % 2 and rely % 2:  # windows two pixels wide, one tall
                    pixel = 1 + rand.randrange(2)
                    while pixel == color:
                        pixel = 1 + rand.randrange(2)
                    if relx % 2:
                        pixel = canvas.get(x - 1, y)  # a window's two pixels alike
            canvas.set(x, y, pixel)
